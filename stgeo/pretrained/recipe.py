"""The training recipe of a pretrained artefact: the exact ``stgeo.train`` call that makes it.

A recipe is plain JSON in the artefact's card (``card["recipe"]``)::

    {
      "data": "synthetic-storms",            # a catalog entry or collection ("radar-train")
      "catalog_options": {"n_times": 288},   # recipe options when building its stores
      "train": {                             # keyword arguments of stgeo.train, exactly
        "model": "convlstm", "variable": "rain_rate", "in_steps": 4, "out_steps": 12,
        "epochs": 12, "batch_size": 8, "lr": 0.003, "normalization": "log1p", "seed": 0,
        "patch_size": 64, "importance": true, "hidden": 32, "num_layers": 2, ...
      },
      "time_budget": null,                   # seconds (a TimeLimit callback); not bit-exact
      "evaluate": {"split": "test", "lead_steps": 12, "thresholds": [0.1, 1, 5],
                   "baselines": ["persistence", "extrapolation"], "every": 2},
      "validate": {"data": "radar-train", "lead_steps": 12, "thresholds": [1, 5],
                   "baselines": ["sprog"]}    # optional: the same on the validation split
    }

A regression recipe scores RMSE / MAE instead, with baselines that take options::

      "evaluate": {"split": "test", "lead_steps": 12, "every": 6, "metrics": ["rmse"],
                   "weights": "latitude", "leads": ["1h", "6h", "12h"],
                   "baselines": ["persistence", {"model": "climatology", "period": "1D",
                                                 "label": "diurnal persistence"}]}

``stgeo pretrained build NAME`` (:func:`stgeo.build_pretrained`) builds the catalog stores,
calls ``stgeo.train(data, **train)`` with a fixed seed, scores the model and the baselines
as ``evaluate`` says (and, with ``validate``, on the validation split of the training data:
the scores a recipe is chosen on, never the test events), and writes a new artefact.
Training on the CPU with the same seed, torch version and thread count gives the same
weights bit for bit; a ``time_budget``
stops at a wall-clock time, so a run with one is reproducible only in its settings.

Examples
--------
>>> from stgeo.pretrained import Recipe
>>> r = Recipe.from_dict({"data": "synthetic-storms",
...                       "train": {"model": "convlstm", "out_steps": 2, "seed": 0}})
>>> r.train["model"], r.time_budget
('convlstm', None)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import DataValidationError

__all__ = ["Recipe"]

#: keywords of stgeo.train a recipe may not set: the build decides them (or they are not data)
RESERVED_TRAIN_KEYS = ("data", "callbacks", "checkpoint_dir", "resume", "progress", "device")
_EVALUATE_KEYS = (
    "data", "split", "lead_steps", "thresholds", "baselines", "every", "leads", "metrics",
    "weights", "anchor",
)  # fmt: skip
_EVALUATE_METRICS = ("mse", "rmse", "mae")


@dataclass(frozen=True)
class Recipe:
    """How a pretrained artefact is trained (see the module docstring for the format).

    Parameters
    ----------
    data : str
        Catalog entry or collection trained on (``stgeo.open_dataset`` / ``stgeo.train``).
    train : dict
        Keyword arguments of :func:`stgeo.train`: ``model`` (required), settings and model
        hyperparameters; ``seed`` defaults to 0.
    catalog_options : dict
        Recipe options for building the stores (``stgeo catalog build --option``).
    time_budget : float, optional
        Wall-time budget of training in seconds.
    evaluate : dict, optional
        Scoring after training: ``split`` (catalog split, default ``"test"``),
        ``lead_steps``, ``thresholds``, ``baselines`` (names, or mappings with ``model``,
        ``label`` and forecast options), ``every`` (use every n-th initial time),
        ``anchor`` (``"origin"``: initial times in the split, the default; ``"valid"``:
        the first lead's valid times in it), ``leads`` (lead times in the table, e.g.
        ``["30min", "60min"]``), ``metrics`` (among ``"mse"`` (default), ``"rmse"``,
        ``"mae"``), ``weights`` (``"latitude"``: cos-latitude weighted scores), ``data``
        (default: ``data``). See :func:`stgeo.pretrained_build.evaluate_recipe`.
    validate : dict, optional
        The same keys, scored on the validation split: ``split`` defaults to ``"val"``,
        ``anchor`` to ``"valid"`` (every initial time whose first lead lies in the split),
        and events of ``data`` without such a time are left out (at least one must have
        one). The card's ``validation`` table: full-grid scores to compare recipes on
        without looking at the test events.
    """

    data: str
    train: dict[str, Any]
    catalog_options: dict[str, Any] = field(default_factory=dict)
    time_budget: float | None = None
    evaluate: dict[str, Any] | None = None
    validate: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.data, str) or not self.data:
            problems.append("data (a catalog entry or collection name)")
        if not isinstance(self.train, dict) or not isinstance(self.train.get("model"), str):
            problems.append("train (a mapping of stgeo.train arguments with 'model')")
        elif bad := [k for k in RESERVED_TRAIN_KEYS if k in self.train]:
            problems.append(f"train without {bad} (the build sets them)")
        if not isinstance(self.catalog_options, dict):
            problems.append("catalog_options (a mapping)")
        tb = self.time_budget
        if tb is not None and (isinstance(tb, bool) or not isinstance(tb, (int, float)) or tb <= 0):
            problems.append("time_budget (a positive number of seconds, or null)")
        for section in ("evaluate", "validate"):
            ev = getattr(self, section)
            if ev is not None and (not isinstance(ev, dict) or set(ev) - set(_EVALUATE_KEYS)):
                problems.append(f"{section} (a mapping with keys among {list(_EVALUATE_KEYS)})")
            elif ev is not None:
                problems += _evaluate_problems(ev, section)
        if problems:
            raise DataValidationError("the recipe is malformed: expected " + "; ".join(problems))

    @classmethod
    def from_dict(cls, d: Any) -> Recipe:
        """A recipe from its JSON form."""
        if not isinstance(d, dict) or not d:
            raise DataValidationError(
                "this pretrained model records no training recipe (a mapping with 'data' and "
                "'train'); it cannot be rebuilt"
            )
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown or "data" not in d or "train" not in d:
            raise DataValidationError(
                f"the recipe must have 'data' and 'train' and may have "
                f"{sorted(set(cls.__dataclass_fields__) - {'data', 'train'})}; got {sorted(d)}"
            )
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``validate`` only when set: older recipes read back unchanged)."""
        d = asdict(self)
        if d["validate"] is None:
            del d["validate"]
        return d

    @property
    def seed(self) -> int:
        """The training seed (0 when the recipe does not set one)."""
        return int(self.train.get("seed", 0))

    def train_call(self) -> str:
        """The ``stgeo.train(...)`` call the recipe makes, as Python text."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.train.items())
        return f"stgeo.train({self.data!r}, {args})"


def _evaluate_problems(ev: dict[str, Any], section: str = "evaluate") -> list[str]:
    """What is wrong with the values of a recipe's ``evaluate`` (or ``validate``) mapping
    (checked when the recipe is read, not after a training run)."""
    return [p.replace("evaluate.", f"{section}.", 1) for p in _scoring_problems(ev)]


def _scoring_problems(ev: dict[str, Any]) -> list[str]:
    problems = []
    metrics = ev.get("metrics", ["mse"])
    ok = isinstance(metrics, list) and metrics and all(isinstance(m, str) for m in metrics)
    if not ok or set(metrics) - set(_EVALUATE_METRICS):
        problems.append(f"evaluate.metrics (a non-empty list among {list(_EVALUATE_METRICS)})")
    if ev.get("weights") not in (None, "latitude"):
        problems.append("evaluate.weights (null or 'latitude')")
    if ev.get("anchor", "origin") not in ("origin", "valid"):
        problems.append(
            "evaluate.anchor ('origin': initial times in the split, or 'valid': the first "
            "lead's valid times in the split)"
        )
    for key in ("every", "lead_steps"):
        v = ev.get(key, 1)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            problems.append(f"evaluate.{key} (a positive integer), got {v!r}")
    thr = ev.get("thresholds", [])
    if not isinstance(thr, list) or not all(_is_number(t) for t in thr):
        problems.append(f"evaluate.thresholds (a list of numbers), got {thr!r}")
    problems += _leads_problems(ev.get("leads", []))
    problems += _baselines_problems(ev.get("baselines", []))
    return problems


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _leads_problems(leads: Any) -> list[str]:
    import pandas as pd

    bad = not isinstance(leads, list) or not all(isinstance(x, str) for x in leads)
    if not bad:
        try:
            parsed = [pd.Timedelta(x) for x in leads]
        except ValueError:
            bad = True
        else:
            bad = any(t <= pd.Timedelta(0) for t in parsed) or len(set(parsed)) < len(parsed)
    if bad:
        return [
            f"evaluate.leads (a list of distinct positive durations such as ['30min', "
            f"'60min'] or ['1h', '6h']), got {leads!r}"
        ]
    return []


#: forecast arguments the evaluation sets itself: a baseline may not
_RESERVED_BASELINE_KEYS = ("variable", "init_times", "lead_steps", "data")


def _baselines_problems(baselines: Any) -> list[str]:
    if not isinstance(baselines, list):
        return [f"evaluate.baselines (a list of names or mappings), got {baselines!r}"]
    problems, labels = [], []
    for b in baselines:
        if isinstance(b, str):
            labels.append(b)
            continue
        if not (isinstance(b, dict) and isinstance(b.get("model"), str)):
            problems.append(
                f"evaluate.baselines entries (a name, or a mapping with 'model', an optional "
                f"'label' and forecast options), got {b!r}"
            )
            continue
        label = b.get("label", b["model"])
        if not isinstance(label, str) or not label:
            problems.append(f"evaluate.baselines label (a non-empty string), got {label!r}")
        reserved = sorted(set(b) & set(_RESERVED_BASELINE_KEYS))
        if reserved:
            problems.append(
                f"evaluate.baselines options without {reserved} (the evaluation sets them)"
            )
        labels.append(label)
    repeated = sorted({x for x in labels if labels.count(x) > 1}, key=str)
    if repeated:
        problems.append(
            f"evaluate.baselines with distinct labels (each is a row of the table), "
            f"{repeated} repeat: give each a 'label'"
        )
    return problems
