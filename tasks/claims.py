"""A paper's claims as data: declared next to a study's flow, measured on every run from the run's stored
outputs only, and kept as a ``claims`` dataset (claim × value, se, threshold, holds, the paper's value).

A :class:`Claim` names a *measure*: a plain function ``measure(outputs, **args) -> (value, se)`` of the
study's output datasets (a mapping from output name to ``xr.Dataset``; only those in ``needs`` are given).
It raises :class:`Unmeasured` when a run cannot measure it (one generation, a single chain, gravity off):
such a claim is reported as unmeasured, never as holding. No wall-clock timings are claims: the claims
dataset is a deterministic function of the outputs.

The comparison (``test``) is one of

* ``at_most``:  value + margin·se ≤ threshold   (margin 2: "below by more than 2 SE")
* ``at_least``: value − margin·se ≥ threshold   (margin −2: "not lower by more than 2 SE")
* ``within``:   |value − threshold| ≤ margin·se (agreement with a known answer)

A failing claim is information, not an error.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from strata_errors import InputError

__all__ = ["Claim", "Unmeasured", "evaluate", "summary_line", "rows", "TESTS", "VERDICT_COLOURS", "comparison_text",
           "paired_change"]

TESTS = ("at_most", "at_least", "within")
STUDY_PACKAGES = "STRATA_STUDY_PACKAGES"  # more packages of studies (studies.ENV), whose functions may be measures
VERDICT_COLOURS = {"holds": "#c8e6c9", "fails": "#ffcdd2", "unmeasured": "#e0e0e0"}  # the table's verdict cells


class Unmeasured(Exception):
    """This run cannot measure the claim; the message says why (e.g. "needs at least 2 chains for an SE")."""


@dataclass(frozen=True)
class Claim:
    """One claim of a paper. ``measure`` is a function of ``tasks`` (module-level, so that a step can name it);
    ``needs`` the study outputs it reads; ``args`` extra JSON keyword arguments of ``measure``; ``paper`` the
    paper's own number where it gives one, and ``paper_note`` where it gives a figure or a statement only."""

    id: str
    statement: str
    source: str
    measure: Callable[..., tuple[float, float]]
    needs: tuple[str, ...]
    test: str
    threshold: float = 0.0
    margin: float = 0.0
    args: Mapping[str, Any] = field(default_factory=dict)
    paper: float | None = None
    paper_note: str = ""
    version: str = "1"  # bump when the measure's results change: it enters the claims dataset's key

    def __post_init__(self) -> None:
        if self.test not in TESTS:
            raise ValueError(f"claim {self.id}: test {self.test!r} is not one of {TESTS}")
        if self.test == "within" and self.margin <= 0:
            raise ValueError(f"claim {self.id}: a 'within' test needs a margin > 0 (standard errors)")
        name = getattr(self.measure, "__module__", "") or ""
        if not _measure_module(name) or "<" in self.measure.__qualname__:
            raise ValueError(f"claim {self.id}: the measure must be a module-level function of the tasks package "
                             f"(or of a package of studies in ${STUDY_PACKAGES})")

    def spec(self) -> dict[str, Any]:
        """The claim as JSON (a step parameter: it enters the claims dataset's key)."""
        return {"id": self.id, "statement": self.statement, "source": self.source,
                "measure": f"{self.measure.__module__}:{self.measure.__qualname__}", "needs": list(self.needs),
                "test": self.test, "threshold": float(self.threshold), "margin": float(self.margin),
                "args": dict(self.args), "paper": None if self.paper is None else float(self.paper),
                "paper_note": self.paper_note, "version": self.version}


def comparison_text(test: str, threshold: float, margin: float) -> str:
    """The comparison in words, e.g. ``value + 2 SE ≤ 0``."""
    if test == "within":
        return f"|value − {threshold:g}| ≤ {margin:g} SE"
    sign = "+" if (margin > 0) == (test == "at_most") else "−"
    term = f" {sign} {abs(margin):g} SE" if margin else ""
    return f"value{term} {'≤' if test == 'at_most' else '≥'} {threshold:g}"


def _holds(test: str, value: float, se: float, threshold: float, margin: float) -> bool:
    se = se if margin else 0.0  # a claim without a margin needs no SE (it may be NaN: one sample)
    if test == "at_most":
        return value + margin * se <= threshold
    if test == "at_least":
        return value - margin * se >= threshold
    return abs(value - threshold) <= margin * se


def _measure_module(module: str) -> bool:
    """Whether a measure may come from ``module``: the tasks package, or a package of studies the environment
    registers (``$STRATA_STUDY_PACKAGES``, comma-separated) — never an arbitrary import named by a dataset."""
    packages = ["tasks", *filter(None, (p.strip() for p in os.environ.get(STUDY_PACKAGES, "").split(",")))]
    return any(module.startswith(f"{p}.") for p in packages)


def _measure_fn(name: str) -> Callable[..., tuple[float, float]]:
    module, _, qualname = name.partition(":")
    if not _measure_module(module) or not qualname:
        raise InputError(f"claim measure {name!r}: only functions of the tasks package (or of a package of studies "
                         f"in ${STUDY_PACKAGES}) are measures")
    return getattr(importlib.import_module(module), qualname)


