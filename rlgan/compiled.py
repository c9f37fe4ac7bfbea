"""Run a network through ``torch.compile`` on a few fixed batch sizes.

``torch.compile`` (inductor) fuses a small convolution network's element-wise layers (batch
norm, FiLM, ReLU, the blend) into few loops and, frozen, folds batch norm into the
convolutions: the world model's generator then needs about half the CPU time per frame at a
batch of 27. But it specialises on the batch size, and a search asks for many sizes (its levels
shrink as unsafe branches are pruned). :class:`FixedBatchNetwork` pads every batch up to the
next of a few sizes and compiles each size once, ahead of the first real call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn


def tree_batch_sizes(branching: int, largest: int) -> tuple[int, ...]:
    """Batch sizes of a full search tree's levels: ``1, b, b**2, ...`` up to ``largest``
    (``largest`` itself ends the list, so every batch splits into pieces of at most it).

    Raises:
        ValueError: ``branching`` below 2 or ``largest`` below 1.
    """
    if branching < 2 or largest < 1:
        raise ValueError(f"need branching >= 2 and largest >= 1, got {branching} and {largest}")
    sizes = [1]
    while sizes[-1] * branching <= largest:
        sizes.append(sizes[-1] * branching)
    if sizes[-1] != largest:
        sizes.append(largest)
    return tuple(sizes)


def pad_rows(tensor: torch.Tensor, rows: int) -> torch.Tensor:
    """``tensor`` with copies of its last row appended up to ``rows`` rows, in its own memory
    layout: a compiled network guards on strides, so a channels-last input padded into the
    default layout would compile the network again (and past its recompile limit, run eager)."""
    padded = torch.cat([tensor, tensor[-1:].expand(rows - len(tensor), *tensor.shape[1:])])
    if tensor.dim() == 4 and tensor.is_contiguous(memory_format=torch.channels_last):
        padded = padded.contiguous(memory_format=torch.channels_last)
    return padded


class FixedBatchNetwork:
    """``network`` compiled once per batch size in ``sizes``, called on any batch.

    A batch of ``n`` rows runs in pieces of at most ``max(sizes)`` rows; each piece is padded
    with copies of its last row up to the smallest size that holds it, and the padding's
    outputs are dropped. Rows are independent (eval-mode batch norm), so results equal the
    eager network's up to float rounding.

    Args:
        network: a module in eval mode whose positional tensor inputs and output (a tensor or
            a tuple of tensors) all have the batch on their first axis.
        sizes: the batch sizes to compile, e.g. :func:`tree_batch_sizes`.
        example: builds example inputs for a batch size (for :meth:`warm_up`).
    """

    def __init__(self, network: nn.Module, sizes: Sequence[int],
                 example: Callable[[int], tuple[torch.Tensor, ...]]) -> None:
        if not sizes or min(sizes) < 1:
            raise ValueError(f"batch sizes must be positive, got {list(sizes)}")
        self.sizes = tuple(sorted(set(int(size) for size in sizes)))
        self.example = example
        # freezing: weights become constants, so inductor folds batch norm into the
        # convolutions and packs their weights once (inference only). Isolated recompiles: each
        # network keeps its own cache of compiled sizes, so several networks sharing a forward
        # (two world models in one process) do not exhaust a common recompile limit and fall
        # back to eager.
        self.compiled = torch.compile(network, dynamic=False, options={"freezing": True},
                                      isolate_recompiles=True,
                                      recompile_limit=max(8, len(self.sizes)))

    def warm_up(self) -> None:
        """Compile every batch size now (the first compile on a machine takes tens of seconds;
        inductor caches the result on disk for later processes).

        Raises:
            RuntimeError: ``torch.compile`` cannot build for this machine (on the CPU it needs
                a C++ compiler); run the network eagerly instead.
        """
        try:
            with torch.inference_mode():
                for size in self.sizes:
                    self.compiled(*self.example(size))
        except Exception as error:  # inductor raises many types; all mean "cannot compile here"
            raise RuntimeError("torch.compile could not build the network for this machine (on "
                               "the CPU it needs a C++ compiler such as g++); run without "
                               f"compiling instead. The compiler said: {error}") from error

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        rows, largest = inputs[0].shape[0], self.sizes[-1]
        outputs = []
        for start in range(0, rows, largest):
            piece = [tensor[start:start + largest] for tensor in inputs]
            length = piece[0].shape[0]
            size = next(size for size in self.sizes if size >= length)
            if size > length:
                piece = [pad_rows(tensor, size) for tensor in piece]
            output = self.compiled(*piece)
            outputs.append(tuple(part[:length] for part in output) if isinstance(output, tuple)
                           else output[:length])
        if len(outputs) == 1:
            return outputs[0]
        if isinstance(outputs[0], tuple):
            return tuple(torch.cat(parts) for parts in zip(*outputs))
        return torch.cat(outputs)
