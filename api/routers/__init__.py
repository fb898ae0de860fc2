"""Routes of the scoring API, one module per concern."""
