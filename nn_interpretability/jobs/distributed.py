"""The processes of a job: one, or those ``torchrun`` starts, joined by ``torch.distributed``.

Under ``torchrun --nproc_per_node=N`` (and across hosts with its rendezvous) every process reads its
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; chunk ``i`` of a job belongs to rank ``i % WORLD_SIZE``.
``gloo`` joins CPU processes, ``nccl`` GPU processes, one device (``cuda:LOCAL_RANK``) per rank.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..core.seed import resolve_device


@dataclass(frozen=True)
class Processes:
    """This process's place among the job's processes.

    Attributes
    ----------
    rank, world_size : int
    device : torch.device
        ``cuda:LOCAL_RANK`` for a GPU job under torchrun, else the device asked for.
    """

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def owns(self, chunk: int) -> bool:
        """Whether chunk ``chunk`` is this rank's to compute."""
        return chunk % self.world_size == self.rank

    def barrier(self) -> None:
        """Wait for every rank (nothing for a single process)."""
        if self.distributed:
            if dist.get_backend() == "nccl":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    def agree(self, error: Exception | None) -> None:
        """Raise on every rank the error rank 0 found (``None``: none), so that no rank waits for a failed one."""
        message = [error]
        if self.distributed:
            dist.broadcast_object_list(message, src=0)
        if message[0] is not None:
            raise message[0]


@contextmanager
def processes(device: str | torch.device = "auto") -> Iterator[Processes]:
    """This process's :class:`Processes`, joining the torchrun group for the duration (left in ``finally``).

    A process group the caller already initialised is used as it is and left open.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1 and not (dist.is_available() and dist.is_initialized()):
        yield Processes(device=resolve_device(device))
        return
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and resolve_device(device).type == "cuda"
    if use_cuda:
        torch.cuda.set_device(local_rank)
        here = torch.device("cuda", local_rank)
    else:
        here = torch.device("cpu")
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group("nccl" if use_cuda else "gloo", device_id=here if use_cuda else None)
    try:
        yield Processes(rank=dist.get_rank(), world_size=dist.get_world_size(), device=here)
    finally:
        if owned:
            dist.destroy_process_group()
