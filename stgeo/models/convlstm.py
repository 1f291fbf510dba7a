"""ConvLSTM (Shi et al., NeurIPS 2015): a stack of convolutional LSTM cells.

Frames are optionally space-to-depth patchified by ``patch`` (``p x p`` pixels become
``C * p * p`` channels) to cut cost. The stack reads the ``in_steps`` input frames, then
rolls out ``out_steps`` frames, feeding each prediction back as the next input. The read-out
is a 1x1 convolution of the top cell's hidden state (``readout="patch"``, the original) or,
with ``readout="upsample"``, a 3x3 convolution of the hidden state resized to full resolution
(resize-then-convolve: no ``p x p`` blocks in the output). ``padding_mode="replicate"``
pads the gate convolutions with the edge values instead of zeros, so the cells at the
border see no artificial dry (zero) frame and the forecast grows no rim along the edges.

Registered names: ``convlstm``, ``convlstm-taxibj`` (4 cells x 128, kernel 5, patch 2),
``convlstm-radar`` (4 cells x 64, kernel 5, patch 4).

Examples
--------
>>> import torch, stgeo
>>> m = stgeo.create_model("convlstm", in_steps=3, out_steps=2, channels=1, hidden=(8, 8),
...                        kernel_size=3, patch=2)
>>> m(torch.randn(2, 3, 1, 9, 14)).shape
torch.Size([2, 2, 1, 9, 14])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DataValidationError, StgeoTypeError
from .base import register_model
from .grids import GridRule
from .layers import ForecastModule, check_hyperparameter, crop_to, pad_to_multiple

__all__ = ["ConvLSTM", "ConvLSTMCell", "convlstm_grid"]


class ConvLSTMCell(nn.Module):
    """One ConvLSTM cell; the gates come from one convolution of ``[x_t, h_{t-1}]``.

    ``i, f, o = sigmoid(.)``, ``g = tanh(.)``, ``c_t = f * c_{t-1} + i * g``,
    ``h_t = o * tanh(c_t)`` (equivalent to ``conv(x_t) + conv(h_{t-1})`` with one bias).
    """

    def __init__(
        self, in_ch: int, hidden: int, kernel_size: int = 5, padding_mode: str = "zeros"
    ) -> None:
        super().__init__()
        self.hidden = hidden
        self.conv = nn.Conv2d(
            in_ch + hidden,
            4 * hidden,
            kernel_size,
            padding=kernel_size // 2,
            padding_mode=padding_mode,
        )
        nn.init.xavier_uniform_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        with torch.no_grad():  # forget-gate bias 1: remember by default at initialisation
            self.conv.bias[hidden : 2 * hidden].fill_(1.0)

    def forward(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        i, f, o, g = self.conv(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvLSTM(ForecastModule):
    """A stack of :class:`ConvLSTMCell` with autoregressive roll-out.

    Parameters
    ----------
    in_steps, out_steps, channels : int
        Frames in and out; channels per frame.
    hidden : int or sequence of int
        Hidden channels of each cell (an int means ``num_layers`` cells of that size).
    num_layers : int
        Number of cells when ``hidden`` is an int.
    kernel_size : int
        Odd kernel size of the gate convolutions.
    patch : int
        Space-to-depth factor ``p``; the grid is padded to a multiple of ``p``.
    padding_mode : {"zeros", "replicate", "reflect"}
        Padding of the gate convolutions at the grid's edges (default ``"zeros"``, the
        original).
    readout : {"patch", "upsample"}
        ``"patch"`` (default, the original): a 1x1 convolution to ``C * p * p`` channels,
        rearranged into ``p x p`` pixels; ``"upsample"``: the hidden state resized
        bilinearly by ``p``, then a 3x3 convolution to ``C`` channels at full resolution.
    """

    name = "convlstm"

    def __init__(
        self,
        in_steps: int,
        out_steps: int,
        channels: int,
        *,
        hidden: int | Sequence[int] = 64,
        num_layers: int = 4,
        kernel_size: int = 5,
        patch: int = 1,
        padding_mode: str = "zeros",
        readout: str = "patch",
    ) -> None:
        super().__init__(in_steps, out_steps, channels)
        if isinstance(hidden, int) and not isinstance(hidden, bool):
            check_hyperparameter("num_layers", num_layers)
            hidden = [hidden] * num_layers
        elif isinstance(hidden, Sequence) and not isinstance(hidden, str) and len(hidden) > 0:
            hidden = list(hidden)
        else:
            raise StgeoTypeError(f"hidden must be an int or a list of ints, got {hidden!r}")
        for k in hidden:
            check_hyperparameter("hidden", k)
        check_hyperparameter("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise DataValidationError(f"kernel_size must be odd, got {kernel_size}")
        check_hyperparameter("patch", patch)
        _check_choice("padding_mode", padding_mode, ("zeros", "replicate", "reflect"))
        _check_choice("readout", readout, ("patch", "upsample"))
        self.patch = patch
        self.hidden = hidden
        self.upsample = readout == "upsample"
        frame_ch = channels * patch * patch
        self.cells = nn.ModuleList(
            ConvLSTMCell(frame_ch if i == 0 else hidden[i - 1], k, kernel_size, padding_mode)
            for i, k in enumerate(hidden)
        )
        if self.upsample:
            self.readout = nn.Conv2d(hidden[-1], channels, 3, padding=1, padding_mode=padding_mode)
        else:
            self.readout = nn.Conv2d(hidden[-1], frame_ch, 1)

    def _read(self, h: torch.Tensor) -> torch.Tensor:
        """The next frame in patch space ``(B, C * p * p, H / p, W / p)``."""
        if not self.upsample:
            return self.readout(h)
        p = self.patch
        if p > 1:
            h = F.interpolate(h, scale_factor=p, mode="bilinear", align_corners=False)
        y = self.readout(h)
        return F.pixel_unshuffle(y, p) if p > 1 else y

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = x.shape
        x = pad_to_multiple(x, self.patch)
        hp, wp = x.shape[-2:]
        p = self.patch
        frames = F.pixel_unshuffle(x.reshape(b * t, c, hp, wp), p) if p > 1 else x
        frames = frames.reshape(b, t, c * p * p, hp // p, wp // p)
        hl, wl = frames.shape[-2:]
        state = [
            (frames.new_zeros(b, k, hl, wl), frames.new_zeros(b, k, hl, wl)) for k in self.hidden
        ]
        outputs = []
        inp = frames[:, 0]
        for step in range(t + self.out_steps - 1):
            if step < t:
                inp = frames[:, step]
            for i, cell in enumerate(self.cells):
                state[i] = cell(inp if i == 0 else state[i - 1][0], *state[i])
            if step >= t - 1:
                inp = self._read(state[-1][0])
                outputs.append(inp)
        y = torch.stack(outputs, dim=1).reshape(b * self.out_steps, c * p * p, hl, wl)
        if p > 1:
            y = F.pixel_shuffle(y, p)
        return crop_to(y.reshape(b, self.out_steps, c, hp, wp), (h, w))


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise DataValidationError(
            f"convlstm {name} must be one of {', '.join(map(repr, allowed))}, got {value!r}"
        )


def convlstm_grid(hp) -> GridRule:
    """Grid rule of ConvLSTM: fully convolutional (gates are convolutions, the state is
    per pixel), H and W multiples of ``patch`` (space-to-depth).

    Examples
    --------
    >>> convlstm_grid({"patch": 4})
    GridRule(multiple=4, fully_convolutional=True, note='', fixed_grid=False, whole_grid=False)
    """
    return GridRule(multiple=int(hp.get("patch", 1)), fully_convolutional=True)


def _build_convlstm(in_steps, out_steps, channels, grid_shape=None, **hp) -> ConvLSTM:
    """ConvLSTM stack with autoregressive roll-out."""
    return ConvLSTM(in_steps, out_steps, channels, **hp)


register_model(
    "convlstm",
    _build_convlstm,
    grid=convlstm_grid,
    description="ConvLSTM stack (4 x 64, kernel 5), autoregressive roll-out",
)
register_model(
    "convlstm-taxibj",
    _build_convlstm,
    defaults={"hidden": 128, "num_layers": 4, "kernel_size": 5, "patch": 2},
    grid=convlstm_grid,
    description="ConvLSTM, TaxiBJ benchmark config (4 x 128, kernel 5, patch 2)",
)
register_model(
    "convlstm-radar",
    _build_convlstm,
    defaults={"hidden": 64, "num_layers": 4, "kernel_size": 5, "patch": 4},
    grid=convlstm_grid,
    description="ConvLSTM for radar grids (4 x 64, kernel 5, patch 4)",
)
