"""Exercise checks, one module per notebook topic (``rlcourse.checks.<topic>``).

Modules are imported on demand by :func:`rlcourse.exercises.get`, so a notebook loads only its
own topic's checks; :func:`load_all` registers every check (used by the tests).
"""

from __future__ import annotations

import importlib
import pkgutil


def load_all() -> None:
    """Import every check module, registering all exercises."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
