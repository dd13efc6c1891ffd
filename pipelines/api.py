"""Strata from a notebook: open a study's output as an ``xarray.Dataset``, load a checkpoint as a model, walk
lineage — read-only, no Prefect::

    from pipelines import api

    records = api.open_output("seismic_survey", "shot_records", preset="tiny", root="strata-data")
    model = api.load_model("3fa2c1", root="strata-data", member=0)   # a key or a unique prefix
    api.lineage(records.attrs["strata_lineage"]["key"], root="strata-data")["nodes"]

An output is found by planning the study's run (as ``strata run --dry-run`` does): its key follows from the
study, the preset and the overrides, so the same call keeps returning the same dataset until the
configuration or the code version changes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import xarray as xr

from data_catalog import Catalog
from strata_errors import InputError

__all__ = ["catalog", "output_key", "open_output", "open_dataset", "load_model", "lineage"]


def catalog(root: str | os.PathLike | None = None) -> Catalog:
    """The catalog of ``root`` (default ``$STRATA_HOME`` or ``./strata-data``); close it when done."""
    return Catalog(root)


def output_key(study: str, output: str, preset: str | None = None, *, root: str | os.PathLike | None = None,
               overrides: Sequence[str] = ()) -> str:
    """The key of output ``output`` of ``study`` run with ``preset`` and ``overrides`` (``KEY=VALUE`` as for
    ``--set``), whether computed or not."""
    return _planned(study, output, preset, root, overrides)[0]


def open_output(study: str, output: str, preset: str | None = None, *, root: str | os.PathLike | None = None,
                overrides: Sequence[str] = (), dask: bool = True) -> xr.Dataset:
    """Output ``output`` of ``study`` (preset, overrides) as a lazily loaded dataset (InputError when that run
    has not computed it yet, with the command that would)."""
    key, computed = _planned(study, output, preset, root, overrides)
    if not computed:
        sets = "".join(f" --set {o}" for o in overrides)
        raise InputError(f"output {output!r} of {study} (preset {preset or '-'}) is not computed in "
                         f"{Catalog(root).root}: `strata run {study}{' --preset ' + preset if preset else ''}{sets}` "
                         f"computes it")
    return open_dataset(key, root=root, dask=dask)


def open_dataset(key: str, *, root: str | os.PathLike | None = None, dask: bool = True) -> xr.Dataset:
    """A complete dataset by key or unique key prefix, opened lazily."""
    cat = Catalog(root)
    try:
        return cat.open(cat.resolve(key), dask=dask)
    finally:
        cat.close()


def load_model(key: str, *, root: str | os.PathLike | None = None, member: Any = None):
    """The trained network of a ``checkpoint`` dataset (key or prefix), on the CPU in eval mode; of a checkpoint
    that stacks several models (e.g. one per chain), the one labelled ``member``."""
    from tasks.nn.checkpoint import from_dataset

    with open_dataset(key, root=root, dask=False) as ds:
        return from_dataset(ds.load(), member=member).module


def lineage(key: str, *, root: str | os.PathLike | None = None, downstream: bool = False,
            depth: int | None = None) -> dict[str, Any]:
    """``{"nodes": [...], "edges": [...]}``: what ``key`` was made from (or, ``downstream``, what was made
    from it), as ``strata catalog lineage --json`` prints it."""
    cat = Catalog(root)
    try:
        return cat.lineage(cat.resolve(key), "down" if downstream else "up", depth)
    finally:
        cat.close()


def _planned(study: str, output: str, preset: str | None, root: str | os.PathLike | None,
             overrides: Sequence[str]) -> tuple[str, bool]:
    from flows.plan import plan_study

    from .config import load_study
    from .registry import load_flow, models

    loaded = load_study(study, preset, list(overrides), models())
    cat = Catalog(root)
    try:
        steps, outputs = plan_study(load_flow(loaded.name), loaded.config, cat)
    finally:
        cat.close()
    if output not in outputs:
        raise InputError(f"{study} has no output {output!r} (its outputs: {', '.join(outputs)})")
    key = outputs[output].key
    return key, next(s.status == "reuse" for s in steps if s.key == key)
