"""Data-parallel training on PyTorch's own engine, with or without ``torchrun``.

Under ``torchrun --nproc_per_node=N`` (which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
the rendezvous address) :func:`setup` joins the process group, gloo on the CPU and NCCL on
GPUs; without it the same code runs as a single process of rank 0.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from rlgan.device import resolve_device
from rlgan.io import DirectoryBusyError, DirectoryLock


@dataclass(frozen=True)
class Distributed:
    """This process's place in the job.

    Attributes:
        rank: index of this process, 0..world_size-1 (rank 0 writes checkpoints and logs).
        world_size: number of processes (1 without torchrun).
        device: the device this process trains on.
    """

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device: str) -> Distributed:
    """Join the ``torchrun`` process group if there is one; pick this rank's device.

    ``device="auto"`` means ``cuda:LOCAL_RANK`` when CUDA is present, else the CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed(0, 1, resolve_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device)
    if resolved.type == "cuda":
        resolved = torch.device("cuda", local_rank)
        torch.cuda.set_device(resolved)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if resolved.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), resolved)


def teardown(context: Distributed) -> None:
    """Leave the process group (no-op for a single process)."""
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


def mean_over_ranks(context: Distributed, values: dict[str, float]) -> dict[str, float]:
    """Average float logs over ranks (a NaN on any rank makes the mean NaN everywhere)."""
    if not context.enabled or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[key] for key in keys], dtype=torch.float64, device=context.device)
    dist.all_reduce(tensor)
    return {key: float(value) / context.world_size for key, value in zip(keys, tensor.tolist())}


def barrier(context: Distributed) -> None:
    """Wait for every rank (no-op for a single process)."""
    if context.enabled:
        dist.barrier()


@contextmanager
def main_rank_lock(context: Distributed, directory: str | Path) -> Iterator[None]:
    """Rank 0 holds ``directory``'s :class:`rlgan.io.DirectoryLock` for the block (only it
    writes); when another process holds it, every rank raises, so none waits for the others.

    Raises:
        rlgan.io.DirectoryBusyError: another process is writing ``directory`` (on every rank).
    """
    lock = DirectoryLock(directory) if context.is_main else None
    refusal = [None]
    if lock is not None:
        try:
            lock.acquire()
        except DirectoryBusyError as error:
            refusal[0] = str(error)
    if context.enabled:
        dist.broadcast_object_list(refusal, src=0)
    if refusal[0] is not None:
        raise DirectoryBusyError(refusal[0])
    try:
        yield
    finally:
        if lock is not None:
            lock.release()
