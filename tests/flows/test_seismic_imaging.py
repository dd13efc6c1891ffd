"""The seismic_imaging study end to end: map (per-shot RTM) then reduce (stack), ASPIRE summaries."""

from __future__ import annotations

import numpy as np
import pytest

from data_catalog import Catalog

pytestmark = pytest.mark.prefect

TINY = ["--preset", "tiny", "--set", "imaging.pieces.per_piece=2"]  # 3 shots, 2 summary samples


def test_imaging_study_maps_reduces_and_summarizes(strata):
    out = strata.json("run", "seismic_imaging", *TINY)
    assert set(out["outputs"]) == {"image", "velocity_model", "background", "shot_records",
                                   "gradient_summary", "rtm_summary"}
    cat = Catalog(strata.root)
    image = cat.open(out["outputs"]["image"]).load()
    stack_rec = cat.get(out["outputs"]["image"])
    per_shot_key = stack_rec.inputs[0]
    per_shot = cat.open(per_shot_key).load()
    assert cat.get(per_shot_key).kind == "shot_images" and per_shot.sizes["shot"] == 3
    assert cat.get(per_shot_key).variables["image"]["chunks"][0] == 2  # one region per piece of 2 shots
    # reduce = sum over shots, then illumination compensation and the shallow mute
    illum = per_shot["illumination"].astype("f8").sum("shot")
    expected = per_shot["image"].astype("f8").sum("shot") / (illum + 1e-3 * float(illum.max()))
    expected = expected.where(expected["z"] >= 60.0, 0.0)
    scale = float(abs(expected).max())
    np.testing.assert_allclose(image["image"].values, expected.values, rtol=1e-5, atol=1e-6 * scale)
    # the gradient summary is one (sample, x, z) dataset whose lineage reaches the data and the estimates
    grad = cat.open(out["outputs"]["gradient_summary"]).load()
    assert grad["gradient"].dims == ("sample", "x", "z") and grad.sizes["sample"] == 2
    assert np.isfinite(grad["gradient"].values).all() and (grad["objective"].values > 0).all()
    up = cat.lineage(out["outputs"]["gradient_summary"], "up", depth=1)
    assert {n["step"] for n in up["nodes"]} == {"gradient_summary", "estimates", "pair_data", "geometry"}
    rtm = cat.open(out["outputs"]["rtm_summary"]).load()
    assert rtm["image"].dims == ("sample", "x", "z")
    cat.close()
