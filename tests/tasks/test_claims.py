"""Claims as data (``tasks.claims``): the comparisons, unmeasured claims, and the studies' declared claims on
constructed outputs — one that must hold holds, one that must fail fails."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import yaml

import studies
from pipelines.registry import STUDIES
from studies import study_file
from tasks.claims import Claim, Unmeasured, comparison_text, evaluate, rows, summary_line
from tasks.generative import claims as mad_measures


def _const(outputs, *, value, se):
    return value, se


def _unmeasurable(outputs, **args):
    raise Unmeasured("needs at least 2 chains for a standard error")


def _spec(test, threshold=0.0, margin=0.0, *, value, se, cid="c"):
    return Claim(cid, "s", "src", _const, ("x",), test, threshold, margin, args={"value": value, "se": se}).spec()


# module-level measures of this test module live outside tasks: call evaluate on specs naming tasks functions
_const.__module__ = "tasks.test_fake"
_unmeasurable.__module__ = "tasks.test_fake"


@pytest.fixture(autouse=True)
def _fake_module(monkeypatch):
    import sys
    import types

    mod = types.ModuleType("tasks.test_fake")
    mod._const, mod._unmeasurable = _const, _unmeasurable
    monkeypatch.setitem(sys.modules, "tasks.test_fake", mod)


@pytest.mark.parametrize("test,threshold,margin,value,se,holds,text", [
    ("at_most", 0.1, 0.0, 0.09, 0.5, True, "value ≤ 0.1"),       # no margin: the SE does not matter
    ("at_most", 0.1, 0.0, 0.09, float("nan"), True, "value ≤ 0.1"),  # nor whether there is one (one sample)
    ("at_most", 0.1, 0.0, 0.11, 0.0, False, "value ≤ 0.1"),
    ("at_most", 0.0, 2.0, -0.3, 0.1, True, "value + 2 SE ≤ 0"),   # below zero by 3 SE
    ("at_most", 0.0, 2.0, -0.1, 0.1, False, "value + 2 SE ≤ 0"),  # by 1 SE only
    ("at_most", 0.0, -2.0, 0.15, 0.1, True, "value − 2 SE ≤ 0"),  # not above by more than 2 SE
    ("at_least", 0.0, -2.0, -0.15, 0.1, True, "value + 2 SE ≥ 0"),  # not lower by more than 2 SE
    ("at_least", 0.0, -2.0, -0.25, 0.1, False, "value + 2 SE ≥ 0"),
    ("at_least", 0.0, 2.0, 0.25, 0.1, True, "value − 2 SE ≥ 0"),
    ("within", 1.0, 3.0, 1.25, 0.1, True, "|value − 1| ≤ 3 SE"),
    ("within", 1.0, 3.0, 0.65, 0.1, False, "|value − 1| ≤ 3 SE"),
])
def test_comparisons(test, threshold, margin, value, se, holds, text):
    ds = evaluate(xr.Dataset(), names=["x"], claims=[_spec(test, threshold, margin, value=value, se=se)])
    assert bool(ds.holds.item()) is holds and bool(ds.measured.item())
    assert ds.comparison.item() == text == comparison_text(test, threshold, margin)


def test_a_claim_that_needs_an_se_without_one_is_unmeasured_not_holding():
    ds = evaluate(xr.Dataset(), names=["x"], claims=[_spec("at_most", 0.0, 2.0, value=-5.0, se=float("nan"))])
    assert not ds.measured.item() and not ds.holds.item() and "standard error" in ds.note.item()


def test_unmeasured_claims_say_why_and_the_summary_names_them():
    claims = [_spec("at_most", 1.0, value=0.5, se=0.1, cid="ok"), _spec("at_least", 1.0, value=0.5, se=0.1, cid="no"),
              {**_spec("at_most", value=0, se=0, cid="later"), "measure": "tasks.test_fake:_unmeasurable"}]
    ds = evaluate(xr.Dataset(), names=["x"], claims=claims)
    assert ds.holds.values.tolist() == [True, False, False] and ds.measured.values.tolist() == [True, True, False]
    assert summary_line(ds) == "claims: 1 of 3 hold (fails: no; unmeasured: later)"
    assert [r["verdict"] for r in rows(ds)] == ["holds", "fails", "unmeasured"]
    assert "2 chains" in ds.note.values[2]


def test_a_measure_must_be_a_tasks_function():
    with pytest.raises(ValueError, match="tasks package"):
        Claim("c", "s", "src", lambda outputs: (0.0, 0.0), ("x",), "at_most")
    with pytest.raises(ValueError, match="margin"):
        Claim("c", "s", "src", mad_measures.metric_change, ("x",), "within")


def _mad_curves(recall_last: float, *, generations: int = 4, chains: int = 8) -> xr.Dataset:
    """A fake ``mad_curves``: the fully synthetic loop at λ = 1 and 0.5 and the fresh-data loop at λ = 1;
    the FD rises 0.1 per generation at λ = 1, precision stays, recall goes from 0.8 to ``recall_last``."""
    rng = np.random.default_rng(0)
    g = np.arange(generations + 1)
    shape = (2, 2, chains, generations + 1)
    noise = 0.01 * rng.normal(size=shape)
    fid = 0.2 + 0.1 * g * np.array([1.0, 0.0])[:, None, None, None] * np.array([1.0, 0.0])[None, :, None, None]
    recall = 0.8 + (recall_last - 0.8) * g / generations * np.ones(shape)
    dims = ("loop", "bias", "chain", "generation")
    return xr.Dataset({"fid": (dims, fid + noise), "precision": (dims, 0.9 + noise), "recall": (dims, recall + noise)},
                      coords={"loop": ["fully_synthetic", "fresh_data"], "bias": [1.0, 0.5], "chain": np.arange(chains),
                              "generation": g})


def _mad_claims(curves: xr.Dataset) -> dict[str, tuple[bool, bool]]:
    from studies.mad import CLAIMS

    ds = evaluate(curves, names=["curves"], claims=[c.spec() for c in CLAIMS])
    return {str(c): (bool(m), bool(h)) for c, m, h in zip(ds.claim.values, ds.measured.values, ds.holds.values,
                                                           strict=True)}


def test_mad_claims_hold_where_recall_falls_and_fail_where_it_does_not():
    falls = _mad_claims(_mad_curves(0.2))
    assert falls == {k: (True, True) for k in falls}
    flat = _mad_claims(_mad_curves(0.8))
    assert flat["biased_recall_falls"] == (True, False)
    assert {k: v for k, v in flat.items() if k != "biased_recall_falls"} == {
        k: (True, True) for k in flat if k != "biased_recall_falls"}


def test_mad_claims_of_a_run_with_one_generation_are_unmeasured():
    assert set(_mad_claims(_mad_curves(0.2).isel(generation=[0])).values()) == {(False, False)}
    one_chain = _mad_claims(_mad_curves(0.2).isel(chain=[0]))
    assert one_chain["biased_recall_falls"] == (False, False)


def test_every_registered_study_with_a_paper_declares_claims():
    """A study file with a ``paper`` section names what it follows; its study declares claims (``@study(claims=…)``)."""
    with_paper = []
    for name in STUDIES:
        doc = yaml.safe_load((study_file(name)).read_text())
        claims = studies.load(name).claims
        if "paper" in doc:
            with_paper.append(name)
            assert claims, f"{name} follows a paper but declares no claims"
            ids = [c.id for c in claims]
            assert len(ids) == len(set(ids)), f"{name}: repeated claim ids"
        else:
            assert not claims, f"{name} declares claims but its study file names no paper"
    assert {"mad", "mad_gaussian", "co2_forecast", "aspire_location", "aspire_seismic", "aspire_stylized"} <= set(
        with_paper)


def _gaussian_curves(var_last: float) -> xr.Dataset:
    """A fake ``mad_gaussian`` curves table: one loop, 3 generations, the exact variance 1 at every generation."""
    g = np.arange(3)
    row = {"var_mean": [1.0, 1.0, var_last], "var_se": [0.05] * 3, "var_theory": [1.0] * 3,
           "mean_err": [0.1] * 3, "mean_err_se": [0.01] * 3, "mean_err_theory": [0.1] * 3,
           "w2_mean": [0.2, 0.3, 0.5], "w2_se": [0.03] * 3}
    return xr.Dataset({k: (("loop", "generation"), [v]) for k, v in row.items()},
                      coords={"loop": ["fully_synthetic"], "generation": g})


def test_mad_gaussian_claims_on_constructed_curves():
    from studies.mad_gaussian import CLAIMS

    def verdicts(curves):
        ds = evaluate(curves, names=["curves"], claims=[c.spec() for c in CLAIMS])
        return {str(c): ("holds" if h else "fails" if m else "unmeasured")
                for c, m, h in zip(ds.claim.values, ds.measured.values, ds.holds.values, strict=True)}

    ok = verdicts(_gaussian_curves(1.1))  # 2 SE off the recursion: within 3 SE
    assert ok["var_recursion_fully_synthetic"] == "holds" and ok["fully_synthetic_collapse"] == "holds"
    assert ok["var_recursion_fresh_data"] == "unmeasured"  # the run has no fresh-data loop
    off = verdicts(_gaussian_curves(1.2))  # 4 SE off
    assert off["var_recursion_fully_synthetic"] == "fails"
    value, se = mad_measures.distance_rise({"curves": _gaussian_curves(1.0)}, loop="fully_synthetic")
    assert value == pytest.approx(0.3) and se == pytest.approx(np.hypot(0.03, 0.03))
