"""DDP plumbing for ``torchrun --nproc_per_node=N``: gloo on CPU, nccl on GPU. A single process is a
world of one and every helper degrades to a no-op."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

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
