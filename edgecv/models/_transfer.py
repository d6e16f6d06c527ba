"""``TransferModel``: the one interface every task's model offers the trainers and export, whatever its task.

- ``body``: the pretrained ImageNet part, what stage 1 runs frozen (and caches) and stage 2 partly unfreezes;
- ``units()``: ``body``'s parameterised groups, input to output (stage 2 unfreezes the last N, the others keep
  their ImageNet BatchNorm statistics);
- ``head_parameters()``: what the task adds on top of ``body``, the parameters stage 1 trains;
- ``float_modules``: names of submodules int8 export always keeps in float (a detector's box decoder)."""

from __future__ import annotations

from torch import nn


class TransferModel(nn.Module):
    float_modules: tuple[str, ...] = ()
    body: nn.Module  # a submodule of the subclass, or a property naming one

    def units(self) -> list[list[nn.Module]]:
        raise NotImplementedError

    def head_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def freeze_body(self) -> None:
        """Stage 1: nothing in ``body`` trains."""
        for p in self.body.parameters():
            p.requires_grad_(False)
