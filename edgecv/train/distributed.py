"""DDP plumbing for ``torchrun --nproc_per_node=N``: gloo on CPU, nccl on GPU. A single process is a
world of one and every helper degrades to a no-op."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from edgecv.errors import EdgecvError


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str = "cpu") -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if device == "cuda" and not torch.cuda.is_available():
        raise EdgecvError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu")
    if world <= 1:
        return DistInfo(0, 1, torch.device(device))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
        # N processes on one machine share its cores; oversubscribing them makes DDP slower than one process.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), dev)


def barrier(info: DistInfo) -> None:
    if info.world > 1:
        dist.barrier()


def gather_rows(info: DistInfo, rows: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each rank holds some rows with their dataset indices; every rank gets all rows sorted by index."""
    if info.world == 1:
        order = torch.argsort(index)
        return rows[order], index[order]
    parts = [None] * info.world
    dist.all_gather_object(parts, (rows.cpu(), index.cpu()))
    rows = torch.cat([p[0] for p in parts])
    index = torch.cat([p[1] for p in parts])
    order = torch.argsort(index)
    return rows[order], index[order]


def ddp(module: nn.Module, info: DistInfo) -> nn.Module:
    """``module`` wrapped in DistributedDataParallel in a world of several (its gradients averaged over the ranks in
    backward); the module itself in a world of one."""
    return DistributedDataParallel(module) if info.world > 1 else module


class Forward(nn.Module):
    """One of a model's forward passes (a method other than ``forward``) as a module's ``forward``, for ``ddp``:
    DistributedDataParallel only averages the gradients of what runs through its wrapper's ``forward``."""

    def __init__(self, model: nn.Module, method: str):
        super().__init__()
        self.model, self.method = model, method

    def forward(self, *args):
        return getattr(self.model, self.method)(*args)


def share(batch, info: DistInfo):
    """This rank's part of a global batch (the same indices on every rank): every world-th item from its rank, or
    the first item when the batch is smaller than the world (``share_weight`` then weighs it 0)."""
    part = batch[info.rank :: info.world]
    return part if len(part) else batch[:1]


def share_weight(global_size: int, info: DistInfo) -> tuple[int, float]:
    """(how many items of a global batch of that size this rank holds, the factor on its mean loss that makes
    DistributedDataParallel's average of the ranks' gradients the gradient of the global batch's mean loss).
    In a world of one: (global_size, 1.0), so every task trains on the same batches at any world size."""
    count = len(range(info.rank, global_size, info.world))
    return count, count * info.world / max(global_size, 1)


def mean_over_ranks(total: float, count: int, info: DistInfo) -> float:
    """sum(total) / sum(count) over the ranks: an epoch's mean loss per item, the same figure at any world size."""
    if info.world > 1:
        t = torch.tensor([float(total), float(count)], dtype=torch.float64)
        dist.all_reduce(t)
        total, count = float(t[0]), int(t[1])
    return total / max(count, 1)


def broadcast_flag(info: DistInfo, flag: bool) -> bool:
    """Rank 0's decision (e.g. early stop) for everyone."""
    if info.world == 1:
        return flag
    t = torch.tensor([int(flag)], device=info.device if info.device.type == "cuda" else "cpu")
    dist.broadcast(t, 0)
    return bool(t.item())


def shutdown(info: DistInfo) -> None:
    if info.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
