"""Where the repository is, for tests at any depth of `tests/`."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
