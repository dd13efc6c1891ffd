"""The seismic_imaging study end to end: map (per-shot RTM) then reduce (stack), ASPIRE summaries (in process:
:func:`flows.study.run_local`), and the shared tiny CLI run's claims, LSRTM states and kill/resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_catalog import Catalog

TINY = ["imaging.pieces.per_piece=2",  # the tiny preset: 3 shots, 2 summary samples
        "imaging.compare=[]", "imaging.lsrtm.iterations=0"]  # (those: the shared tiny run)


def test_imaging_study_maps_reduces_and_summarizes(local_run, tmp_path):
    keys = local_run("seismic_imaging", *TINY, preset="tiny").output_keys
    assert set(keys) == {"image", "velocity_model", "background", "shot_records", "image_quality",
                         "gradient_summary", "rtm_summary", "claims"}
    cat = Catalog(tmp_path / "root")
    image = cat.open(keys["image"]).load()
    stack_rec = cat.get(keys["image"])
    per_shot_key = stack_rec.inputs[0]
    per_shot = cat.open(per_shot_key).load()
    assert cat.get(per_shot_key).kind == "shot_images" and per_shot.sizes["shot"] == 3
    assert cat.get(per_shot_key).variables["image"]["chunks"][0] == 2  # one region per piece of 2 shots
    assert per_shot.attrs["condition"] == "isic" and per_shot.attrs["max_offset"] == 400.0
    # reduce = sum over shots, then illumination compensation and the shallow mute, tapered over 30 m
    illum = per_shot["illumination"].astype("f8").sum("shot")
    expected = per_shot["image"].astype("f8").sum("shot") / (illum + 1e-3 * float(illum.max()))
    z = expected["z"]
    expected = expected * np.where(z < 60.0, 0.0, np.sin(0.5 * np.pi * np.clip((z - 60.0) / 30.0, 0, 1)) ** 2)
    assert (expected.sel(z=70.0) != 0).any() and (expected.sel(z=50.0) == 0).all()
    scale = float(abs(expected).max())
    np.testing.assert_allclose(image["image"].values, expected.values, rtol=1e-5, atol=1e-6 * scale)
    # the gradient summary is one (sample, x, z) dataset whose lineage reaches the data and the estimates
    grad = cat.open(keys["gradient_summary"]).load()
    assert grad["gradient"].dims == ("sample", "x", "z") and grad.sizes["sample"] == 2
    assert np.isfinite(grad["gradient"].values).all() and (grad["objective"].values > 0).all()
    up = cat.lineage(keys["gradient_summary"], "up", depth=1)
    assert {n["step"] for n in up["nodes"]} == {"gradient_summary", "estimates", "pair_data", "geometry"}
    rtm = cat.open(keys["rtm_summary"]).load()
    assert rtm["image"].dims == ("sample", "x", "z")
    cat.close()


@pytest.mark.prefect
def test_tiny_image_is_accepted_and_lsrtm_stores_every_iteration(tiny_run):
    """The shared tiny run (isic beside born and crosscorrelation, offsets up to 400 m, 2 LSRTM iterations): its
    image's low-wavenumber share, reflector depths and spurious events pass the claims on its own true model
    (interfaces at 150 and 280 m); every LSRTM state is stored and the residual falls."""
    strata, proc = tiny_run("seismic_imaging")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    cat = Catalog(strata.root)
    claims = cat.open(out["outputs"]["claims"]).load()
    assert [str(c) for c in claims["claim"].values] == ["low_wavenumber_suppressed", "reflectors_at_interfaces",
                                                        "no_spurious_events"]
    assert claims["holds"].values.all(), claims[["value", "holds"]].to_dataframe()
    q = cat.open(out["outputs"]["image_quality"]).load()
    assert list(q["condition"].values) == ["isic", "born", "crosscorrelation"]
    share = q["low_wavenumber_share"]
    assert float(share.sel(condition="isic")) < float(share.sel(condition="crosscorrelation"))
    np.testing.assert_array_equal(q["interface_depth"].values, [[150.0, 280.0], [150.0, 280.0]])
    ls = cat.open(out["outputs"]["lsrtm"]).load()
    assert list(ls["iteration"].values) == [0, 1, 2]
    r = ls["residual_norm"].values
    assert r[2] < r[1] < r[0] and np.isfinite(ls["image"].values).all()
    states = [rec for rec in cat.list(kind="lsrtm_state")]
    assert len(states) == 3  # iterations 0, 1, 2: a killed run resumes at the last stored
    cat.close()


@pytest.mark.prefect
def test_a_run_killed_in_an_lsrtm_iteration_resumes_at_it(tiny_run, strata):
    """Killed in iteration 1's per-shot work (after its first piece): the start, the iteration-0 state and the
    finished piece are kept; the rerun computes the rest and ends with the uninterrupted run's bytes."""
    ref, proc = tiny_run("seismic_imaging")
    want = json.loads(proc.stdout)
    killed = strata("run", "seismic_imaging", "--preset", "tiny", fault="lsrtm_apply:1:kill", check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    cat = Catalog(strata.root)
    done = {r.step for r in cat.list()}
    cat.close()
    assert {"lsrtm_start", "lsrtm_setup"} <= done and "lsrtm_update" not in done
    again = strata.json("run", "seismic_imaging", "--preset", "tiny")
    assert again["outputs"] == want["outputs"]
    assert {"lsrtm_start", "lsrtm_setup"} <= {step_of(strata.root, k) for k in again["reused"]}
    ref_cat, cat = Catalog(ref.root), Catalog(strata.root)
    for name in ("lsrtm", "claims", "image"):
        key = want["outputs"][name]
        assert cat.get(key).fingerprint == ref_cat.get(key).fingerprint, name
    ref_cat.close()
    cat.close()


def step_of(root, key: str) -> str:
    cat = Catalog(root)
    try:
        return cat.get(key).step
    finally:
        cat.close()
