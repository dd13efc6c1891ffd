"""An imported model file enters the velocity_model key by content: edit the file, get a new key."""

from __future__ import annotations

import numpy as np


def test_editing_the_model_file_changes_the_key(tmp_path, monkeypatch):
    from studies.shared.sections import VelocityModelSection
    from studies.shared.steps import model_params, velocity_model

    path = tmp_path / "vp.npy"
    np.save(path, np.full((10, 8), 1500.0, dtype="f4"))
    doc = {"shape": (10, 8), "spacing": 5.0, "velocities": (1500.0,), "depths": (), "perturbation": None,
           "circle": None, "file": {"path": "vp.npy", "units": "m/s"}}
    cfg = VelocityModelSection(**doc)
    monkeypatch.chdir(tmp_path)
    p1, label = model_params(cfg)
    assert label.startswith("vp.npy") and p1["file"]["path"] == str(path)
    monkeypatch.chdir("/")  # a relative path was resolved once: the key does not depend on the cwd
    absolute = VelocityModelSection(**{**doc, "file": {**doc["file"], "path": str(path)}})
    assert velocity_model.key([], model_params(absolute)[0], None) == velocity_model.key([], p1, None)
    np.save(path, np.full((10, 8), 1600.0, dtype="f4"))
    p2, _ = model_params(VelocityModelSection(**{**doc, "file": {**doc["file"], "path": str(path)}}))
    assert p2["file"]["sha256"] != p1["file"]["sha256"]
    assert velocity_model.key([], p2, None) != velocity_model.key([], p1, None)
