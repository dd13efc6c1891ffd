"""aspire_location in its ``small`` preset, in memory (flows.direct: the study's science, no orchestration):
ASPIRE's claim where the answer is known — the second iteration's CNF is much closer to the exact posterior
than the first's, as the ideal values computed by quadrature say it can be."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small():
    from flows.direct import run_direct
    from pipelines.config import load_study
    from pipelines.registry import load_flow, models

    cfg = load_study("aspire_location", "small", [], models()).config
    outputs, _ = run_direct(load_flow("aspire_location"), cfg)
    return cfg, outputs


def test_the_second_iteration_refines_the_posterior(small):
    cfg, out = small
    m = out["metrics"].sel(iteration=[1, 2])
    assert m.attrs["cases"] >= 100
    kl, rmse = m.kl_grid.values, m.rmse.values
    assert kl[1] <= 0.4 and kl[0] - kl[1] >= 0.8, kl
    drop, se = -float(m.kl_grid_diff.sel(change=2)), float(m.kl_grid_diff_se.sel(change=2))
    assert drop > 3 * se, (drop, se)
    assert rmse[1] <= 0.5 * rmse[0], rmse
    assert float(m.mean_error.values[1]) <= 0.6
    assert ((m.coverage_90.values >= 0.80) & (m.coverage_90.values <= 0.98)).all(), m.coverage_90.values
    # the ideal values bound what a CNF can reach, and the learned ones come near them
    assert (m.ideal_kl_grid.values <= kl + 2 * m.kl_grid_se.values).all()
    assert float(m.ideal_kl_grid.values[1]) < 0.1 < 1.0 < float(m.ideal_kl_grid.values[0])
    # beside the baselines: the CNF's posterior mean beats the training mean and the ridge regression
    assert rmse[1] < float(m.rmse_linear.values[1]) and rmse[1] < 0.5 * float(m.rmse_prior_mean.values[1])


def test_the_stored_datasets_are_enough_to_recompute_the_exact_posterior(small):
    from tasks.inference import location

    _, out = small
    problem, held = out["problem"], out["held_out"]
    assert problem.receivers.dims == ("receiver", "axis") and problem.attrs["noise_std"] == 0.1
    assert held.x.dims == ("sample", "axis") and held.y.dims == ("sample", "receiver")
    first = held.isel(sample=slice(0, 3))
    again = location.reference_posterior(first, problem, points=241, extent=4.0)
    ref = out["reference_posterior"].sel(case=first.sample.values)
    np.testing.assert_allclose(again["mean"].values, ref["mean"].values, atol=1e-9)
    assert out["posterior_2"].draws.dims == ("case", "draw", "axis")
