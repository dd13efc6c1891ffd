"""The ASPIRE claims' measures (``tasks.inference.claims``) on a constructed ``aspire_metrics`` table: the last
and first iterations by position, paired differences and ratios with their SEs from the per-case values, an
``rms`` aggregate (squared per-case values) reported as the root of its mean; and every ASPIRE study's declared
claims evaluated on such a table."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import studies
from tasks.claims import Unmeasured, evaluate
from tasks.inference import claims as m

RNG = np.random.default_rng(0)
CASES = 40
A = np.abs(RNG.normal(1.0, 0.3, (3, CASES)))          # a "mean" metric per iteration and case
B = np.abs(RNG.normal(2.0, 0.3, (3, CASES)))          # another, e.g. a baseline
SQ = np.abs(RNG.normal(0.5, 0.1, (3, CASES)))         # squared per-case values, aggregate rms


def _table(iterations: int = 3) -> xr.Dataset:
    data = {}
    for name, v, how in (("rmse", A, "mean"), ("rmse_linear", B, "mean"), ("mean_error", SQ, "rms"),
                         ("coverage_90", 0.8 + 0.05 * A, "mean")):
        v = v[:iterations]
        agg = np.sqrt(v.mean(1)) if how == "rms" else v.mean(1)
        data[name] = ("iteration", agg, {"aggregate": how})
        data[f"{name}_se"] = ("iteration", v.std(1, ddof=1) / np.sqrt(CASES))
        data[f"{name}_per_case"] = (("iteration", "case"), v)
    return xr.Dataset(data, coords={"iteration": np.arange(1, iterations + 1), "case": np.arange(CASES)})


def test_change_is_last_minus_first_paired_over_cases():
    value, se = m.change({"metrics": _table()}, name="rmse")
    d = A[2] - A[0]
    assert value == pytest.approx(d.mean()) and se == pytest.approx(d.std(ddof=1) / np.sqrt(CASES))


def test_an_rms_metric_is_the_root_of_its_mean_and_its_se_the_delta_method():
    value, se = m.change({"metrics": _table()}, name="mean_error")
    assert value == pytest.approx(np.sqrt(SQ[2].mean()) - np.sqrt(SQ[0].mean()))
    contrib = SQ[2] / (2 * np.sqrt(SQ[2].mean())) - SQ[0] / (2 * np.sqrt(SQ[0].mean()))
    assert se == pytest.approx(contrib.std(ddof=1) / np.sqrt(CASES))


def test_difference_and_ratio_of_two_metrics_of_the_same_cases():
    t = {"metrics": _table()}
    value, se = m.difference(t, name="rmse", other="rmse_linear")
    assert value == pytest.approx((A[2] - B[2]).mean())
    assert se == pytest.approx((A[2] - B[2]).std(ddof=1) / np.sqrt(CASES))
    r, se_r = m.ratio(t, name="rmse", at=-1, other_at=0)
    assert r == pytest.approx(A[2].mean() / A[0].mean())
    # the delta method against the spread of the ratio over bootstrap resamples of the cases
    boot = [A[2, i].mean() / A[0, i].mean() for i in RNG.integers(0, CASES, (4000, CASES))]
    assert se_r == pytest.approx(np.std(boot), rel=0.15)


def test_extreme_over_iterations_and_one_iteration_is_unmeasured_for_changes():
    value, se = m.extreme({"metrics": _table()}, name="coverage_90", which="min")
    i = int(np.argmin((0.8 + 0.05 * A).mean(1)))
    assert value == pytest.approx((0.8 + 0.05 * A[i]).mean())
    one = {"metrics": _table(1)}
    with pytest.raises(Unmeasured, match="2 iterations"):
        m.change(one, name="rmse")
    with pytest.raises(Unmeasured, match="2 iterations"):
        m.ratio(one, name="rmse", at=-1, other_at=0)
    with pytest.raises(Unmeasured, match="no kl_grid"):
        m.metric(one, name="kl_grid")


@pytest.mark.parametrize("study", ["aspire_location", "aspire_seismic", "aspire_stylized"])
def test_every_aspire_claim_is_measured_or_says_why(study):
    """On a table without the study's own metrics (kl, kl_grid, rmse_prior_mean) those claims are unmeasured
    with the reason; the others are measured."""
    claims = studies.load(study).claims
    ds = evaluate(_table(), names=["metrics"], claims=[c.spec() for c in claims])
    for cid, measured, note in zip(ds.claim.values, ds.measured.values, ds.note.values, strict=True):
        spec = next(c for c in claims if c.id == cid)
        name = spec.args.get("name")
        needed = {name, spec.args.get("other")} - {None}
        if needed <= set(_table().data_vars):
            assert measured, (study, cid, note)
        else:
            assert not measured and "no " in note, (study, cid, note)
