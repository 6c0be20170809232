"""torchrun / DDP set-up shared by the training stages: one process per GPU (nccl) or per CPU slot (gloo)."""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str) -> Dist:
    """Join the torchrun process group when WORLD_SIZE > 1; otherwise a single process."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = 0, 1
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    return Dist(rank, world, torch.device(f"cuda:{local_rank}" if device == "cuda" else "cpu"))


def teardown_distributed() -> None:
    """Leave together: a rank that tears gloo down while rank 0 still writes its files can abort at exit."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
