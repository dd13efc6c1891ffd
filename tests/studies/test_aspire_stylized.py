"""aspire_stylized in its ``small`` preset (d = 4, m = 6, non-white noise): the CNF chain against the
analytic posterior, and the lineage of the loop (iteration k depends on iteration k − 1)."""

from __future__ import annotations

import numpy as np
import pytest

from data_catalog import Catalog

pytestmark = [pytest.mark.prefect, pytest.mark.slow]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, prefect_server):
    from tests.conftest import Strata

    strata = Strata(tmp_path_factory.mktemp("aspire_stylized") / "root", prefect_server)
    out = strata.json("run", "aspire_stylized", "--preset", "small", timeout=900)
    cat = Catalog(strata.root)
    yield strata, out, cat
    cat.close()


def test_the_small_preset_reaches_the_analytic_posterior(small_run):
    _, out, cat = small_run
    m = cat.open(out["outputs"]["metrics"]).load()
    assert cat.get(out["outputs"]["metrics"]).kind == "aspire_metrics"
    assert m.iteration.values.tolist() == [1, 2]
    assert m.attrs["cases"] >= 20 and m.attrs["draws"] >= 4000
    for name in ("rmse", "mean_std", "coverage_50", "coverage_90", "error_std_corr", "nll", "mean_error",
                 "cov_error", "kl"):
        assert np.isfinite(m[name].values).all(), name
    last = m.sel(iteration=2)
    assert float(last.mean_error) <= 0.15
    assert float(last.cov_error) <= 0.15
    assert 0.8 <= float(last.coverage_90) <= 0.97
    # refinement must not make the posterior worse: iteration 2's KL is not above iteration 1's by
    # more than two standard errors (of the difference of the two means over the held-out cases)
    kl, se = m.kl.values, m.kl_se.values
    assert kl[1] - kl[0] <= 2 * np.hypot(se[0], se[1]), (kl, se)


def test_iteration_two_depends_on_iteration_one(small_run):
    _, out, cat = small_run
    up = cat.lineage(out["outputs"]["checkpoint_2"], "up")
    keys = {n["key"] for n in up["nodes"]}
    assert out["outputs"]["checkpoint_1"] in keys
    steps = {n["step"] for n in up["nodes"]}
    assert {"summaries", "posterior_estimates", "train_posterior", "pairs", "prior_estimates",
            "linear_problem"} <= steps
    rec = cat.get(out["outputs"]["checkpoint_2"])
    assert rec.kind == "checkpoint" and rec.params["iteration"] == 2
    direct = {cat.get(k).step for k in rec.inputs}
    assert direct == {"pairs", "summaries", "posterior_estimates"}
