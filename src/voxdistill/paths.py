"""Where voxdistill keeps what it generates: converted weights, synthesised audio, caches."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The root cache directory: ``$VOXDISTILL_CACHE``, else ``$XDG_CACHE_HOME/voxdistill``,
    else ``~/.cache/voxdistill``. Created on first use."""
    override = os.environ.get("VOXDISTILL_CACHE")
    if override:
        root = Path(override)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "voxdistill"
    root.mkdir(parents=True, exist_ok=True)
    return root
