"""Where circuitkit keeps its caches (compiled OSDI models, the grammar's parser tables)."""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$CIRCUITKIT_CACHE``, else ``$XDG_CACHE_HOME/circuitkit``, else ``~/.cache/circuitkit`` (not created)."""
    root = os.environ.get("CIRCUITKIT_CACHE")
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "circuitkit"
