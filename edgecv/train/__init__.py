"""Training: the shared loop (checkpoints, resume, DDP, progress), feature cache, stages.

``edgecv.train(recipe, **options)`` calls ``edgecv.train.run.train`` (see ``edgecv._callable``)."""

import sys

from edgecv._callable import CallableModule

sys.modules[__name__].__class__ = CallableModule
sys.modules[__name__].__call_target__ = "edgecv.train.run:train"
