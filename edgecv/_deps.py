"""Import optional dependencies with one clear error line naming the extra that provides them."""

from __future__ import annotations

import importlib
from types import ModuleType

from edgecv.errors import MissingDependency


def require(module: str, extra: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise MissingDependency naming ``pip install 'edgecv[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # ModuleNotFoundError or a broken install
        what = f" for {purpose}" if purpose else ""
        raise MissingDependency(
            f"{module} is needed{what} but is not importable ({exc}); install it with: pip install 'edgecv[{extra}]'"
        ) from exc
