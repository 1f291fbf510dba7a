"""Adaptive Fourier neural operator (AFNO) token mixing and the pre-LN Fourier block.

AFNO (Guibas et al., ICLR 2022) mixes the tokens of a grid globally: a 2-D real FFT over the
token grid, the same small block-diagonal complex MLP applied to every Fourier mode, a
soft-shrink that sparsifies the modes, and the inverse FFT. Its parameters do not depend on
the size of the token grid, so one set of weights runs on any grid.

Two activations are offered (``activation=``):

* ``"phase"`` (default): modReLU on the hidden layer (``z * relu(|z| + b) / |z|``), no complex
  biases, and the soft-shrink applied to each mode's magnitude (the proximal operator of the
  complex L1 norm). Every operation commutes with multiplying a mode by a phase, so the mixer
  is exactly equivariant to circular shifts of the token grid: a feature is treated the same
  wherever it sits, on a training crop or on a much larger grid.
* ``"split"``: AFNO's original form, ReLU and soft-shrink on the real and imaginary parts
  separately (with complex biases); not shift-equivariant.

The FFTs and the activations run in float32 whatever the autocast or weight dtype
(``torch.fft`` has no bf16 CPU kernels); the mode MLP is one dense matrix product per layer on
the modes with real and imaginary parts interleaved (the block-diagonal complex weight written
in real form), computed in bf16 when the block runs in bf16 (bf16 weights or bf16 autocast)
and in float32 otherwise.

Examples
--------
>>> import torch
>>> from stgeo.models.layers.afno import FourierBlock
>>> blk = FourierBlock(16, num_blocks=4)
>>> blk(torch.randn(2, 5, 7, 16)).shape
torch.Size([2, 5, 7, 16])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import DataValidationError
from .common import DropPath, check_hyperparameter

__all__ = ["FourierBlock", "FourierMixer", "interpolate_pos_embed"]

_ACTIVATIONS = ("phase", "split")


def _realify(w: torch.Tensor) -> torch.Tensor:
    """``(2, nb, i, o)`` real/imag weights -> ``(nb, 2i, 2o)`` acting on interleaved (re, im).

    Row ``2j + c`` (input component ``c`` of channel ``j``) and column ``2k + c'`` hold the
    real 2x2 form ``[[Wr, Wi], [-Wi, Wr]]`` of the complex weight ``W[j, k]``.
    """
    wr, wi = w[0], w[1]
    row_re = torch.stack((wr, wi), dim=-1)  # real input -> (re, im) of the output
    row_im = torch.stack((-wi, wr), dim=-1)  # imaginary input -> (re, im)
    nb, i, o = wr.shape
    return torch.stack((row_re, row_im), dim=2).reshape(nb, 2 * i, 2 * o)


def _modrelu(z: torch.Tensor, bias: torch.Tensor | float) -> torch.Tensor:
    """``z * relu(1 + bias / |z|)`` on interleaved ``(..., n, 2)`` complex entries.

    With ``bias = b`` it is modReLU (``z * relu(|z| + b) / |z|``); with ``bias = -lambda`` it
    is the complex soft-shrink (the magnitude shrinks by lambda, the phase is kept).
    """
    re, im = z[..., 0], z[..., 1]
    inv = torch.rsqrt(torch.addcmul(re * re, im, im) + 1e-12)
    scale = F.relu(
        torch.addcmul(torch.ones_like(inv), inv, bias)
        if isinstance(bias, torch.Tensor)
        else inv * bias + 1.0
    )
    return z * scale.unsqueeze(-1)


class FourierMixer(nn.Module):
    """AFNO token mixer on a channels-last token grid ``(B, h, w, dim)``.

    Parameters
    ----------
    dim : int
        Channels per token.
    num_blocks : int
        Diagonal blocks of the complex MLP (``dim`` must divide by it).
    hidden_factor : int
        Hidden width of each block relative to its size.
    sparsity : float
        Soft-shrink threshold (lambda) applied to the Fourier modes.
    activation : {"phase", "split"}
        Phase-preserving (shift-equivariant) or AFNO's real/imaginary-split activations.

    Examples
    --------
    >>> import torch
    >>> mix = FourierMixer(8, num_blocks=2)
    >>> x = torch.randn(1, 6, 10, 8)
    >>> torch.allclose(mix(x.roll(3, dims=2)), mix(x).roll(3, dims=2), atol=1e-5)
    True
    """

    def __init__(
        self,
        dim: int,
        num_blocks: int = 4,
        hidden_factor: int = 1,
        sparsity: float = 0.01,
        activation: str = "phase",
    ) -> None:
        super().__init__()
        check_hyperparameter("num_blocks", num_blocks)
        check_hyperparameter("hidden_factor", hidden_factor)
        check_hyperparameter("sparsity", sparsity, integer=False, minimum=0)
        if dim % num_blocks:
            raise DataValidationError(
                f"the Fourier width {dim} must be divisible by num_blocks={num_blocks}"
            )
        if activation not in _ACTIVATIONS:
            raise DataValidationError(
                f"activation must be one of {', '.join(_ACTIVATIONS)}, got {activation!r}"
            )
        bs = dim // num_blocks
        hb = bs * hidden_factor
        self.num_blocks, self.sparsity, self.activation = num_blocks, float(sparsity), activation
        # complex weights with unit gain: a mode keeps its magnitude through each layer at init
        self.w1 = nn.Parameter(torch.randn(2, num_blocks, bs, hb) / math.sqrt(2 * bs))
        self.w2 = nn.Parameter(torch.randn(2, num_blocks, hb, bs) / math.sqrt(2 * hb))
        if activation == "split":
            self.b1 = nn.Parameter(torch.zeros(num_blocks, 2 * hb))
            self.b2 = nn.Parameter(torch.zeros(num_blocks, 2 * bs))
        else:  # modReLU bias on the hidden magnitudes; complex biases would break equivariance
            self.b1 = nn.Parameter(torch.zeros(num_blocks, hb))
            self.b2 = None

    def _matrix(self, w: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The dense block-diagonal real form of a complex block weight."""
        return torch.block_diag(*_realify(w.to(dtype)))

    def _mix(self, z: torch.Tensor, w: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``z @ W`` (the block-diagonal layer in real form) in the working precision:
        bf16 when the block runs in bf16 (the modes' products are ordinary matrix products;
        only the FFTs need float32), else ``z``'s dtype; the result is ``z``'s dtype."""
        if dtype in (torch.bfloat16, torch.float16) and z.dtype == torch.float32:
            return (z.to(dtype) @ self._matrix(w, dtype)).to(z.dtype)
        return z @ self._matrix(w, z.dtype)

    def _hidden(self, z: torch.Tensor) -> torch.Tensor:
        if self.activation == "split":
            return F.relu(z + self.b1.to(z.dtype).flatten())
        return _modrelu(z.unflatten(-1, (-1, 2)), self.b1.to(z.dtype).flatten()).flatten(-2)

    def _shrink(self, z: torch.Tensor) -> torch.Tensor:
        if self.activation == "split":
            return F.softshrink(z + self.b2.to(z.dtype).flatten(), self.sparsity)
        return _modrelu(z.unflatten(-1, (-1, 2)), -self.sparsity).flatten(-2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, d = x.shape
        dev = x.device.type
        work = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype
        # FFTs in float32 (float64 for float64 input): torch.fft has no bf16 CPU kernels
        with torch.autocast(dev, enabled=False):
            ct = torch.float64 if x.dtype == torch.float64 else torch.float32
            spec = torch.fft.rfft2(x.to(ct), dim=(1, 2), norm="ortho")
            # (B, h, w//2+1, d) complex -> (modes, 2d), real/imag interleaved per channel
            z = torch.view_as_real(spec).reshape(-1, 2 * d)
            z = self._hidden(self._mix(z, self.w1, work))
            z = self._shrink(self._mix(z, self.w2, work)).reshape(b, h, w // 2 + 1, d, 2)
            out = torch.fft.irfft2(torch.view_as_complex(z), s=(h, w), dim=(1, 2), norm="ortho")
        return out.to(x.dtype)


class FourierBlock(nn.Module):
    """Pre-LN AFNO block on ``(B, h, w, dim)`` tokens: ``x + AFNO(LN(x))``, ``x + MLP(LN(x))``.

    Parameters
    ----------
    dim : int
        Channels per token.
    num_blocks, sparsity, activation
        Of the :class:`FourierMixer`.
    mlp_ratio : float
        Hidden width of the token MLP relative to ``dim``.
    drop_path : float
        Stochastic-depth rate of both residual branches.

    Examples
    --------
    >>> import torch
    >>> FourierBlock(8, num_blocks=2, mlp_ratio=2)(torch.zeros(1, 3, 4, 8)).shape
    torch.Size([1, 3, 4, 8])
    """

    def __init__(
        self,
        dim: int,
        num_blocks: int = 4,
        mlp_ratio: float = 2.0,
        sparsity: float = 0.01,
        activation: str = "phase",
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        hidden = max(1, round(dim * mlp_ratio))
        self.norm1 = nn.LayerNorm(dim)
        self.mixer = FourierMixer(dim, num_blocks, sparsity=sparsity, activation=activation)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.mixer(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def interpolate_pos_embed(pos: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A learned ``(1, D, gh, gw)`` positional embedding resampled to a ``size`` token grid.

    Bilinear with ``align_corners=False``: the embedding is read as a continuous function of
    the token's *relative* position in the domain, so the corners of any grid get the
    corners' embedding and the interior a smooth interpolation (as ViTs do when fine-tuned at
    another resolution).

    Examples
    --------
    >>> import torch
    >>> interpolate_pos_embed(torch.zeros(1, 4, 8, 8), (5, 13)).shape
    torch.Size([1, 4, 5, 13])
    """
    if tuple(pos.shape[-2:]) == tuple(size):
        return pos
    return F.interpolate(pos, size=size, mode="bilinear", align_corners=False)
