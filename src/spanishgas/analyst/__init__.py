"""The analyst app's figures: what `dashboard/` shows, computed from the lake, the registry and the
monitoring runs (the pages only lay them out)."""
