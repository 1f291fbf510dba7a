"""Griffe extension: show Sphinx cross-reference roles of the docstrings as code.

stgeo's numpy-style docstrings use Sphinx roles (``:func:`stgeo.validate```,
``:class:`~stgeo.models.TrainedModel```), which mkdocstrings would print literally. This
rewrites them to inline code when the API reference is built; ``~`` keeps the last
component, as in Sphinx. The source files are not touched.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|meth|class|mod|attr|data|obj|exc|const|ref):`(~?)([^`]+)`")


def _replace(m: re.Match[str]) -> str:
    short, target = m.group(1), m.group(2).strip()
    if short:
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


class SphinxRoles(griffe.Extension):
    """Replace Sphinx roles in every docstring by inline code."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ":`" in obj.docstring.value:
            obj.docstring.value = _ROLE.sub(_replace, obj.docstring.value)
