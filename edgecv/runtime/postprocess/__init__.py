"""Raw backend outputs -> typed results, per task (registry keyed by the artifact's task).

Each task registers its function with the typed options it takes (``ClassifyOptions``, ``DetectOptions``,
``EmbedOptions``): ``run_postprocess(outputs, meta, options, transform)`` is the one call the pipeline makes, and an
option that does not belong to the artifact's task is refused by name (``options_for``), never ignored.
"""

from edgecv.runtime.postprocess import classify as _classify  # noqa: F401  (each task registers itself)
from edgecv.runtime.postprocess import detect as _detect  # noqa: F401
from edgecv.runtime.postprocess import embed as _embed  # noqa: F401
from edgecv.runtime.postprocess._registry import Postprocess, get_postprocess, list_postprocess, options_for, register_postprocess

__all__ = ["Postprocess", "get_postprocess", "list_postprocess", "options_for", "register_postprocess"]
