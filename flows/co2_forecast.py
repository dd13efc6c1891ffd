"""Study flow ``co2_forecast``: permeability samples → two-phase flow simulations → FNO surrogate →
held-out plume forecasts and their errors → rock physics → baseline and monitor surveys of the simulated
and of the forecast plume → time-lapse difference data and their RTM images; optionally (``inversion.iterations``)
the coupled inversion of the monitored case's permeability from its monitor records."""

from __future__ import annotations

from typing import Any

import numpy as np

from tasks.claims import Claim
from tasks.co2 import claims, fields, inversion, monitoring, simulator, surrogate

from .aspire import HELD_OUT
from .claims import check_claims
from .seismic_imaging import background, migrate, stack
from .seismic_survey import model_and_geometry, survey
from .step import Ref, Step
from .study import study_flow

__all__ = ["co2_forecast", "CLAIMS"]

PAPER = ("Yin, Siahkoohi, Louboutin, Herrmann, Learned coupled inversion for carbon sequestration monitoring and "
         "forecasting with Fourier neural operators (SEG 2022), and its code slimgroup/FNO4CO2")
CLAIMS = (
    Claim("forecast_error", "the FNO's held-out relative L2 error of the saturation, averaged over report times, is "
          "at most 0.10", PAPER, claims.forecast_error, ("forecast",), "at_most", 0.10,
          paper_note="FNO4CO2 reports its held-out relative errors in figures (2-D and 3-D examples)"),
    Claim("mass_balance", "the simulator conserves CO2: every held-out simulation's relative mass-balance error is "
          "at most 1e-10 at every report time", "conservation of the finite-volume scheme (our known answer)",
          claims.mass_balance, ("simulations",), "at_most", 1e-10),
    Claim("plume_rises", "with gravity on, the plume's centre of mass at the last report lies on average (over the "
          "held-out simulations) at least one cell above the injector (CO2 is lighter than brine)",
          "two-phase flow with buoyancy (FNO4CO2's simulator, after FwiFlow, has gravity)", claims.plume_rise,
          ("simulations",), "at_least", 1.0),
)

rock = Step("rock_samples", fields.rock_samples, version="1", kind="rock_samples", map_over="sample",
            coord_param="samples")
simulate = Step("co2_simulation", simulator.simulate_samples, version="2", kind="co2_simulation", map_over="sample")
train = Step("train_surrogate", surrogate.train_surrogate, version="2", kind="checkpoint", isolated=True)
forecast = Step("forecast", surrogate.forecast, version="1", kind="co2_forecast", map_over="sample")
errors = Step("forecast_metrics", surrogate.forecast_metrics, version="1", kind="forecast_metrics")
monitor = Step("monitor_model", monitoring.monitor_model, version="1", kind="velocity_model")
time_lapse = Step("time_lapse", monitoring.difference, version="1", kind="shot_records")
invert = Step("coupled_inversion", inversion.coupled_inversion, version="1", kind="coupled_inversion", isolated=True)


@study_flow("co2_forecast")
def co2_forecast(cfg: Any) -> dict[str, Ref]:
    """``cfg``: the study's frozen config (``pipelines.co2_models.Co2ForecastConfig``)."""
    r, f, s, m = cfg.rock, cfg.flow, cfg.samples, cfg.monitoring
    rock_params, flow_params = {**r.sampler_params(), "seed": s.seed}, f.simulator_params()
    splits = {"train": np.arange(s.train), "test": HELD_OUT + np.arange(s.test)}
    sims = {}
    for split, labels in splits.items():
        fields_ref = rock(pieces=s.pieces, label=f"{len(labels)} {split}", samples=labels, **rock_params)
        sims[split] = simulate(fields_ref, pieces=s.pieces, label=f"{len(labels)} {split}", **flow_params)
    t = cfg.training
    ckpt = train(sims["train"], label=f"{s.train} simulations", fno=cfg.fno.model_dump(mode="json"),
                 training=t.model_dump(mode="json", exclude={"threads"}), seed=s.seed, threads=t.threads)
    fc = forecast(ckpt, sims["test"], pieces=s.pieces, label=f"{s.test} held-out")
    out = {"simulations": sims["test"], "checkpoint": ckpt, "forecast": fc,
           "forecast_metrics": errors(fc, label=f"{s.test} held-out")}

    # time-lapse monitoring of one held-out case, for the simulated and the forecast plume
    fd = {"space_order": m.simulation.space_order, "nbl": m.simulation.nbl}
    _, base, geo = model_and_geometry(m)
    shots = f"{m.geometry.n_shots} shots"
    rec0 = survey(base, geo, pieces=m.simulation.pieces, label=f"baseline {shots}",
                  noise_snr_db=m.simulation.noise_snr_db, seed=m.simulation.seed, **fd)
    bg = background(base, label=f"sigma {m.imaging.smoothing:g} m", sigma=m.imaging.smoothing)
    case = int(HELD_OUT + m.case)
    out["baseline"] = base
    monitor_records = {}
    for name, plume in (("simulated", sims["test"]), ("forecast", fc)):
        vel = monitor(base, plume, label=f"{name} plume, case {m.case}", sample=case, report=m.report)
        rec = survey(vel, geo, pieces=m.simulation.pieces, label=f"monitor ({name}) {shots}",
                     noise_snr_db=m.simulation.noise_snr_db, seed=m.simulation.seed, **fd)
        monitor_records[name] = rec
        diff = time_lapse(rec, rec0, label=name)
        per_shot = migrate(bg, geo, diff, pieces=m.imaging.pieces, label=f"{name} difference, {shots}",
                           factor=m.imaging.snapshot_factor, condition=m.imaging.condition,
                           subtract_background=False, max_offset=m.imaging.max_offset,
                           offset_taper=m.imaging.offset_taper, **fd)
        out[f"monitor_{name}"] = vel
        out[f"difference_{name}"] = diff
        out[f"image_{name}"] = stack(per_shot, normalize=m.imaging.normalize, mute_depth=m.imaging.mute_depth,
                                     mute_taper=m.imaging.mute_taper)

    inv = cfg.inversion
    if inv.iterations:  # the stretch: permeability from the (simulated plume's) monitor records through the FNO
        out["inversion"] = invert(ckpt, base, geo, monitor_records["simulated"], sims["test"],
                                  label=f"case {m.case}, {inv.iterations} iterations", sample=case, report=m.report,
                                  **inv.model_dump(mode="json", exclude={"snapshot_factor"}),
                                  factor=inv.snapshot_factor, **fd)
    out["claims"] = check_claims(CLAIMS, out)
    return out
