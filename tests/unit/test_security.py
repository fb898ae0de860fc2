"""What can be checked of the deployment's security without a Docker engine: the image's user, and that no
credential-shaped string is committed. (The logs of a full demo run are grepped for configured secrets in
tests/e2e/test_demo.py; settings masking in tests/unit/test_settings.py.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).parents[2]
# Shapes of real credentials: private keys, AWS access key ids, GitHub and Slack tokens.
CREDENTIAL = re.compile(
    "|".join(
        [
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
            r"\bAKIA[0-9A-Z]{16}\b",
            r"\bgh[pousr]_[A-Za-z0-9]{36}\b",
            r"\bxox[abpr]-[A-Za-z0-9-]{10,}",
        ]
    )
)


def test_the_image_runs_as_an_unprivileged_user() -> None:
    instructions = [
        line.split(None, 1)
        for line in (REPO / "infra" / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#") and not line.startswith((" ", "\t"))
    ]
    users = [args.strip() for word, *rest in instructions if word.upper() == "USER" for args in rest]
    assert users, "the Dockerfile never sets USER: the services would run as root"
    assert users[-1] not in {"root", "0", "0:0"}
    last_user = max(i for i, (word, *_) in enumerate(instructions) if word.upper() == "USER")
    assert all(word.upper() != "RUN" for word, *_ in instructions[last_user + 1 :])  # nothing runs as root after


def test_no_credential_is_committed() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    assert files
    found = []
    for name in files:
        path = REPO / name
        if not path.is_file() or path.stat().st_size > 5 * 1024**2:
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        found += [f"{name}: {m.group(0)[:12]}..." for m in CREDENTIAL.finditer(text)]
    assert found == []
