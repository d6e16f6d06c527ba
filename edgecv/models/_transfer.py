"""``TransferModel``: the one interface every task's model offers the trainers and export, whatever its task.

- ``body``: the pretrained ImageNet part, what stage 1 runs frozen (and caches) and stage 2 partly unfreezes;
- ``units()``: ``body``'s parameterised groups, input to output (stage 2 unfreezes the last N, the others keep
  their ImageNet BatchNorm statistics);
- ``head_parameters()``: what the task adds on top of ``body``, the parameters stage 1 trains;
- ``float_modules``: names of submodules int8 export always keeps in float (a detector's box decoder)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import nn


class TransferModel(nn.Module, ABC):
    """A model class that leaves out ``units`` or ``head_parameters`` cannot be instantiated."""

    float_modules: tuple[str, ...] = ()
    body: nn.Module  # a submodule of the subclass, or a property naming one

    @abstractmethod
    def units(self) -> list[list[nn.Module]]:
        """``body``'s parameterised groups, input to output."""

    @abstractmethod
    def head_parameters(self) -> list[nn.Parameter]:
        """The parameters the task adds on top of ``body``."""

    def freeze_body(self) -> None:
        """Stage 1: nothing in ``body`` trains."""
        for p in self.body.parameters():
            p.requires_grad_(False)
