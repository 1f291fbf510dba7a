"""PredFormer (Tang et al. 2024): a pure transformer on patch tokens with gated feed-forwards.

Every input frame is cut into ``patch x patch`` patches, each embedded linearly (a strided
convolution); a learned spatial position embedding (bilinearly interpolated when the token
grid differs from the one it was built for) and a learned temporal embedding are added.
The tokens ``(B, T_in, h*w, dim)`` then pass ``depth`` repetitions of ``order``, a string of
gated transformer layers (pre-norm multi-head self-attention + SwiGLU feed-forward) that
attend either over space (``"s"``: the ``h*w`` tokens of one frame) or over time (``"t"``:
the ``T_in`` tokens of one patch location). The default ``"sts"`` is the published
Triplet-STS order (spatial, temporal, spatial).

**Output frames.** After a final layer norm, a linear head maps every token of the
``T_in`` frames to its ``C x patch x patch`` pixels, and a learned linear map over time
(``T_in -> T_out`` weights shared by all pixels, initialised to repeat the last input frame)
gives the ``T_out`` output frames. Both maps are linear, so this equals mapping the tokens
over time first, at a fraction of the cost.

Any grid works: frames are replicate-padded to a multiple of ``patch`` and the output is
cropped back; the token grid is read from the embedded tensor.

Registered names: ``predformer`` and ``predformer-taxibj``.

Examples
--------
>>> import torch, stgeo
>>> m = stgeo.create_model("predformer", in_steps=4, out_steps=2, channels=1, patch=4, dim=16,
...                        heads=2, depth=1)
>>> m(torch.randn(3, 4, 1, 13, 22)).shape
torch.Size([3, 2, 1, 13, 22])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DataValidationError, StgeoTypeError
from .base import register_model
from .grids import GridRule
from .layers import ForecastModule, check_hyperparameter, crop_to, pad_to_multiple
from .layers.transformer import GatedTransformerLayer, check_heads, init_transformer_weights

__all__ = ["PredFormer", "predformer_grid"]

#: token grid of the position embedding when the builder is not told the data's grid
DEFAULT_POS_GRID = (16, 16)


class PredFormer(ForecastModule):
    """Patch-token transformer with interleaved spatial and temporal gated attention layers.

    Parameters
    ----------
    in_steps, out_steps, channels : int
        Frames in and out; channels per frame.
    patch : int
        Side of the square patches (frames are padded to a multiple).
    dim : int
        Token width.
    heads : int
        Attention heads (a divisor of ``dim``).
    depth : int
        Repetitions of ``order``; the model has ``depth * len(order)`` layers.
    order : str
        Layer pattern of one repetition, letters ``"s"`` (spatial attention) and ``"t"``
        (temporal attention), e.g. ``"sts"`` (Triplet-STS), ``"tst"``, ``"tsst"``.
    mlp_ratio : float
        Feed-forward expansion (SwiGLU hidden width ``2/3 * mlp_ratio * dim``).
    drop, drop_path : float
        Dropout; maximum stochastic-depth rate (linearly increasing over layers).
    pos_grid : (int, int)
        Token grid (rows, columns) of the learned position embedding; other grids
        interpolate it.
    """

    name = "predformer"

    def __init__(
        self,
        in_steps: int,
        out_steps: int,
        channels: int,
        *,
        patch: int = 4,
        dim: int = 256,
        heads: int = 8,
        depth: int = 4,
        order: str = "sts",
        mlp_ratio: float = 4.0,
        drop: float = 0.0,
        drop_path: float = 0.0,
        pos_grid: tuple[int, int] = DEFAULT_POS_GRID,
    ) -> None:
        super().__init__(in_steps, out_steps, channels)
        pos_grid = _check(patch, dim, heads, depth, order, mlp_ratio, drop, drop_path, pos_grid)
        self.patch, self.dim, self.order = patch, dim, order
        self.embed = nn.Conv2d(channels, dim, patch, stride=patch)
        self.pos = nn.Parameter(torch.zeros(1, dim, *pos_grid))
        self.time = nn.Parameter(torch.zeros(in_steps, 1, dim))
        n = depth * len(order)
        rates = torch.linspace(0, drop_path, n).tolist() if n > 1 else [drop_path]
        self.layers = nn.ModuleList(
            GatedTransformerLayer(dim, heads, mlp_ratio=mlp_ratio, drop=drop, drop_path=r)
            for r in rates
        )
        self.axes = order * depth
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, channels * patch * patch)
        self.time_map = nn.Linear(in_steps, out_steps)
        init_transformer_weights(self)
        nn.init.trunc_normal_(self.pos, std=0.02)
        nn.init.trunc_normal_(self.time, std=0.02)
        with torch.no_grad():  # start as "repeat the last input frame" over time
            self.time_map.weight.zero_()
            self.time_map.weight[:, -1] = 1.0
            self.time_map.bias.zero_()

    def position_embedding(self, h: int, w: int) -> torch.Tensor:
        """``(h*w, dim)`` spatial position embedding for an ``h x w`` token grid."""
        pos = self.pos
        if pos.shape[-2:] != (h, w):
            pos = F.interpolate(pos, size=(h, w), mode="bilinear", align_corners=False)
        return pos.flatten(2)[0].transpose(0, 1)

    def _tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        b, t, c, hp, wp = x.shape
        z = self.embed(x.reshape(b * t, c, hp, wp))
        h, w = z.shape[-2:]
        z = z.flatten(2).transpose(1, 2).reshape(b, t, h * w, self.dim)
        return z + self.position_embedding(h, w) + self.time, h, w

    def _mix(self, z: torch.Tensor) -> torch.Tensor:
        """Run the layers on ``(B, T, L, dim)``, transposing only when the axis changes."""
        spatial = True  # z is (B, T, L, dim): attention over L
        for axis, layer in zip(self.axes, self.layers, strict=True):
            if (axis == "s") != spatial:
                z, spatial = z.transpose(1, 2).contiguous(), not spatial
            z = layer(z)
        return z if spatial else z.transpose(1, 2)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c, h0, w0 = x.shape
        p = self.patch
        x = pad_to_multiple(x, p)
        z, h, w = self._tokens(x)
        y = self.head(self.norm(self._mix(z)))  # (B, T_in, L, C*p*p)
        y = self.time_map(y.movedim(1, -1)).movedim(-1, 1)  # (B, T_out, L, C*p*p)
        y = y.reshape(b, self.out_steps, h, w, c, p, p).permute(0, 1, 4, 2, 5, 3, 6)
        y = y.reshape(b, self.out_steps, c, h * p, w * p)
        return crop_to(y, (h0, w0))


def _check(patch, dim, heads, depth, order, mlp_ratio, drop, drop_path, pos_grid):
    """Validate the hyperparameters; return ``pos_grid`` as a tuple of two ints."""
    check_hyperparameter("patch", patch)
    check_hyperparameter("dim", dim)
    check_hyperparameter("heads", heads)
    check_heads(dim, heads)
    check_hyperparameter("depth", depth)
    if not isinstance(order, str) or not order or set(order) - {"s", "t"}:
        raise DataValidationError(
            f"order must be a non-empty string of 's' (spatial) and 't' (temporal) layers, "
            f"e.g. 'sts', got {order!r}"
        )
    check_hyperparameter("mlp_ratio", mlp_ratio, integer=False, minimum=0.125)
    check_hyperparameter("drop", drop, integer=False, minimum=0, maximum=0.99)
    check_hyperparameter("drop_path", drop_path, integer=False, minimum=0, maximum=0.99)
    if not isinstance(pos_grid, (tuple, list)) or len(pos_grid) != 2:
        raise StgeoTypeError(f"pos_grid must be (rows, columns) of tokens, got {pos_grid!r}")
    for v in pos_grid:
        check_hyperparameter("pos_grid", v)
    return int(pos_grid[0]), int(pos_grid[1])


def _build_predformer(in_steps, out_steps, channels, grid_shape=None, **hp) -> PredFormer:
    """PredFormer; the position embedding is sized for ``grid_shape`` when it is given."""
    if grid_shape is not None and "pos_grid" not in hp:
        patch = hp.get("patch", 4)
        if isinstance(patch, int) and not isinstance(patch, bool) and patch >= 1:
            hp["pos_grid"] = tuple(-(-int(n) // patch) for n in grid_shape)
    return PredFormer(in_steps, out_steps, channels, **hp)


_TAXIBJ = {"patch": 4, "dim": 256, "heads": 8, "drop": 0.1, "drop_path": 0.1}


def predformer_grid(hp) -> GridRule:
    """Grid rule of PredFormer: H, W multiples of ``patch``; not fully convolutional (spatial
    attention over every patch token of the frame, learned position embedding).

    Examples
    --------
    >>> predformer_grid({"patch": 4}).multiple
    4
    """
    note = "global spatial attention; position embedding on the token grid"
    return GridRule(multiple=int(hp.get("patch", 4)), note=note)


register_model(
    "predformer",
    _build_predformer,
    grid=predformer_grid,
    description="PredFormer, Triplet-STS gated transformer (patch 4, dim 256, 8 heads, depth 4)",
)
register_model(
    "predformer-taxibj",
    _build_predformer,
    grid=predformer_grid,
    defaults=_TAXIBJ,
    description="PredFormer, TaxiBJ config (patch 4, dim 256, 8 heads, dropout/drop path 0.1)",
)
