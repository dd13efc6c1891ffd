"""The notebook API: a study's output by (study, output, preset), a checkpoint as a model, lineage."""

from __future__ import annotations

import json

import pytest
import torch

from pipelines import api
from strata_errors import InputError

pytestmark = pytest.mark.prefect


def test_open_output_by_study_name_and_preset(tiny_run):
    strata, proc = tiny_run("seismic_survey")
    keys = json.loads(proc.stdout)["outputs"]
    ds = api.open_output("seismic_survey", "shot_records", preset="tiny", root=strata.root)
    assert ds.attrs["strata_lineage"]["key"] == keys["shot_records"] and ds["data"].sizes["shot"] == 3
    assert api.output_key("seismic_survey", "velocity_model", "tiny", root=strata.root) == keys["velocity_model"]
    up = api.lineage(keys["shot_records"], root=strata.root)
    assert {n["key"] for n in up["nodes"]} == set(keys.values())
    down = api.lineage(keys["velocity_model"][:10], root=strata.root, downstream=True)  # a prefix will do
    assert keys["shot_records"] in {n["key"] for n in down["nodes"]}
    with pytest.raises(InputError, match=r"not computed .*strata run seismic_survey --preset tiny --set"):
        api.open_output("seismic_survey", "shot_records", "tiny", root=strata.root,
                        overrides=["simulation.noise_snr_db=5"])
    with pytest.raises(InputError, match="no output 'nope'"):
        api.open_output("seismic_survey", "nope", "tiny", root=strata.root)


def test_load_model_from_a_checkpoint(tiny_run):
    strata, proc = tiny_run("mad")
    last = json.loads(proc.stdout)["outputs"]["last_fully_synthetic_1"]
    [models] = [k for k in api.lineage(last, root=strata.root, depth=1)["nodes"]
                if k["step"] == "mad_models"]
    model = api.load_model(models["key"], root=strata.root, member=2)
    x = model.sample(10, 1.0, torch.Generator().manual_seed(0))
    assert x.shape == (10, 2) and torch.isfinite(x).all()
