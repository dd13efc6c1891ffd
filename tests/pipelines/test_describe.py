"""``strata studies STUDY``: every field of a study with its type and bounds, the study file's default, the unit
written beside it, and what each preset changes."""

from __future__ import annotations

import json

from pipelines.describe import field_comments


def test_field_comments_follow_the_nesting_of_the_study_file():
    text = """study: x
config:
  model:
    spacing: 10.0   # m
    circle:         # null for none
      radius: 80.0  # m
    flow: {a: 1}    # one field
  seed: 3
presets:
  tiny:
    seed: 1         # not a config comment
"""
    assert field_comments(text) == {"model.spacing": "m", "model.circle": "null for none",
                                    "model.circle.radius": "m", "model.flow": "one field"}


def test_studies_describes_fields_types_units_and_presets(strata_offline):
    doc = strata_offline.json("studies", "seismic_survey")
    fields = {f["field"]: f for f in doc["fields"]}
    assert fields["geometry.n_shots"]["type"] == "integer (>= 1, <= 100000)"
    assert fields["geometry.n_shots"]["default"] == 4
    assert fields["model.spacing"]["note"] == "m" and fields["geometry.f0"]["note"].startswith("Hz")
    assert fields["geometry.dt"]["type"] == "number (> 0) or null"
    assert fields["simulation.space_order"]["type"].startswith("one of 4, 6, 8")
    assert doc["presets"]["tiny"]["geometry.n_shots"] == 3 and doc["presets"]["small"] == {}
    text = strata_offline("studies", "mad").stdout
    assert "family" in text and "one of gaussian, mixture, flow" in text and "preset paper:" in text
    listed = json.loads(strata_offline("studies", "--json").stdout)  # without a study: the list, as before
    assert {r["study"] for r in listed} >= {"mad", "seismic_survey"}


def test_an_unknown_study_is_one_error_line(strata_offline):
    proc = strata_offline("studies", "nope", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: unknown study 'nope'")
    assert "Traceback" not in proc.stderr
