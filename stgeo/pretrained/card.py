"""The model card of a pretrained artefact: what it is, what data it fits, how it was made.

A card is one entry of a pretrained index (``index.json``) and is also written next to the
weights as ``card.json``. It names the artefact, its architecture (and the ``backbone`` of a
wrapper model), the data it fits (variables, standard names, units, time step), its sizes
and scaling, where its weights are (a folder next to the index, or a URL with a sha256
checksum), the training recipe that rebuilds it, the data fingerprint, benchmark scores
and its licence and provenance.

Examples
--------
>>> from stgeo.pretrained import PretrainedCard
>>> card = PretrainedCard.from_dict({
...     "name": "my-nowcaster", "architecture": "convlstm", "variables": ["rain_rate"],
...     "units": {"rain_rate": "mm h-1"}, "time_step": "5min", "in_steps": 4,
...     "out_steps": 12, "files": {"url": "https://example.org/m.safetensors",
...                                "sha256": 64 * "0"}})
>>> card.fits_text()
'rain_rate [mm h-1] every 5min'
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import DataValidationError, StgeoTypeError

__all__ = ["PretrainedCard"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REQUIRED = ("name", "architecture", "variables", "time_step", "in_steps", "out_steps", "files")


@dataclass(frozen=True)
class PretrainedCard:
    """One pretrained artefact, as listed in a pretrained index.

    Parameters
    ----------
    name : str
        Unique name (lower case, digits, ``.``, ``_``, ``-``), e.g. ``"storms-convlstm"``.
    architecture : str
        The registered model name the weights are for (``spec.model``); forecasting by this
        name (or one of its aliases) may pick this artefact.
    variables : list of str
        The variables the model reads and forecasts, in channel order.
    time_step : str
        The data's time step the model was trained on (``"5min"``), or ``"per-event"``.
    in_steps, out_steps : int
        Input frames and frames of one forward pass.
    input_offsets : list of int, optional
        Where the input frames are, in steps relative to the initial time, for a model
        that declares them (ST-ResNet's ``[-167, -23, -2, -1, 0]`` needs a week of data
        before its first forecast); None: the last ``in_steps`` frames.
    files : dict
        Where the weights are: ``{"path": folder relative to the index, "sha256": ...}``
        or ``{"url": "https://.../model.safetensors", "sha256": ...}``.
    backbone : str, optional
        For a wrapper model (e.g. a Lagrangian model around SimVP): the wrapped
        architecture; forecasting by the backbone's name also finds this artefact.
    standard_names, units : dict, optional
        CF standard name and units per variable (units are compared by meaning).
    normalization : str, optional
        The scaling of the inputs (``"log1p"``, ``"standard"``, ...); the fitted statistics
        travel in the spec.
    hyperparameters : dict
        The architecture's hyperparameters (they decide its grid rule).
    grid_shape : [int, int], optional
        The training grid (crop) size; binding only for a model with per-cell parameters.
    grid_corners : dict, optional
        For a model with per-cell parameters, the latitude and longitude of its training
        grid's first and last cell (``{"lat": [a, b], "lon": [c, d]}``): data of the same
        shape elsewhere do not fit (:func:`stgeo.conventions.grid_corners`).
    default : bool
        Preferred over other artefacts that fit the same data.
    description, licence, provenance : str
        One line; the weights' licence; where the training data came from.
    recipe : dict
        How to rebuild it (see :class:`stgeo.pretrained.Recipe`).
    data_fingerprint : str, optional
        The training data's fingerprint (``spec.extra["data_fingerprint"]``).
    weights_sha256 : str, optional
        Digest of the stored tensors alone (names, types, shapes, values), which a rebuild
        compares: ``files.sha256`` also covers the file's metadata (training history with
        timings), which differs from run to run.
    scores : list of dict
        Benchmark table: one row per method (``{"method": ..., "CSI 1 mm/h +30 min": ...}``).
    validation : list of dict
        The same table on the validation split of the training data (the recipe's
        ``validate``), the scores recipes are compared on; empty when not measured.
    dtype : str
        Storage type of the weights (``"float16"``, ``"bfloat16"``, ``"float32"``); loading
        restores the model's own type.
    environment : dict
        Versions and threads of the run that made it.
    """

    name: str
    architecture: str
    variables: list[str]
    time_step: str
    in_steps: int
    out_steps: int
    files: dict[str, Any]
    input_offsets: list[int] | None = None
    backbone: str | None = None
    standard_names: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    normalization: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    grid_shape: list[int] | None = None
    grid_corners: dict[str, list[float]] | None = None
    default: bool = False
    description: str = ""
    licence: str = ""
    provenance: str = ""
    recipe: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: str | None = None
    weights_sha256: str | None = None
    scores: list[dict[str, Any]] = field(default_factory=list)
    validation: list[dict[str, Any]] = field(default_factory=list)
    dtype: str = "float32"
    environment: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_card(self)

    @classmethod
    def from_dict(cls, d: Any, *, source: str = "the index") -> PretrainedCard:
        """A card from its JSON form; a clear error naming ``source`` when malformed."""
        if not isinstance(d, dict):
            raise DataValidationError(
                f"a pretrained entry in {source} must be a mapping, got {type(d).__name__}"
            )
        missing = [k for k in _REQUIRED if k not in d]
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if missing or unknown:
            raise DataValidationError(
                f"pretrained entry {d.get('name', '?')!r} in {source}: "
                + (f"missing fields {missing}; " if missing else "")
                + (f"unknown fields {unknown}; " if unknown else "")
                + f"expected fields {sorted(known)}"
            )
        try:
            return cls(**d)
        except (DataValidationError, StgeoTypeError) as err:
            raise DataValidationError(f"{source}: {err}") from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (as written to an index or ``card.json``)."""
        return asdict(self)

    @property
    def remote(self) -> bool:
        """True when the weights are fetched from a URL."""
        return "url" in self.files

    def fits_text(self) -> str:
        """What data the artefact fits, in one short phrase."""
        parts = []
        for v in self.variables:
            s = v
            if self.standard_names.get(v):
                s += f" ({self.standard_names[v]})"
            if self.units.get(v):
                s += f" [{self.units[v]}]"
            parts.append(s)
        if self.time_step == "per-event":  # trained on several steps, one model step each
            return f"{', '.join(parts)} at any time step (one model step per data step)"
        return f"{', '.join(parts)} every {self.time_step}"

    def summary(self) -> str:
        """One line: name, architecture, fitting data, sizes."""
        arch = self.architecture + (f" on {self.backbone}" if self.backbone else "")
        flag = ", default" if self.default else ""
        offsets = self.input_offsets
        at = f" (at steps {', '.join(map(str, offsets))})" if offsets else ""
        return (
            f"{self.name} ({arch}{flag}): {self.fits_text()}, {self.in_steps} frames in{at}, "
            f"{self.out_steps} out"
        )


