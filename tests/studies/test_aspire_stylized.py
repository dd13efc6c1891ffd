"""aspire_stylized in its ``small`` preset (d = 4, m = 6, non-white noise): the CNF chain against the
analytic posterior, and the lineage of the loop (iteration k depends on iteration k − 1). A run killed while
training: tests/flows/test_training_resume.py."""

from __future__ import annotations

import numpy as np
import pytest

from data_catalog import Catalog
from tasks.inference.aspire_metrics import per_case

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """The small preset in this process (the whole step runtime, no Prefect, no CLI: what is checked here is in
    its datasets)."""
    from tests.conftest import run_in_process

    root = tmp_path_factory.mktemp("aspire_stylized") / "root"
    run = run_in_process("aspire_stylized", root=root, preset="small")
    cat = Catalog(root)
    yield None, {"outputs": run.output_keys}, cat
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
    # refinement must not make the posterior worse: iteration 2's KL is not above iteration 1's by more
    # than two standard errors of the mean paired difference over the held-out cases (the same cases)
    for k, row in zip((1, 2), cat.get(out["outputs"]["metrics"]).inputs, strict=True):
        rec = cat.get(row)
        assert rec.params["iteration"] == k
        post, analytic, base = (cat.open(key).load() for key in rec.inputs)
        assert cat.get(rec.inputs[2]).step == "baselines"
        kl = per_case(post, analytic)["kl"]
        np.testing.assert_allclose(kl, m.kl_per_case.sel(iteration=k), rtol=1e-9)
        np.testing.assert_allclose(kl.mean(), m.kl.sel(iteration=k), rtol=1e-9)
    diff = (m.kl_per_case.sel(iteration=2) - m.kl_per_case.sel(iteration=1)).values
    np.testing.assert_allclose(float(m.kl_diff.sel(change=2)), diff.mean(), rtol=1e-9)
    np.testing.assert_allclose(float(m.kl_diff_se.sel(change=2)), diff.std(ddof=1) / np.sqrt(diff.size), rtol=1e-9)
    assert float(m.kl_diff.sel(change=2)) <= 2 * float(m.kl_diff_se.sel(change=2)), m.kl.values
    # a linear-Gaussian posterior mean is linear in the data: the ridge baseline is close to the CNF
    assert float(last.rmse_linear) <= 1.1 * float(last.rmse) and float(last.rmse) < float(last.rmse_prior_mean)


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
    # the held-out chain: posterior_2 = CNF_2 at the held-out summaries s² and estimates x̂¹, x̂¹ from CNF_1
    post2 = cat.get(out["outputs"]["posterior_2"])
    assert post2.inputs[0] == out["outputs"]["checkpoint_2"]
    s2, x1 = (cat.get(k) for k in post2.inputs[1:3])
    assert s2.step == "summaries" and x1.step == "posterior_estimates" and s2.inputs[0] == x1.key
    assert x1.inputs[2] == out["outputs"]["checkpoint_1"] and x1.params["iteration"] == 1  # (s, x̂, CNF)
    assert cat.get(post2.inputs[3]).params["samples"][0] == 10**9  # the held-out pairs
