"""Learned nowcasting in Lagrangian coordinates: a network corrects optical-flow extrapolation.

Motion is the dominant predictable signal of rain at 0-60 min, and a network trained on a few
events learns it poorly; extrapolation gets the motion right but cannot grow, decay or smooth
what it moves. :class:`LagrangianNowcaster` splits the work the way L-CNN (Ritvanen et al.,
IEEE JSTARS 2023) and NowcastNet (Zhang et al., Nature 2023) do:

1. **motion**: pysteps' Lucas-Kanade optical flow of the input frames (no gradient), one
   ``(2, H, W)`` field per sample, in pixels per step; estimated on the model's inputs as
   they are (``motion_from="input"``) or, for rain rates, on their dBR values (``"dbr"``:
   ``10 log10 R`` at or above 0.1 mm/h, -15 dBR below, as the radar protocol's
   extrapolation and S-PROG; the inputs are taken back to mm/h through the normalisation
   the model was trained with), where the edges of light rain are as sharp as those of the
   cores;
2. **to Lagrangian coordinates**: every input frame is advected forward to the forecast
   origin along that motion (semi-Lagrangian backward trajectories with a mid-point step,
   bilinear sampling), so that the network sees rain cells standing still;
3. **evolution**: a fully convolutional U-Net (average-pool down-sampling, bilinear
   up-sampling then convolution - no transposed convolutions, so no checkerboard - and
   replicate padding at the borders) maps the aligned frames to one correction per lead time
   (direct multi-lead output: no recursion, so blur does not compound). Its last layer starts
   at zero: **at initialisation the model is exactly extrapolation** of the last frame, and
   training learns growth, decay and the smoothing of what is unpredictable;
4. **back to the grid**: the corrected field of lead ``k`` is advected ``k`` steps along the
   motion. Cells whose trajectory starts outside the grid take the nearest edge value
   (``inflow="border"``, the default: on a training crop inside a rain area, what flows in
   is rain much like the edge, and the network shapes its edge values) or the driest input
   value (``inflow="dry"``, as pysteps' extrapolation, which fills with no rain);
5. **probability matching** (``prob_matching=True``, evaluation mode only): each lead's values
   are replaced, rank for rank, by the values of the last observed frame (the empirical CDF
   matching that S-PROG ends with), which keeps rain area and peaks while keeping the
   network's pattern. It is rank based, so it works on normalised values.

The motion is estimated on whatever grid the model is given, so the model runs on whole grids
of any size (its grid rule says ``whole_grid``: the network's receptive field is bounded, but
the motion is a property of the whole domain and tiles would get it wrong). Needs the
``radar`` extra (pysteps, OpenCV).

Examples
--------
>>> import torch, stgeo
>>> x = torch.zeros(1, 4, 1, 32, 32)
>>> for t in range(4):
...     x[0, t, 0, 10:16, 6 + 2 * t : 12 + 2 * t] = 1.0   # a cell moving 2 px per step
>>> m = stgeo.create_model("lagrangian", in_steps=4, out_steps=3, hidden=8).eval()
>>> y = m(x)
>>> y.shape
torch.Size([1, 3, 1, 32, 32])
>>> cols = y[0, 2, 0].sum(0)                 # the cell keeps moving: 3 steps ahead
>>> int(cols.argmax()) in range(17, 21)
True
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.normalize import Normalizer
from ..errors import DataValidationError
from .base import register_model
from .grids import GridRule
from .layers import ForecastModule, check_hyperparameter
from .motion import lucas_kanade, to_db

__all__ = [
    "LagrangianNowcaster",
    "advect",
    "cascade_weights",
    "displacements",
    "match_distribution",
    "spectral_evolution",
]

_MULTIPLE = 4  # two 2x down-samplings in the U-Net


def _base_grid(h: int, w: int, device: torch.device) -> torch.Tensor:
    """Pixel coordinates ``(1, 2, H, W)``: channel 0 is the column (x), 1 the row (y)."""
    ys = torch.arange(h, device=device, dtype=torch.float32)
    xs = torch.arange(w, device=device, dtype=torch.float32)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((xx, yy))[None]


def _sample(field: torch.Tensor, pos: torch.Tensor, fill: torch.Tensor | None) -> torch.Tensor:
    """Bilinear samples of ``field`` ``(B, C, H, W)`` at pixel positions ``pos`` ``(B, 2, H, W)``.

    Outside the domain: ``fill`` ``(B, 1, 1, 1)`` if given, else the nearest border value.
    """
    h, w = field.shape[-2:]
    gx = pos[:, 0] * (2.0 / max(w - 1, 1)) - 1.0
    gy = pos[:, 1] * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1)
    out = F.grid_sample(field, grid, mode="bilinear", padding_mode="border", align_corners=True)
    if fill is None:
        return out
    inside = (gx.abs() <= 1.0) & (gy.abs() <= 1.0)
    return torch.where(inside[:, None], out, fill)


def displacements(velocity: torch.Tensor, steps: int) -> list[torch.Tensor]:
    """Backward-trajectory displacements of 1..``steps`` steps along ``velocity``.

    ``velocity`` ``(B, 2, H, W)`` is in pixels per step (channel 0: x/columns, 1: y/rows).
    The value at pixel ``p`` after ``k`` steps comes from ``p + D_k`` now; each step moves
    back along the velocity taken at the trajectory's mid-point (semi-Lagrangian scheme).

    Examples
    --------
    >>> import torch
    >>> v = torch.zeros(1, 2, 8, 8); v[:, 0] = 1.5          # uniform 1.5 px/step eastwards
    >>> [float(d[0, 0, 4, 4]) for d in displacements(v, 2)]
    [-1.5, -3.0]
    """
    base = _base_grid(*velocity.shape[-2:], velocity.device)
    d = torch.zeros_like(velocity)
    out = []
    for _ in range(steps):
        half = _sample(velocity, base + d - 0.5 * _sample(velocity, base + d, None), None)
        d = d - half
        out.append(d)
    return out


def advect(
    field: torch.Tensor, displacement: torch.Tensor, fill: torch.Tensor | None
) -> torch.Tensor:
    """``field`` ``(B, C, H, W)`` moved along a displacement of :func:`displacements`.

    Examples
    --------
    >>> import torch
    >>> f = torch.zeros(1, 1, 1, 6); f[..., 1] = 1.0
    >>> d = torch.zeros(1, 2, 1, 6); d[:, 0] = -2.0          # everything moves 2 px east
    >>> advect(f, d, torch.zeros(1, 1, 1, 1)).flatten().tolist()
    [0.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    """
    base = _base_grid(*field.shape[-2:], field.device)
    return _sample(field, base + displacement, fill)


def match_distribution(values: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Probability matching: ``values`` ``(B, N)`` take, rank for rank, the values of
    ``reference`` ``(B, N)`` (empirical CDF matching, as S-PROG's post-processing).

    Examples
    --------
    >>> import torch
    >>> match_distribution(torch.tensor([[0.2, 0.9, 0.5]]), torch.tensor([[0.0, 10.0, 3.0]]))
    tensor([[ 0.,  10.,  3.]])
    """
    order = values.argsort(dim=1)
    out = torch.empty_like(values)
    out.scatter_(1, order, reference.sort(dim=1).values.to(values.dtype))
    return out


def cascade_weights(h: int, w: int, levels: int, device: torch.device) -> torch.Tensor:
    """Weights ``(levels, H, W // 2 + 1)`` of a Gaussian band-pass cascade over the ``rfft2``
    wavenumbers of an ``H x W`` grid; they sum to 1 at every wavenumber.

    Level ``l`` is centred on ``q**l`` cycles across the larger side (``q`` spaces the levels
    geometrically from 1 cycle to the Nyquist wavenumber), Gaussian in log-wavenumber; the
    mean (wavenumber 0) belongs to level 0. This is the scale decomposition of S-PROG (Seed
    2003; pysteps' ``filter_gaussian``), re-derived here.

    Examples
    --------
    >>> import torch
    >>> wts = cascade_weights(16, 20, 4, torch.device("cpu"))
    >>> wts.shape, bool(torch.allclose(wts.sum(0), torch.ones(16, 11)))
    (torch.Size([4, 16, 11]), True)
    """
    n = max(h, w)
    ky = torch.fft.fftfreq(h, device=device) * n
    kx = torch.fft.rfftfreq(w, device=device) * n
    r = torch.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)
    logr = torch.log(r.clamp(min=1.0))
    top = np.log(max(n / 2.0, 2.0))
    centres = torch.linspace(0.0, top, levels, device=device)
    width = (top / max(levels - 1, 1)) if levels > 1 else 1.0
    wts = torch.exp(-0.5 * ((logr[None] - centres[:, None, None]) / (0.5 * width + 1e-6)) ** 2)
    wts[:, 0, 0] = 0.0
    wts[0, 0, 0] = 1.0
    return wts / wts.sum(0, keepdim=True)


