"""One module per chapter: the computation behind each of the book's claims.

Every analysis module offers the same contract:

* ``run(**params) -> Result`` — computes (or reads from the cache) everything the chapter
  shows, as tidy DataFrames;
* ``quotes(result) -> dict`` — every number and word the chapter's prose quotes, ready to
  glue in one call (:func:`diffred.figures.glue_all`).

Figures are drawn by :mod:`diffred.plots` from a result's frames; chapters only narrate.
"""

from __future__ import annotations

import dataclasses

import pandas as pd


@dataclasses.dataclass
class Result:
    """What an analysis's ``run`` returns: the parameters it ran with, its tidy frames by
    name (``result.curve`` is ``result.frames["curve"]``), and other values it computed."""

    params: dict
    frames: dict[str, pd.DataFrame]
    values: dict = dataclasses.field(default_factory=dict)

    def __getattr__(self, name):
        frames = self.__dict__.get("frames", {})
        if name in frames:
            return frames[name]
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"this result has no frame or value {name!r}; it has "
                             f"{sorted(frames) + sorted(values)}")
