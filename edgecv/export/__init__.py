"""Export: one converter per path, named source-to-target, each a plain function (source, spec) -> Path.

``edgecv.export(run, **options)`` calls ``edgecv.export.run.export`` (see ``edgecv._callable``)."""

import sys

from edgecv._callable import CallableModule

sys.modules[__name__].__class__ = CallableModule
sys.modules[__name__].__call_target__ = "edgecv.export.run:export"
