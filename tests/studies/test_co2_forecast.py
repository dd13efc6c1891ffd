"""co2_forecast on its ``tiny`` preset: mass balance from the stored dataset alone, the checkpoint, the
forecast errors, rock physics in the monitor models, lineage; a transport time step above the CFL bound."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_catalog import Catalog

pytestmark = pytest.mark.prefect


def test_tiny_chain_datasets_and_mass_balance(tiny_run):
    strata, proc = tiny_run("co2_forecast")  # the study contract suite's reference run
    out = json.loads(proc.stdout)["outputs"]
    cat = Catalog(strata.root)
    try:
        sim = cat.open(out["simulations"]).load()
        assert sim.saturation.dims == ("sample", "time", "x", "z") and sim.sizes["time"] == 4
        # mass balance from the dataset alone: rates and times in attrs/coords, CO2 produced per report
        dx, dz = sim.attrs["spacing"]
        rate = sum(w["rate"] for w in json.loads(sim.attrs["wells"]) if w.get("rate", 0) > 0)
        injected = rate * sim.time.values * 86400.0
        stored = (sim.porosity * sim.saturation).sum(("x", "z")).values * dx * dz * sim.attrs["thickness"]
        np.testing.assert_allclose(stored + sim.produced_co2.values, np.broadcast_to(injected, stored.shape), rtol=1e-6)
        assert float(sim.saturation.min()) >= 0 and float(sim.saturation.max()) <= 1

        ckpt = cat.open(out["checkpoint"]).load()
        assert ckpt.attrs["model_class"] == "fno_surrogate" and "_metadata" not in ckpt.data_vars
        fc = cat.open(out["forecast"]).load()
        np.testing.assert_array_equal(fc.simulated.values, sim.saturation.values.astype(np.float32))
        metrics = cat.open(out["forecast_metrics"]).load()
        assert metrics.relative_l2.dims == ("time",) and np.isfinite(metrics.relative_l2.values).all()

        base = cat.open(out["baseline"]).load()
        for name in ("simulated", "forecast"):
            mon = cat.open(out[f"monitor_{name}"]).load()
            co2 = mon.saturation.values > 0
            assert co2.any() and (name == "forecast" or (~co2).any())  # a forecast may be > 0 everywhere
            np.testing.assert_array_equal(mon.vp.values[~co2], base.vp.values[~co2])  # S = 0: the baseline, exactly
            assert (mon.vp.values <= base.vp.values).all()  # CO2 slows these (soft) rocks
            assert (mon.vp.values[mon.saturation.values > 0.01] < base.vp.values[mon.saturation.values > 0.01]).all()
            diff = cat.open(out[f"difference_{name}"]).load()
            assert float(np.abs(diff.data).max()) > 0
        inv = cat.open(out["inversion"]).load()  # the coupled inversion (tiny: 2 iterations)
        assert inv.permeability.dims == ("iteration", "x", "z") and inv.sizes["iteration"] == 3
        assert np.all(np.diff(inv.misfit.values) <= 0) and inv.misfit.values[-1] < inv.misfit.values[0]
        assert out["checkpoint"] in cat.get(out["inversion"]).inputs
        # lineage: the forecast comes from the checkpoint trained on the training simulations
        rec = cat.get(out["forecast"])
        assert out["checkpoint"] in rec.inputs and out["simulations"] in rec.inputs
        train = [cat.get(k) for k in cat.get(out["checkpoint"]).inputs]
        assert [r.step for r in train] == ["co2_simulation"] and train[0].key != out["simulations"]
        pngs = {p.name for p in (strata.root / "reports").glob("*/*.png")}
        assert {"simulations.png", "forecast.png", "forecast_metrics.png", "image_simulated.png",
                "difference_forecast.png", "inversion.png"} <= pngs
    finally:
        cat.close()


def test_a_time_step_above_the_cfl_bound_is_one_error_line(strata):
    proc = strata("run", "co2_forecast", "--preset", "tiny", "--set", "flow.substep=false", "--set", "flow.dt=1e7",
                  check=False)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert err[-1].startswith("error: ") and "exceeds the transport CFL bound" in err[-1], err
    assert sum(line.startswith("error: ") for line in err) == 1 and "Traceback" not in proc.stderr
    cat = Catalog(strata.root)
    try:
        assert all(r.step == "rock_samples" for r in cat.list())  # nothing incomplete is visible
    finally:
        cat.close()
