"""3-D seismic studies: the config of a 3-D model and of the areal layout, and a tiny 3-D imaging run in process
(the ``3d`` preset at a 31³ grid) whose stacked image puts its reflectors at the true interfaces."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from data_catalog import Catalog
from pipelines.cli import main
from studies.shared.sections import GeometrySection, SeismicSurveyConfig, VelocityModelSection
from tasks.seismic.geometry import acquisition
from tasks.seismic.model import layered_model

SPHERE_3D = {"center": (200.0, 200.0, 150.0), "radius": 30.0, "vp": 3000.0}


def _error(exc: ValidationError) -> str:
    assert len(exc.errors()) == 1, exc.errors()  # one error, not one per field it touches
    return exc.errors()[0]["msg"]


def test_a_model_is_2d_or_3d_and_its_circle_matches():
    m = VelocityModelSection(shape=(31, 21, 41), circle=SPHERE_3D)
    assert m.shape == (31, 21, 41) and len(m.circle.center) == 3
    with pytest.raises(ValidationError) as exc:
        VelocityModelSection(shape=(31, 21, 41), circle={**SPHERE_3D, "center": (200.0, 150.0)})
    assert "circle center [200.0, 150.0] is (x, z) but shape [31, 21, 41] is a 3D grid (x, y, z)" in _error(exc.value)
    with pytest.raises(ValidationError) as exc:
        VelocityModelSection(shape=(31, 41), circle=SPHERE_3D)
    assert "is (x, y, z) but shape [31, 41] is a 2D grid (x, z)" in _error(exc.value)
    with pytest.raises(ValidationError) as exc:
        VelocityModelSection(shape=(31, 21, 41, 5))
    assert "shape is 2 grid point counts (x, z) or 3 (x, y, z), got 4" in _error(exc.value)
    with pytest.raises(ValidationError) as exc:
        VelocityModelSection(shape=(31, 41), circle={**SPHERE_3D, "center": (1.0,)})
    assert "got 1 coordinates" in _error(exc.value)


def test_a_3d_shape_with_the_2d_centre_is_one_error_line(tmp_path, capsys):
    """``--set model.shape=[31,31,31]`` on seismic_survey keeps the study's (x, z) circle: one error, exit 2."""
    root = tmp_path / "root"
    assert main(["run", "seismic_survey", "--set", "model.shape=[31,31,31]", "--root", str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "circle center [500.0, 300.0] is (x, z) but shape [31, 31, 31] is a 3D grid (x, y, z)" in err[0]
    assert not (root / "datasets").exists()


def _survey(**geometry) -> SeismicSurveyConfig:
    return SeismicSurveyConfig(model={"shape": (31, 21, 31), "depths": (100.0, 200.0)},
                               geometry={"record_length": 0.2, **geometry})


def test_areal_layout_is_3d_only_and_needs_its_y_counts():
    with pytest.raises(ValidationError) as exc:
        SeismicSurveyConfig(geometry={"layout": "areal", "n_shots_y": 2, "n_receivers_y": 3})
    assert "geometry: the areal layout is for 3D (x, y, z) models, got dims ('x', 'z')" in _error(exc.value)
    with pytest.raises(ValidationError) as exc:
        _survey(layout="areal", n_shots=2, n_receivers=3, n_receivers_y=3)
    assert "areal layout needs n_shots_y and n_receivers_y" in _error(exc.value)
    with pytest.raises(ValidationError) as exc:  # the existing inside-the-model check: y runs 0..200 m
        _survey(layout="areal", n_shots=2, n_shots_y=2, shot_spacing=100.0, first_shot_y=150.0, n_receivers=3,
                n_receivers_y=3)
    assert "source 2 at x=0 m, y=250 m, z=20 m is outside the model" in _error(exc.value)


def test_areal_positions_and_shot_count():
    model = layered_model((31, 21, 31), 10.0, (1500.0, 2000.0), (150.0,))
    geo = acquisition(model, layout="areal", n_shots=3, n_shots_y=2, shot_spacing=100.0, first_shot_x=50.0,
                      shot_spacing_y=80.0, first_shot_y=40.0, source_depth=20.0, n_receivers=4, n_receivers_y=3,
                      receiver_spacing=50.0, receiver_depth=10.0, record_length=0.3, f0=10.0)
    assert geo.attrs["kind"] == "areal"
    assert geo.sizes["shot"] == 3 * 2 and geo.sizes["receiver"] == 4 * 3
    # shots x fastest: shot i_y * n_shots + i_x
    np.testing.assert_array_equal(geo.src_x.values, [50, 150, 250] * 2)
    np.testing.assert_array_equal(geo.src_y.values, [40] * 3 + [120] * 3)
    np.testing.assert_array_equal(geo.src_z.values, [20.0] * 6)
    # receivers: the x spacing along y too, from the model's first x and y nodes; the same spread for every shot
    rec_x, rec_y = geo.rec_x.values, geo.rec_y.values
    assert rec_x.shape == (6, 12) and (rec_x == rec_x[:1]).all() and (rec_y == rec_y[:1]).all()
    np.testing.assert_array_equal(rec_x[0], [0, 50, 100, 150] * 3)
    np.testing.assert_array_equal(rec_y[0], [0] * 4 + [50] * 4 + [100] * 4)
    assert (geo.rec_z.values == 10.0).all()


def test_the_y_fields_enter_no_key_while_unset():
    """A 2-D geometry dumps (into the geometry step's key) the fields it dumped before the areal layout existed."""
    before = {"layout", "seafloor", "source_well_x", "receiver_well_x", "first_shot_z", "first_receiver_z",
              "ring_inset", "n_shots", "shot_spacing", "first_shot_x", "source_depth", "n_receivers",
              "receiver_spacing", "first_receiver_x", "receiver_depth", "record_length", "f0", "dt"}
    assert set(GeometrySection().model_dump(mode="json")) == before
    assert set(SeismicSurveyConfig().model_dump(mode="json")["geometry"]) == before
    areal = GeometrySection(layout="areal", n_shots_y=2, n_receivers_y=3)
    assert set(areal.model_dump(mode="json")) == before | {"n_shots_y", "n_receivers_y"}
    assert GeometrySection(**areal.model_dump()) == areal


# The 3d preset shrunk to seconds: 300 m cube, interfaces at 120 and 220 m, the sphere out of the traces' way,
# 2 shots 100 m apart on the line y = 150 m, 16 x 16 receivers every 20 m.
TINY_3D = ["model.shape=[31,31,31]", "model.depths=[120,220]",
           "model.circle={center: [220, 220, 170], radius: 30, vp: 3000}",
           "geometry.n_shots=2", "geometry.n_shots_y=1", "geometry.shot_spacing=100", "geometry.first_shot_x=100",
           "geometry.first_shot_y=150", "geometry.n_receivers=16", "geometry.n_receivers_y=16",
           "geometry.record_length=0.3", "simulation.nbl=10", "imaging.mute_depth=60"]
INTERFACES, H = (120.0, 220.0), 10.0


def _envelope_peaks(trace: np.ndarray, z: np.ndarray) -> list[float]:
    """Depths of the local maxima of the Hilbert envelope of ``trace``, strongest first."""
    from scipy.signal import hilbert

    env = np.abs(hilbert(np.asarray(trace, dtype=np.float64)))
    peaks = [i for i in range(1, len(env) - 1) if env[i] > 0 and env[i] >= env[i - 1] and env[i] >= env[i + 1]]
    return [float(z[i]) for i in sorted(peaks, key=lambda i: -env[i])]


def test_tiny_3d_imaging_run_images_the_interfaces(local_run, tmp_path):
    from pipelines.config import load_study
    from pipelines.registry import models
    from pipelines.report import write_report

    result = local_run("seismic_imaging", *TINY_3D, preset="3d")
    out = result.output_keys
    cat = Catalog(tmp_path / "root")
    try:
        vp = cat.open(out["velocity_model"]).load().vp
        assert vp.dims == ("x", "y", "z") and vp.shape == (31, 31, 31)
        records = cat.open(out["shot_records"]).load()
        assert records.sizes["shot"] == 2 and records.sizes["receiver"] == 256
        image = cat.open(out["image"]).load().image
        # the run's report plots its 3-D outputs
        loaded = load_study("seismic_imaging", "3d", TINY_3D, models())
        assert write_report(cat, result, loaded, 0.0).is_file()
    finally:
        cat.close()
    assert image.dims == ("x", "y", "z") and np.isfinite(image.values).all()
    # the strongest events along traces away from the sphere: the two interfaces, within 2 grid points
    for x, y in ((100.0, 150.0), (150.0, 100.0)):
        peaks = _envelope_peaks(image.sel(x=x, y=y).values, image.z.values)
        assert len(peaks) >= 2, peaks
        assert abs(peaks[0] - INTERFACES[0]) <= 2 * H, (x, y, peaks)
        assert abs(peaks[1] - INTERFACES[1]) <= 2 * H, (x, y, peaks)
