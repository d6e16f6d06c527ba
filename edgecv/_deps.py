"""Import optional dependencies with one clear error line naming the extra that provides them."""

from __future__ import annotations

import importlib
from types import ModuleType

from edgecv.errors import MissingDependency


def require(module: str, extra: str, purpose: str = "", how: str | None = None) -> ModuleType:
    """Import ``module`` or raise MissingDependency naming ``pip install 'edgecv[extra]'`` (or ``how``, for what no
    extra can install, such as TensorRT)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # ModuleNotFoundError or a broken install
        what = f" for {purpose}" if purpose else ""
        how = how or f"install it with: pip install 'edgecv[{extra}]'"
        raise MissingDependency(f"{module} is needed{what} but is not importable ({exc}); {how}") from exc
