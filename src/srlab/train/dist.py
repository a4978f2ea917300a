"""Data-parallel training under ``torchrun``: the few calls the loop makes to the process group.

Each rank draws its own batches and DistributedDataParallel averages the gradients, so every
replica takes the same optimiser step; rank 0 alone validates and writes artifacts.
"""

from __future__ import annotations

import os

import torch
from torch import nn

__all__ = ["distributed", "mean_across", "wrap", "finish"]


def distributed() -> tuple[int, int]:
    """(rank, world size); joins the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def mean_across(value: float, world: int) -> float:
    """Average a scalar over DDP ranks, so every rank takes the same guard decision."""
    if world == 1:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / world


def wrap(model: nn.Module, world: int) -> nn.Module:
    """What the loop calls for a forward pass: ``model`` itself, or its DDP wrapper."""
    if world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model)


def finish(model: nn.Module, rank: int, world: int) -> None:
    """Print this replica's parameter checksum (identical replicas print the same one) and
    leave the process group."""
    if world == 1:
        return
    checksum = sum(float(p.double().sum()) for p in model.parameters())
    print(f"rank {rank} parameter checksum {checksum:.12e}", flush=True)
    import torch.distributed as dist

    dist.barrier()
    # leave the group explicitly: a rank that exits with its gloo context alive can
    # abort in the context's destructor ("terminate called without an active
    # exception", seen once in the DDP test on a loaded machine)
    dist.destroy_process_group()
