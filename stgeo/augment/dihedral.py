"""Dihedral augmentation: random flips and quarter turns of isotropic fields.

Rain cells, storm cells and cloud fields evolve the same way whichever way the wind blows: a
radar archive of a few days shows only a few wind directions, and a network learns them as
if they were the only ones. Training on flipped and rotated copies of the windows (the same
transform for a sample's inputs and targets) shows every direction; CNN nowcasting studies
use the same trick (e.g. Ayzel et al., GMD 2020, RainNet). It is **for scalar fields with no
preferred direction**: not for vector components (a flipped grid of ``u`` winds would need
``-u``), not for fields with fixed geography or orientation (ERA5's west-to-east flow, a
city's street grid in TaxiBJ or BikeNYC).

``stgeo.train(..., augment="dihedral")`` uses it; each sample of every training batch gets
one of the 8 symmetries of the square (identity, three quarter turns, four reflections)
drawn uniformly, or on a non-square grid one of the 4 that keep its shape (identity, the two
flips, the half turn). Draws come from the augmentation's own generator, reseeded per batch
by training from the run seed, epoch, batch and rank, so a resumed run is exact.

Examples
--------
>>> import torch
>>> from stgeo.augment.dihedral import Dihedral
>>> aug = Dihedral(seed=0)
>>> x = torch.arange(4.0).view(1, 1, 1, 2, 2).repeat(8, 2, 1, 1, 1)  # 8 samples, 2 frames
>>> xa, ya = aug(x, x[:, :1] * 10)
>>> xa.shape, ya.shape
(torch.Size([8, 2, 1, 2, 2]), torch.Size([8, 1, 1, 2, 2]))
>>> bool(torch.equal(ya, xa[:, :1] * 10))  # the same transform for inputs and targets
True
"""

from __future__ import annotations

import torch

from ..errors import DataValidationError
from .nuwa import mix_seed

__all__ = ["Dihedral", "dihedral"]

#: the symmetries that keep an H != W grid's shape: identity, half turn, flip W, flip H
_SHAPE_KEEPING = (0, 2, 4, 6)


def dihedral(t: torch.Tensor, code: int) -> torch.Tensor:
    """Apply symmetry ``code`` (0-7) of the square to the last two dims of ``t``:
    ``code % 4`` quarter turns (counter-clockwise), after a left-right flip if ``code >= 4``.

    Examples
    --------
    >>> import torch
    >>> t = torch.tensor([[1, 2], [3, 4]])
    >>> dihedral(t, 1).tolist(), dihedral(t, 4).tolist()
    ([[2, 4], [1, 3]], [[2, 1], [4, 3]])
    """
    if not 0 <= int(code) < 8:
        raise DataValidationError(f"dihedral: code must be 0..7, got {code!r}")
    if code >= 4:
        t = t.flip(-1)
    k = int(code) % 4
    return torch.rot90(t, k, dims=(-2, -1)) if k else t


class Dihedral:
    """Random flips and quarter turns, the same for a sample's input and target frames.

    Parameters
    ----------
    seed : int
        Seed of the augmentation's generator (training reseeds it per batch from the run seed).

    Examples
    --------
    >>> import torch
    >>> aug = Dihedral()
    >>> x, y = torch.rand(4, 3, 1, 8, 6), torch.rand(4, 2, 1, 8, 6)
    >>> xa, ya = aug(x, y)                 # H != W: flips and half turns only
    >>> xa.shape == x.shape and ya.shape == y.shape
    True
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)

    def reseed(self, *keys: int) -> None:
        """Restart the generator from ``mix_seed(seed, *keys)`` (run seed, epoch, batch, rank)."""
        self.generator.manual_seed(mix_seed(self.seed, *keys))

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 5 or y.ndim != 5 or x.shape[0] != y.shape[0] or x.shape[-2:] != y.shape[-2:]:
            raise DataValidationError(
                "dihedral: expected inputs (B, T_in, C, H, W) and targets (B, T_out, C, H, W) "
                f"on the same grid, got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        h, w = x.shape[-2:]
        codes = range(8) if h == w else _SHAPE_KEEPING
        draws = torch.randint(len(codes), (x.shape[0],), generator=self.generator).tolist()
        xs, ys = [], []
        for i, d in enumerate(draws):
            xs.append(dihedral(x[i], codes[d]))
            ys.append(dihedral(y[i], codes[d]))
        return torch.stack(xs).contiguous(), torch.stack(ys).contiguous()

    def __repr__(self) -> str:
        return f"Dihedral(seed={self.seed})"