def _masked_corr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Pearson correlation over the last two dims of ``a`` and ``b`` where ``mask`` is 1
    (0 where either field is constant there)."""
    n = mask.sum(dim=(-2, -1), keepdim=True)
    a = (a - (a * mask).sum(dim=(-2, -1), keepdim=True) / n) * mask
    b = (b - (b * mask).sum(dim=(-2, -1), keepdim=True) / n) * mask
    num = (a * b).sum(dim=(-2, -1))
    den = torch.sqrt(a.square().sum(dim=(-2, -1)) * b.square().sum(dim=(-2, -1)))
    return torch.where(den > 0, num / den.clamp(min=1e-12), torch.zeros_like(num))


def spectral_evolution(
    aligned: torch.Tensor,
    out_steps: int,
    levels: int = 6,
    gains: torch.Tensor | None = None,
    ar_pairs: str = "last",
) -> torch.Tensor:
    """S-PROG's evolution in Lagrangian coordinates: each scale of the last frame decays as an
    AR(2) process fitted to that scale's own history.

    ``aligned`` ``(B, T, C, H, W)`` are input frames already advected to the origin
    (``T >= 3``); the result ``(B, out_steps, C, H, W)`` holds, for lead ``k``, the sum over
    the cascade levels of the AR(2) forecast of each level. Per sample, channel and level the
    coefficients come from the lag-1 and lag-2 correlations of the level: those of the last
    frame with the one and two steps before (``ar_pairs="last"``, as S-PROG), or the mean over
    every pair of input frames one and two steps apart (``"all"``: more pairs, a steadier
    estimate when there are more than three inputs). As in S-PROG they are computed over the
    pixels that are wet (above the sample's driest value) in all the frames used, or over
    all pixels where fewer than 16 are; correlations clipped to [0, 0.999],
    the lag-2 one adjusted towards a stationary process (pysteps' ``adjust_lag2_corrcoef2``),
    then Yule-Walker (an AR(1) where the AR(2) would still not be stationary). Large scales,
    which persist, keep their amplitude; small scales, which decorrelate within minutes,
    fade: the expected value of what cannot be predicted is smooth. The mean of the last
    frame is kept. ``gains`` ``(out_steps, levels)``, if given, scale each level's forecast
    per lead (learned by :class:`LagrangianNowcaster` with ``scale_gains=True``).

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(1, 4, 1, 32, 32)                  # noise: no scale persists
    >>> y = spectral_evolution(x, 3)
    >>> y.shape, bool(y[0, -1].std() < x[0, -1].std())
    (torch.Size([1, 3, 1, 32, 32]), True)
    """
    t, (h, w) = aligned.shape[1], aligned.shape[-2:]
    if t < 3:
        raise DataValidationError("spectral evolution needs at least 3 input frames (AR(2))")
    if ar_pairs not in ("last", "all"):
        raise DataValidationError(
            f"spectral evolution: ar_pairs must be 'last' (S-PROG) or 'all', got {ar_pairs!r}"
        )
    n = 3 if ar_pairs == "last" else t  # the frames the correlations are computed from
    wts = cascade_weights(h, w, levels, aligned.device)
    spec = torch.fft.rfft2(aligned[:, -n:].float())  # (B, n, C, H, W//2+1)
    lev = torch.fft.irfft2(spec[:, :, :, None] * wts, s=(h, w))  # (B, n, C, L, H, W)
    z = lev - lev.mean(dim=(-2, -1), keepdim=True)

    # as S-PROG: correlations over the pixels with rain in all the frames used (where fewer
    # than 16 are wet, over all pixels), and the lag-2 correlation adjusted so that
    # Yule-Walker gives a stationary AR(2) (pysteps' adjust_lag2_corrcoef2)
    used = aligned[:, -n:].float()
    dry = used.amin(dim=(1, 3, 4), keepdim=True)
    tol = 1e-3 * (used.amax(dim=(1, 3, 4), keepdim=True) - dry)
    wet = (used > dry + tol).all(dim=1)[:, :, None].float()  # (B, C, 1, H, W)
    wet = torch.where(wet.sum(dim=(-2, -1), keepdim=True) >= 16, wet, torch.ones_like(wet))
    # pairs (i, i - lag): those ending at the last frame (S-PROG), or every pair
    lo1, lo2 = (1, 2) if ar_pairs == "all" else (n - 1, n - 1)
    r1 = torch.stack([_masked_corr(lev[:, i], lev[:, i - 1], wet) for i in range(lo1, n)])
    r2 = torch.stack([_masked_corr(lev[:, i], lev[:, i - 2], wet) for i in range(lo2, n)])
    r1, r2 = r1.mean(0).clamp(0.0, 0.999), r2.mean(0).clamp(0.0, 0.999)  # (B, C, L)
    r2 = torch.maximum(r2, 2 * r1 * r2 - 1)
    r2 = torch.maximum(r2, (3 * r1**2 - 2 + 2 * (1 - r1**2) ** 1.5) / r1.clamp(min=1e-6) ** 2)
    phi1 = r1 * (1 - r2) / (1 - r1**2)
    phi2 = (r2 - r1**2) / (1 - r1**2)
    ok = (phi2 > -1) & (phi2 < 1 - phi1) & (phi2 < 1 + phi1)  # AR(2) stationarity
    phi1 = torch.where(ok, phi1, r1)
    phi2 = torch.where(ok, phi2, torch.zeros_like(phi2))
    mean = (lev[:, -1] - z[:, -1]).sum(dim=2)  # (B, C, 1, 1): the last frame's mean persists
    prev, cur = z[:, -2], z[:, -1]  # (B, C, L, H, W)
    out = []
    for k in range(out_steps):
        prev, cur = cur, phi1[..., None, None] * cur + phi2[..., None, None] * prev
        if gains is None:
            out.append(mean + cur.sum(dim=2))
        else:
            out.append(mean + (cur * gains[k].view(1, 1, -1, 1, 1)).sum(dim=2))
    return torch.stack(out, dim=1)


def _conv(cin: int, cout: int, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, padding_mode="replicate")


class _Block(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(_conv(cin, cout), nn.GELU(), _conv(cout, cout), nn.GELU())


class _Residual(nn.Module):
    def __init__(self, ch: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(ch, ch, dilation), nn.GELU(), _conv(ch, ch, dilation), nn.GELU()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class EvolutionUNet(nn.Module):
    """Fully convolutional U-Net (two levels) mapping aligned frames to per-lead corrections.

    Examples
    --------
    >>> import torch
    >>> EvolutionUNet(4, 3, hidden=8)(torch.zeros(2, 4, 16, 20)).shape
    torch.Size([2, 3, 16, 20])
    """

    def __init__(self, cin: int, cout: int, hidden: int = 32, bottleneck: int = 2) -> None:
        super().__init__()
        h = hidden
        self.enc0 = nn.Sequential(_conv(cin, h), nn.GELU())  # full resolution: one conv
        self.enc1 = _Block(h, 2 * h)
        self.enc2 = _Block(2 * h, 4 * h)
        self.mid = nn.Sequential(*[_Residual(4 * h, 2 ** (i % 3)) for i in range(bottleneck)])
        self.dec1 = _Block(4 * h + 2 * h, 2 * h)
        self.dec0 = nn.Sequential(_conv(2 * h + h, h), nn.GELU())
        self.head = nn.Conv2d(h, cout, 1)
        nn.init.zeros_(self.head.weight)  # the correction starts at exactly zero
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % _MULTIPLE, (-w) % _MULTIPLE
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        e0 = self.enc0(x)
        e1 = self.enc1(F.avg_pool2d(e0, 2))
        e2 = self.mid(self.enc2(F.avg_pool2d(e1, 2)))
        up = F.interpolate(e2, size=e1.shape[-2:], mode="bilinear", align_corners=False)
        d1 = self.dec1(torch.cat((up, e1), dim=1))
        up = F.interpolate(d1, size=e0.shape[-2:], mode="bilinear", align_corners=False)
        out = self.head(self.dec0(torch.cat((up, e0), dim=1)))
        return out[..., :h, :w]


class LagrangianNowcaster(ForecastModule):
    """Optical-flow extrapolation corrected by a network in Lagrangian coordinates.

    Parameters
    ----------
    in_steps, out_steps, channels : int
        Input frames (at least 2, for the motion), lead times, channels (motion is estimated
        on the channel mean; every channel is advected).
    hidden : int
        Width of the U-Net's first level (the others are 2x and 4x).
    bottleneck : int
        Residual blocks (dilated 1, 2, 4, ...) at the coarsest level.
    prob_matching : bool
        In evaluation mode, match each lead's value distribution to the last observed frame.
    inflow : {"border", "dry"}
        What enters the grid from outside: the nearest edge value or the driest input value.
    evolution : {"persistence", "spectral"}
        What the network corrects in Lagrangian coordinates: the last frame for every lead
        (``"persistence"``: the untrained model is extrapolation) or S-PROG's scale-wise
        AR(2) decay of it (``"spectral"``, :func:`spectral_evolution`: the untrained model is
        an S-PROG-like nowcast; needs ``in_steps >= 3``).
    levels : int
        Cascade levels of ``evolution="spectral"`` (6, as the radar protocol's S-PROG).
    ar_pairs : {"last", "all"}
        With ``evolution="spectral"``: each level's AR(2) coefficients come from the
        correlations of the last frame with the two before (``"last"``, as S-PROG) or from
        the mean over every pair of input frames at lag 1 and 2 (``"all"``, see
        :func:`spectral_evolution`; used by the ``radar-nowcaster`` pretrained model).
    scale_gains : bool
        With ``evolution="spectral"``: learn one gain per lead and cascade level that scales
        that level's AR(2) forecast (they start at 1, the plain spectral evolution). A few
        dozen parameters trained with the U-Net: how much of each scale survives, learned
        from data rather than from three frames alone.
    motion_from : {"input", "dbr"}
        Estimate the motion on the inputs as given, or on their dBR values (rain rates in
        mm/h; recommended for rain, used by the ``radar-nowcaster`` pretrained model).
    normalization : dict, optional
        How the inputs were normalised (``Normalizer.to_dict()``; ``None``: they are in
        mm/h). Only ``motion_from="dbr"`` uses it; training and loading pass it.
    """

    name = "lagrangian"

    def __init__(
        self,
        in_steps: int,
        out_steps: int,
        channels: int = 1,
        hidden: int = 32,
        bottleneck: int = 2,
        prob_matching: bool = False,
        inflow: str = "border",
        evolution: str = "persistence",
        levels: int = 6,
        scale_gains: bool = False,
        motion_from: str = "input",
        normalization: dict[str, Any] | None = None,
        ar_pairs: str = "last",
    ) -> None:
        super().__init__(in_steps, out_steps, channels)
        if motion_from not in ("input", "dbr"):
            raise DataValidationError(
                f"lagrangian: motion_from must be 'input' (the inputs as given) or 'dbr' "
                f"(dBR of rain rates in mm/h), got {motion_from!r}"
            )
        self.motion_from = motion_from
        self.normalizer = Normalizer.from_dict(normalization)
        if inflow not in ("border", "dry"):
            raise DataValidationError(
                f"lagrangian: inflow must be 'border' or 'dry', got {inflow!r}"
            )
        if evolution not in ("persistence", "spectral"):
            raise DataValidationError(
                f"lagrangian: evolution must be 'persistence' or 'spectral', got {evolution!r}"
            )
        self.inflow = inflow
        self.evolution = evolution
        self.levels = int(levels)
        check_hyperparameter("in_steps", in_steps, minimum=3 if evolution == "spectral" else 2)
        check_hyperparameter("levels", levels, minimum=1)
        if ar_pairs not in ("last", "all"):
            raise DataValidationError(
                f"lagrangian: ar_pairs must be 'last' (the last frame with the two before, as "
                f"S-PROG) or 'all' (every pair of input frames), got {ar_pairs!r}"
            )
        self.ar_pairs = ar_pairs
        if scale_gains and evolution != "spectral":
            raise DataValidationError(
                "lagrangian: scale_gains=True scales the cascade levels of "
                "evolution='spectral'; pass evolution='spectral' or drop scale_gains"
            )
        self.prob_matching = bool(prob_matching)
        self.net = EvolutionUNet(in_steps * channels, out_steps * channels, hidden, bottleneck)
        self.scale_gains = nn.Parameter(torch.ones(out_steps, self.levels)) if scale_gains else None

    @torch.no_grad()
    def motion(self, x: torch.Tensor) -> torch.Tensor:
        """Lucas-Kanade motion ``(B, 2, H, W)`` (pixels per step) of inputs ``(B, T, C, H, W)``."""
        x = x.detach().float()
        if self.motion_from == "dbr":
            rain = self.normalizer.inverse(x).mean(dim=2).cpu().numpy()
            frames = to_db(rain)  # NaN (no data) -> -15 dBR
        else:
            frames = x.mean(dim=2).cpu().numpy().astype(np.float64)
        fields = [_motion_or_zero(f) for f in frames]
        return torch.from_numpy(np.stack(fields)).float().to(x.device)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = x.shape
        with torch.autocast(x.device.type, enabled=False):
            xf = x.float()
            dry = xf.amin(dim=(1, 2, 3, 4)).view(b, 1, 1, 1)
            fill = None if self.inflow == "border" else dry
            steps = self.displacements(xf, max(t - 1, self.out_steps))
            aligned = [xf[:, -1]] + [
                advect(xf[:, t - 1 - j], steps[j - 1], fill) for j in range(1, t)
            ]
            aligned = torch.stack(aligned[::-1], dim=1)  # (B, T, C, H, W), oldest first
        corr = self.net(aligned.reshape(b, t * c, h, w).to(x.dtype))
        with torch.autocast(x.device.type, enabled=False):
            if self.evolution == "spectral":
                gains = None if self.scale_gains is None else self.scale_gains.float()
                base = spectral_evolution(
                    aligned, self.out_steps, self.levels, gains, self.ar_pairs
                )
            else:
                base = xf[:, -1:]
            lagr = base + corr.float().view(b, self.out_steps, c, h, w)
            out = torch.stack(
                [advect(lagr[:, k], steps[k], fill) for k in range(self.out_steps)], dim=1
            )
            if self.prob_matching and not self.training:
                ref = xf[:, -1].reshape(b * c, 1, h * w).expand(-1, self.out_steps, -1)
                flat = out.transpose(1, 2).reshape(b * c * self.out_steps, h * w)
                matched = match_distribution(flat, ref.reshape(-1, h * w))
                out = matched.view(b, c, self.out_steps, h, w).transpose(1, 2)
        return out.to(x.dtype)

    def displacements(self, x: torch.Tensor, steps: int) -> list[torch.Tensor]:
        """Displacements of 1..``steps`` steps along the motion of ``x``."""
        return displacements(self.motion(x), steps)


def _motion_or_zero(frames: np.ndarray) -> np.ndarray:
    """LK motion of ``(T, H, W)`` frames; zero motion for featureless (e.g. dry) frames."""
    if not np.isfinite(frames).all() or np.ptp(frames) <= 0:
        return np.zeros((2, *frames.shape[1:]))
    with warnings.catch_warnings():  # pysteps' outlier test on few vectors (small crops)
        warnings.simplefilter("ignore", RuntimeWarning)
        v = lucas_kanade(frames)
    return np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)


def _build_lagrangian(
    in_steps: int,
    out_steps: int,
    channels: int,
    grid_shape: Any = None,
    hidden: int = 32,
    bottleneck: int = 2,
    prob_matching: bool = False,
    inflow: str = "border",
    evolution: str = "persistence",
    levels: int = 6,
    scale_gains: bool = False,
    motion_from: str = "input",
    normalization: dict[str, Any] | None = None,
    ar_pairs: str = "last",
) -> LagrangianNowcaster:
    return LagrangianNowcaster(
        in_steps,
        out_steps,
        channels,
        hidden=hidden,
        bottleneck=bottleneck,
        prob_matching=prob_matching,
        inflow=inflow,
        evolution=evolution,
        levels=levels,
        scale_gains=scale_gains,
        motion_from=motion_from,
        normalization=normalization,
        ar_pairs=ar_pairs,
    )


register_model(
    "lagrangian",
    _build_lagrangian,
    grid=GridRule(
        multiple=_MULTIPLE,
        note="Lucas-Kanade motion estimated over the whole grid (the U-Net itself is local)",
        whole_grid=True,
    ),
    aliases=("l-unet",),
    description="Optical-flow extrapolation corrected by a U-Net in Lagrangian coordinates",
)
