"""Deliveries in the landing folder: one sub-folder each, complete when the seven files and the marker
(written last by whoever delivers) are there. A delivery is claimed once, when the landing DAG hands it to
the medallion DAG; raw files are never moved or changed."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from spanishgas.contracts import RAW_FILES

if TYPE_CHECKING:
    from spanishgas.settings import Settings

CLAIMS_FILE = Path("orchestration") / "claimed_deliveries.json"


def missing_files(folder: Path) -> list[str]:
    """The delivered files (patterns) the folder lacks."""
    names = [p.name for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    return [c.pattern for c in RAW_FILES if not any(c.matches(n) for n in names)]


def is_complete(folder: Path, marker: str) -> bool:
    """The marker is there and so is every delivered file."""
    return (folder / marker).is_file() and not missing_files(folder)


def read_claims(claims_file: Path) -> dict[str, str]:
    """Claimed delivery folders (resolved paths) and when each was claimed."""
    if not claims_file.is_file():
        return {}
    return dict(json.loads(claims_file.read_text()))


def next_delivery(landing_dir: Path, marker: str, claims_file: Path) -> Path | None:
    """The first complete delivery (by folder name) not claimed yet, or None."""
    if not landing_dir.is_dir():
        return None
    claimed = read_claims(claims_file)
    for folder in sorted(p for p in landing_dir.iterdir() if p.is_dir()):
        if str(folder.resolve()) not in claimed and is_complete(folder, marker):
            return folder.resolve()
    return None


def claim(claims_file: Path, folder: Path, now: datetime | None = None) -> None:
    """Record that ``folder`` was handed on (written to a temporary file and renamed: never half written)."""
    claims = read_claims(claims_file)
    claims[str(folder.resolve())] = (now or datetime.now(UTC)).isoformat()
    claims_file.parent.mkdir(parents=True, exist_ok=True)
    partial = claims_file.with_suffix(".tmp")
    partial.write_text(json.dumps(claims, indent=2, sort_keys=True))
    os.replace(partial, claims_file)


def landing_paths(settings: Settings, home: Path) -> tuple[Path, Path]:
    """The landing folder and the claims file, relative settings resolved against the platform folder."""
    landing = Path(str(settings.orchestration.landing_dir))
    root = Path(settings.data_root)
    landing = landing if landing.is_absolute() else home / landing
    root = root if root.is_absolute() else home / root
    return landing, root / CLAIMS_FILE
