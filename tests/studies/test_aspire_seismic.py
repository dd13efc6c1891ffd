"""aspire_seismic on its ``tiny`` preset: the datasets of the chain, their dims and lineage, the plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_catalog import Catalog

pytestmark = pytest.mark.prefect


def test_the_seismic_chain_writes_posteriors_metrics_and_plots(tiny_run):
    strata, proc = tiny_run("aspire_seismic")  # the study contract suite's reference run
    out = json.loads(proc.stdout)
    cat = Catalog(strata.root)
    try:
        post = cat.open(out["outputs"]["posterior_2"]).load()
        assert post.draws.dims == ("case", "draw", "x", "z") and post.draws.shape[:2] == (2, 8)
        assert post["mean"].dims == post["std"].dims == post.truth.dims == ("case", "x", "z")
        assert post.case.values.tolist() == [10**9, 10**9 + 1]  # held-out labels do not depend on train_pairs
        assert np.isfinite(post.draws.values).all() and (post["std"].values > 0).all()
        m = cat.open(out["outputs"]["metrics"]).load()
        assert m.iteration.values.tolist() == [1, 2]
        assert {"rmse", "ssim", "mean_std", "coverage_50", "coverage_90", "error_std_corr", "nll",
                "rmse_prior_mean", "rmse_linear", "coverage_90_nominal"} <= set(m)
        assert "kl" not in m  # no analytic posterior here
        # iteration 2's network was trained at iteration 1's estimates, which came (cross-fitting, 2 folds) from
        # iteration 1's two fold networks, each trained without its fold's samples
        ckpt2 = cat.get(out["outputs"]["checkpoint_2"])
        estimates = [cat.get(k) for k in ckpt2.inputs if cat.get(k).step == "posterior_estimates"]
        assert len(estimates) == 1
        folds = [cat.get(k) for k in estimates[0].inputs if cat.get(k).kind == "checkpoint"]
        assert sorted(f.params["fold"] for f in folds) == [0, 1] and {f.params["folds"] for f in folds} == {2}
        assert all(f.params["iteration"] == 1 and f.step == "train_posterior" for f in folds)
        assert out["outputs"]["checkpoint_1"] not in estimates[0].inputs
        xhat = cat.open(estimates[0].key).load()
        assert xhat.vp.dims == ("sample", "x", "z") and xhat.sizes["sample"] == 12
        # the estimates are kept inside the tiny preset's [prior.vp_min, prior.vp_max]
        assert 1150.0 <= float(xhat.vp.min()) and float(xhat.vp.max()) <= 3800.0
        report = (strata.root / "reports")
        pngs = {p.name for p in report.glob("*/*.png")}
        assert {"posterior_1.png", "posterior_2.png", "metrics.png", "checkpoint_2.png"} <= pngs
        html = (report / out["flow_run_id"] / "index.html").read_text()
        assert "<h3>metrics (aspire_metrics)</h3>" in html and "coverage_90" in html
    finally:
        cat.close()
