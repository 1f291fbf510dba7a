"""Inception block of group convolutions (the multi-scale unit of SimVP v1 / EarthFarseer TeDev).

A 1x1 convolution reduces the input to ``hidden`` channels; parallel group convolutions
with several kernel sizes (each followed by GroupNorm and LeakyReLU) map it to ``out_ch``
channels, and their outputs are summed. Several kernel sizes see several spatial scales at
once; grouping keeps large kernels affordable.

Examples
--------
>>> import torch
>>> from stgeo.models.layers.inception import InceptionBlock
>>> InceptionBlock(12, 8, 16, kernels=(3, 5), groups=4)(torch.randn(2, 12, 9, 7)).shape
torch.Size([2, 16, 9, 7])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ...errors import DataValidationError

__all__ = ["InceptionBlock", "check_kernels"]


def check_kernels(kernels: Sequence[int]) -> tuple[int, ...]:
    """The kernel sizes as a tuple of odd positive ints, or a stgeo error.

    Examples
    --------
    >>> check_kernels([3, 5])
    (3, 5)
    """
    if isinstance(kernels, (str, bytes)) or not isinstance(kernels, Sequence) or not kernels:
        raise DataValidationError(f"kernel sizes must be a non-empty list of ints, got {kernels!r}")
    for k in kernels:
        if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k % 2 == 0:
            raise DataValidationError(f"kernel sizes must be odd positive ints, got {kernels!r}")
    return tuple(kernels)


class InceptionBlock(nn.Module):
    """1x1 reduction, then summed ``GroupConv(k) -> GroupNorm -> LeakyReLU(0.2)`` branches.

    Parameters
    ----------
    in_ch, hidden, out_ch : int
        Input, reduced and output channels.
    kernels : sequence of int
        Odd kernel sizes of the parallel branches.
    groups : int
        Groups of the convolutions and norms; reduced to the largest common divisor of
        ``hidden`` and ``out_ch`` when they do not divide by it.
    """

    def __init__(
        self,
        in_ch: int,
        hidden: int,
        out_ch: int,
        kernels: Sequence[int] = (3, 5, 7, 11),
        groups: int = 8,
    ) -> None:
        super().__init__()
        kernels = check_kernels(kernels)
        g = math.gcd(groups, hidden, out_ch)
        self.reduce = nn.Conv2d(in_ch, hidden, 1)
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(hidden, out_ch, k, padding=k // 2, groups=g),
                nn.GroupNorm(g, out_ch),
                nn.LeakyReLU(0.2),
            )
            for k in kernels
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(x)
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out