def _one(spec: Mapping[str, Any], outputs: Mapping[str, xr.Dataset]) -> tuple[float, float, bool, bool, str]:
    """(value, se, measured, holds, note) of one claim."""
    try:
        value, se = _measure_fn(spec["measure"])({n: outputs[n] for n in spec["needs"]}, **spec.get("args", {}))
    except Unmeasured as why:
        return math.nan, math.nan, False, False, str(why)
    value, se = float(value), float(se)
    if not math.isfinite(value):
        return value, se, False, False, "the measured value is not finite"
    if spec["margin"] and not (math.isfinite(se) and se >= 0):
        return value, se, False, False, "no standard error (the comparison needs one)"
    return value, se, True, bool(_holds(spec["test"], value, se, spec["threshold"], spec["margin"])), ""


def evaluate(*datasets: xr.Dataset, names: Sequence[str], claims: Sequence[Mapping[str, Any]]) -> xr.Dataset:
    """The ``claims`` dataset of a run: ``datasets`` are the study outputs called ``names`` (in order),
    ``claims`` the :meth:`Claim.spec` of each claim. Variables over ``claim``: ``value``, ``se``,
    ``threshold``, ``margin`` (SEs), ``measured``, ``holds``, ``paper`` (NaN where the paper gives no number),
    and the texts ``statement``, ``source``, ``comparison``, ``note`` (why unmeasured; the paper's figure)."""
    if len(datasets) != len(names):
        raise InputError(f"claims: {len(datasets)} datasets for {len(names)} names")
    outputs = dict(zip(names, datasets, strict=True))
    ids = [c["id"] for c in claims]
    if len(set(ids)) != len(ids):
        raise InputError(f"claims: ids must be unique, got {ids}")
    results = [_one(c, outputs) for c in claims]
    notes = [r[4] or c.get("paper_note", "") for c, r in zip(claims, results, strict=True)]

    def col(values: Any, dtype: Any, long_name: str, units: str | None = None, nan: str | None = None) -> tuple:
        attrs = {"long_name": long_name, **({"units": units} if units else {}), **({"nan_meaning": nan} if nan else {})}
        return ("claim", np.asarray(values, dtype=dtype), attrs)

    text = object
    out = xr.Dataset(
        {"value": col([r[0] for r in results], float, "measured value", nan="unmeasured"),
         "se": col([r[1] for r in results], float, "standard error of the value", nan="unmeasured, or no SE"),
         "threshold": col([c["threshold"] for c in claims], float, "threshold of the comparison"),
         "margin": col([c["margin"] for c in claims], float, "margin of the comparison", "standard errors"),
         "measured": col([r[2] for r in results], bool, "the run could measure the claim"),
         "holds": col([r[3] for r in results], bool, "the claim holds on this run"),
         "paper": col([np.nan if c.get("paper") is None else c["paper"] for c in claims], float,
                      "the paper's value", nan="the paper gives no number"),
         "statement": col([c["statement"] for c in claims], text, "the claim"),
         "source": col([c["source"] for c in claims], text, "where the paper makes it"),
         "comparison": col([comparison_text(c["test"], c["threshold"], c["margin"]) for c in claims], text,
                           "how it is decided"),
         "note": col(notes, text, "why unmeasured, or the paper's figure")},
        coords={"claim": ("claim", np.asarray(ids, dtype=object), {"long_name": "claim id"})})
    out.attrs["summary"] = summary_line(out)
    return out


def summary_line(ds: xr.Dataset) -> str:
    """One line, e.g. ``claims: 4 of 5 hold (fails: fid_rises; unmeasured: recall_falls)``."""
    ids = [str(i) for i in ds["claim"].values]
    holds, measured = ds["holds"].values.astype(bool), ds["measured"].values.astype(bool)
    fails = [i for i, h, m in zip(ids, holds, measured, strict=True) if m and not h]
    unmeasured = [i for i, m in zip(ids, measured, strict=True) if not m]
    detail = "; ".join(part for part in (f"fails: {', '.join(fails)}" if fails else "",
                                         f"unmeasured: {', '.join(unmeasured)}" if unmeasured else "") if part)
    return f"claims: {int(holds.sum())} of {len(ids)} hold" + (f" ({detail})" if detail else "")


def paired_change(later: np.ndarray, earlier: np.ndarray, *, what: str = "cases") -> tuple[float, float]:
    """Mean and standard error of ``later − earlier`` paired over the first axis (cases, chains)."""
    d = np.asarray(later, float) - np.asarray(earlier, float)
    d = d[np.isfinite(d)]
    if d.size < 2:
        raise Unmeasured(f"needs at least 2 {what} for a standard error, got {d.size}")
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))


def _num(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else "—"


def rows(ds: xr.Dataset) -> list[dict[str, str]]:
    """The claims of a ``claims`` dataset as text, one dict per claim: ``id``, ``statement``, ``value``
    (``v ± se``), ``comparison``, ``verdict`` (holds / fails / unmeasured), ``paper``, ``source``, ``note``."""
    out = []
    for i, cid in enumerate(ds["claim"].values):
        value, se = float(ds["value"].values[i]), float(ds["se"].values[i])
        measured, holds = bool(ds["measured"].values[i]), bool(ds["holds"].values[i])
        paper = float(ds["paper"].values[i])
        out.append({"id": str(cid), "statement": str(ds["statement"].values[i]),
                    "value": (_num(value) + (f" ± {se:.2g}" if math.isfinite(se) and se > 0 else "")) if measured
                    else "—",
                    "comparison": str(ds["comparison"].values[i]),
                    "verdict": "holds" if holds else ("fails" if measured else "unmeasured"),
                    "paper": _num(paper) if math.isfinite(paper) else "", "source": str(ds["source"].values[i]),
                    "note": str(ds["note"].values[i])})
    return out
