"""Where the lab keeps its state (git-ignored) and its caches."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STATE_DIR = REPO / ".lab"
CACHE = REPO / ".cache" / "lab"
GROUP_DATA = STATE_DIR / "group_data"  # the running lab's values on top of group_data
