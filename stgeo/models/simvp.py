"""SimVP v2 with the gSTA translator (Tan et al. 2022) and TAU (Tan et al., CVPR 2023).

Per-frame convolutional encoder -> translator on frames stacked along channels ->
per-frame decoder with a skip connection from the first encoder block. Any grid size works:
the input is replicate-padded to a multiple of the encoder's down-sampling factor and the
output cropped back.

Registered names: ``simvp`` (alias ``simvp-gsta``), ``simvp-taxibj``, ``simvp-radar``,
``tau``, ``tau-taxibj``, ``tau-radar``. The ``tau`` names declare
``auxiliary_loss=(differential_divergence, 0.1)``, the regulariser the training loop adds
(see :mod:`stgeo.models.losses`).

Examples
--------
>>> import torch, stgeo
>>> m = stgeo.create_model("simvp", in_steps=4, out_steps=2, channels=1, hid_S=8, hid_T=16,
...                        N_S=2, N_T=2)
>>> m(torch.randn(3, 4, 1, 13, 20)).shape
torch.Size([3, 2, 1, 13, 20])
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import DataValidationError
from .base import register_model
from .grids import GridRule
from .layers import (
    EncoderTranslatorDecoder,
    FrameDecoder,
    FrameEncoder,
    TranslatorBlock,
    check_hyperparameter,
)
from .losses import AUX_LOSSES

__all__ = ["SimVP", "simvp_grid"]


class SimVP(EncoderTranslatorDecoder):
    """SimVP v2: encoder (N_S blocks), translator (N_T gSTA or TAU blocks), decoder.

    Parameters
    ----------
    in_steps, out_steps, channels : int
        Frames in and out; channels per frame.
    hid_S : int
        Channels of the spatial encoder/decoder (even).
    hid_T : int
        Channels inside the translator.
    N_S : int
        Encoder (and decoder) blocks; stride 2 on every second block, so the latent grid is
        the input grid divided by ``2 ** (N_S // 2)``.
    N_T : int
        Translator blocks; the first maps ``in_steps*hid_S -> hid_T``, the last
        ``hid_T -> out_steps*hid_S``.
    translator : {"gsta", "tau"}
        Attention of the translator blocks.
    mlp_ratio : float
        Expansion of the translator MLPs.
    drop, drop_path : float
        Dropout in the MLPs; maximum stochastic-depth rate (linearly increasing over blocks).
    spatio_kernel : int
        Kernel size of the encoder/decoder convolutions (odd).
    """

    name = "simvp"

    def __init__(
        self,
        in_steps: int,
        out_steps: int,
        channels: int,
        *,
        hid_S: int = 32,
        hid_T: int = 256,
        N_S: int = 2,
        N_T: int = 8,
        translator: str = "gsta",
        mlp_ratio: float = 8.0,
        drop: float = 0.0,
        drop_path: float = 0.0,
        spatio_kernel: int = 3,
    ) -> None:
        super().__init__(in_steps, out_steps, channels)
        check_hyperparameter("hid_S", hid_S, minimum=2)
        if hid_S % 2:
            raise DataValidationError(f"hid_S must be even (GroupNorm with 2 groups), got {hid_S}")
        check_hyperparameter("hid_T", hid_T)
        check_hyperparameter("N_S", N_S, minimum=2)
        check_hyperparameter("N_T", N_T)
        check_hyperparameter("mlp_ratio", mlp_ratio, integer=False, minimum=0.125)
        check_hyperparameter("drop", drop, integer=False, minimum=0, maximum=0.99)
        check_hyperparameter("drop_path", drop_path, integer=False, minimum=0, maximum=0.99)
        check_hyperparameter("spatio_kernel", spatio_kernel)
        if spatio_kernel % 2 == 0:
            raise DataValidationError(f"spatio_kernel must be odd, got {spatio_kernel}")
        if translator not in ("gsta", "tau"):
            raise DataValidationError(f"translator must be 'gsta' or 'tau', got {translator!r}")
        self.name = "tau" if translator == "tau" else "simvp"
        self.hid_S = hid_S
        self.encoder = FrameEncoder(channels, hid_S, N_S, spatio_kernel)
        self.decoder = FrameDecoder(hid_S, channels, N_S, spatio_kernel)
        self.factor = self.encoder.factor
        c_in, c_out = in_steps * hid_S, out_steps * hid_S
        rates = torch.linspace(0, drop_path, N_T).tolist() if N_T > 1 else [drop_path]
        blocks = []
        for i in range(N_T):
            dim = c_in if i == 0 else hid_T
            out = c_out if i == N_T - 1 else hid_T
            blocks.append(
                TranslatorBlock(
                    dim, out, kind=translator, mlp_ratio=mlp_ratio, drop=drop, drop_path=rates[i]
                )
            )
        self.translator = nn.Sequential(*blocks)
        # the first encoder block's output is the decoder's skip; with T_out != T_in the
        # stacked skips are mixed by a 1x1 convolution
        self.skip_proj = nn.Conv2d(c_in, c_out, 1) if in_steps != out_steps else None

    def _translate(self, z: torch.Tensor, b: int, t: int) -> torch.Tensor:
        hl, wl = z.shape[-2:]
        z = self.translator(z.reshape(b, t * self.hid_S, hl, wl))
        return z.reshape(b * self.out_steps, self.hid_S, hl, wl)


def _build_simvp(in_steps, out_steps, channels, grid_shape=None, **hp) -> SimVP:
    """SimVP v2 with the gSTA translator."""
    hp.setdefault("translator", "gsta")
    return SimVP(in_steps, out_steps, channels, **hp)


def _build_tau(in_steps, out_steps, channels, grid_shape=None, **hp) -> SimVP:
    """TAU: SimVP with temporal attention units (SE-gated large-kernel attention)."""
    if hp.get("translator", "tau") != "tau":
        raise DataValidationError("tau models always use translator='tau'; use 'simvp' for gSTA")
    hp["translator"] = "tau"
    return SimVP(in_steps, out_steps, channels, **hp)


_TAXIBJ = {"hid_S": 32, "hid_T": 256, "N_S": 2, "N_T": 8, "drop_path": 0.1}
_RADAR = {"hid_S": 32, "hid_T": 256, "N_S": 4, "N_T": 6, "drop_path": 0.1}


def _tau_grid(hp) -> GridRule:
    return simvp_grid({**hp, "translator": "tau"})


def simvp_grid(hp) -> GridRule:
    """Grid rule of SimVP and TAU: H, W multiples of the encoder's ``2 ** (N_S // 2)``; not
    fully convolutional (GroupNorm normalises each frame over H and W in the encoder and
    decoder; TAU's channel gate also pools over the whole grid).

    Examples
    --------
    >>> simvp_grid({"N_S": 4, "translator": "tau"}).multiple
    4
    """
    note = "GroupNorm over H, W in the encoder/decoder"
    if hp.get("translator") == "tau":
        note += "; global average pooling in the temporal attention"
    return GridRule(multiple=2 ** (int(hp.get("N_S", 2)) // 2), note=note)


register_model(
    "simvp",
    _build_simvp,
    grid=simvp_grid,
    aliases=("simvp-gsta",),
    description="SimVP v2, gSTA translator (hid_S 32, hid_T 256, N_S 2, N_T 8)",
)
register_model(
    "simvp-taxibj",
    _build_simvp,
    grid=simvp_grid,
    defaults=_TAXIBJ,
    description="SimVP v2 gSTA, TaxiBJ benchmark config (~10 M parameters)",
)
register_model(
    "simvp-radar",
    _build_simvp,
    grid=simvp_grid,
    defaults=_RADAR,
    description="SimVP v2 gSTA for radar grids (4x down-sampling)",
)
_TAU_LOSS = AUX_LOSSES["tau"]  # TAU's differential divergence, declared with the names
register_model(
    "tau",
    _build_tau,
    grid=_tau_grid,
    description="TAU: SimVP with temporal attention units",
    auxiliary_loss=_TAU_LOSS,
)
register_model(
    "tau-taxibj",
    _build_tau,
    grid=_tau_grid,
    defaults=_TAXIBJ,
    description="TAU, TaxiBJ benchmark config",
    auxiliary_loss=_TAU_LOSS,
)
register_model(
    "tau-radar",
    _build_tau,
    grid=_tau_grid,
    defaults=_RADAR,
    description="TAU for radar grids",
    auxiliary_loss=_TAU_LOSS,
)
