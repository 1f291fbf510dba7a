"""Named pretrained models: ``forecast(model="convlstm")`` without training first.

The registry lists artefacts (weights in safetensors, spec, card) shipped with stgeo or
fetched by URL with a sha256 checksum into the cache. Each card records the data the model
fits (variables, units, time step), its training recipe, data fingerprint, benchmark
scores and licence. :func:`stgeo.forecast` with an architecture name uses the artefact of
that architecture that fits the data (:func:`find`), and with an artefact's name uses it
directly.

* :func:`list` / :func:`card` / :func:`get` -- names, cards, the loaded
  :class:`~stgeo.models.TrainedModel`;
* :func:`find` / :func:`misfits` -- which artefacts fit a dataset and why others do not;
* :func:`package` / :func:`add_to_index` / :func:`register_pretrained` -- make and register
  your own;
* :class:`Recipe` -- how an artefact is trained; ``stgeo pretrained build NAME``
  (:func:`stgeo.build_pretrained`) re-runs it.

Examples
--------
>>> import stgeo
>>> stgeo.pretrained.list()
['storms-convlstm', 'radar-nowcaster', 'bikenyc-stresnet', 'era5-t2m-uk']
>>> ds = stgeo.testing.storm_cells(n_times=8, shape=(32, 32), seed=0)
>>> fc = ds.st.forecast(model="convlstm", lead_steps=2, progress=False)
>>> fc.attrs["pretrained"]
'storms-convlstm'
"""

from .card import PretrainedCard
from .fetch import fetch, sha256_of
from .fit import Match, find, misfits
from .package import add_to_index, package
from .recipe import Recipe
from .registry import (
    card,
    cards,
    get,
    list_pretrained,
    load_index,
    register_pretrained,
    weights_path,
)

list = list_pretrained  # stgeo.pretrained.list(), as stgeo.list_models()
load_pretrained = get

__all__ = [
    "Match",
    "PretrainedCard",
    "Recipe",
    "add_to_index",
    "card",
    "cards",
    "fetch",
    "find",
    "get",
    "list",
    "list_pretrained",
    "load_index",
    "load_pretrained",
    "misfits",
    "package",
    "register_pretrained",
    "sha256_of",
    "weights_path",
]
