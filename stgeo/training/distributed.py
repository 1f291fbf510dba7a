"""Multi-process training with torch.distributed, active only under ``torchrun``.

Launched with ``WORLD_SIZE > 1`` the run initialises the process group (NCCL on CUDA, else
Gloo), pins each rank to its local GPU, wraps the model in ``DistributedDataParallel``,
shards the windows per rank, sums validation counts across ranks and saves only on rank 0::

    torchrun --nproc_per_node=4 -m stgeo.cli train radar-knmi-20100826 --model simvp ...

Examples
--------
>>> import torch
>>> maybe_distributed(torch.device("cpu")) is None   # not under torchrun
True
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as tdist
from torch.nn.parallel import DistributedDataParallel

__all__ = ["Distributed", "maybe_distributed"]


class Distributed:
    """Thin torch.distributed helper: rank, world size, the rank's device, collectives."""

    def __init__(self, device: torch.device):
        self.created = False
        if not tdist.is_initialized():
            tdist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            self.created = True
        self.rank = tdist.get_rank()
        self.world = tdist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", self.rank))
        if device.type == "cuda":
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        self.device = device

    def wrap(self, module: torch.nn.Module) -> Any:
        """``module`` in ``DistributedDataParallel`` (gradients averaged across ranks)."""
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def all_reduce(self, t: torch.Tensor) -> None:
        """Sum ``t`` across ranks, in place."""
        tdist.all_reduce(t)

    def barrier(self) -> None:
        tdist.barrier()

    def close(self) -> None:
        if self.created:
            tdist.destroy_process_group()


def maybe_distributed(device: torch.device) -> Distributed | None:
    """A :class:`Distributed` under ``torchrun`` (``WORLD_SIZE > 1``), else ``None``."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return Distributed(device)
    return None