def _check_card(c: PretrainedCard) -> None:
    """Raise unless every field of the card has the right type and form."""
    problems = _name_problems(c) + _size_problems(c) + _field_problems(c)
    problems += _file_problems(c.files)
    if problems:
        raise DataValidationError(
            f"pretrained entry {c.name!r} is malformed: " + "; ".join(problems) + " expected"
        )


def _name_problems(c: PretrainedCard) -> list[str]:
    problems = []
    if not isinstance(c.name, str) or not _NAME.match(c.name):
        problems.append(f"name={c.name!r} (lower-case letters, digits, '.', '_', '-')")
    for f in ("architecture", "time_step"):
        if not isinstance(getattr(c, f), str) or not getattr(c, f):
            problems.append(f"{f}={getattr(c, f)!r} (a non-empty string)")
    ok = isinstance(c.variables, list) and all(isinstance(v, str) for v in c.variables)
    if not ok or not c.variables:
        problems.append(f"variables={c.variables!r} (a non-empty list of names)")
    return problems


def _size_problems(c: PretrainedCard) -> list[str]:
    problems = []
    for f in ("in_steps", "out_steps"):
        v = getattr(c, f)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            problems.append(f"{f}={v!r} (a positive integer)")
    off = c.input_offsets
    if off is not None and (
        not isinstance(off, list)
        or len(off) != c.in_steps
        or not all(isinstance(o, int) and not isinstance(o, bool) and o <= 0 for o in off)
    ):
        problems.append(f"input_offsets={off!r} (in_steps integers <= 0, or null)")
    g = c.grid_shape
    if g is not None and (not isinstance(g, list) or len(g) != 2):
        problems.append(f"grid_shape={g!r} ([ny, nx] or null)")
    gc = c.grid_corners
    if gc is not None and not _corners_ok(gc):
        problems.append(f"grid_corners={gc!r} ({{'lat': [a, b], 'lon': [c, d]}} or null)")
    return problems


def _corners_ok(gc: Any) -> bool:
    def pair(v: Any) -> bool:
        return isinstance(v, list) and len(v) == 2 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in v
        )  # fmt: skip

    return isinstance(gc, dict) and set(gc) == {"lat", "lon"} and all(map(pair, gc.values()))


def _field_problems(c: PretrainedCard) -> list[str]:
    problems = []
    for f in ("standard_names", "units", "recipe", "environment", "hyperparameters"):
        if not isinstance(getattr(c, f), dict):
            problems.append(f"{f}={getattr(c, f)!r} (a mapping)")
    for name in ("scores", "validation"):
        rows = getattr(c, name)
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            problems.append(f"{name} (a list of table rows, each a mapping)")
    if not isinstance(c.default, bool):
        problems.append(f"default={c.default!r} (true or false)")
    return problems


def _file_problems(files: Any) -> list[str]:
    if not isinstance(files, dict) or ("path" in files) == ("url" in files):
        return ["files (a mapping with either 'path' or 'url', and 'sha256')"]
    sha = files.get("sha256")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        return [f"files.sha256={sha!r} (64 lower-case hex digits)"]
    return []
