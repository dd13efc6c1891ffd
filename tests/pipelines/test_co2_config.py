"""co2_forecast's configuration of the FNO4CO2 set-up: the ``paper`` preset as FNO4CO2's scripts have it, and
the FNO and rock options checked before any work."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.config import load_study
from pipelines.registry import models
from strata_errors import InputError
from tasks.co2.fields import rock_samples


def _config(preset: str | None = None, *overrides: str):
    return load_study("co2_forecast", preset, list(overrides), models()).config


def test_paper_preset_is_fno4co2s_set_up():
    cfg = _config("paper")
    r, f = cfg.rock, cfg.flow
    assert (r.kind, tuple(r.shape), r.spacing) == ("fno4co2", (64, 64), 15.0)
    assert (f.reports, f.report_every, f.thickness) == (50, 20.0, 10.0)
    # gen_conc.jl's wells qw[:, 3, 32] and qo[:, 62, 32] (1-based cells) at their cell centres, ±0.005 m³/s
    cells = [(int(w.x // r.spacing) + 1, int(w.z // r.spacing) + 1, w.rate) for w in f.wells]
    assert cells == [(3, 32, 0.005), (62, 32, -0.005)]
    assert all((w.x / r.spacing) % 1 == 0.5 and (w.z / r.spacing) % 1 == 0.5 for w in f.wells)
    assert (cfg.samples.train, cfg.samples.test) == (1000, 100)
    assert (cfg.fno.kind, tuple(cfg.fno.modes), cfg.fno.width, cfg.fno.layers) == ("3d", (8, 8, 7), 20, 4)
    t = cfg.training
    assert (t.lr, t.weight_decay, t.clamp, t.batch_size, t.epochs) == (1e-4, 1e-4, True, 2, 1000)
    params = r.sampler_params()
    assert "fno4co2" in params and "channel" not in params and "grf" not in params
    ds = rock_samples(np.arange(2), seed=0, **params)
    assert set(np.unique(ds.permeability.values)) == {20.0, 120.0}


def test_defaults_keep_the_2d_fno_without_padding():
    cfg = _config()
    assert (cfg.fno.kind, cfg.fno.padding, cfg.training.weight_decay, cfg.training.clamp) == ("2d", 0.0, 0.0, False)
    assert "fno4co2" not in cfg.rock.sampler_params()


@pytest.mark.parametrize("overrides, message", [
    (["fno.kind=3d"], "fno.kind 3d needs 3 modes, got [12, 12]"),
    (["fno.modes=[12, 12, 4]"], "fno.kind 2d needs 2 modes"),
    (["fno.kind=3d", "fno.modes=[8, 8, 17]"], "17 modes in time exceed the 16 report times"),
    (["fno.padding=-0.1"], "fno.padding"),
    (["rock.fno4co2.top=[0.5, 0.4]"], "fno4co2.top must be a range [low, high], got [0.5, 0.4]"),
    (["training.weight_decay=-1"], "training.weight_decay"),
])
def test_bad_fno_and_rock_settings(overrides, message):
    with pytest.raises(InputError, match=None) as info:
        _config(None, *overrides)
    assert message in str(info.value), str(info.value)
