"""``strata studies STUDY``: every field of a study with its type and bounds, the study file's default, the unit
written beside it, and what each preset changes."""

from __future__ import annotations

import json

from flows.config import StudyConfig
from pipelines.describe import field_notes


class Inner(StudyConfig):
    radius: float = 80.0  # m
    # a note
    # on two lines
    vp: float = 3000.0
    label: str = "a # b"


class Outer(StudyConfig):
    spacing: float = 10.0  # m, "quoted # not a comment"
    inner: Inner | None = None  # null for none


class Study(Outer):
    spacing: float = 5.0  # km


def test_field_notes_come_from_the_config_model_source():
    """The note of a field is the comment at the end of its line in the config model (or the comment lines above
    it), through nested sections; a subclass's note overrides its base's."""
    assert field_notes(Study) == {"spacing": "km", "inner": "null for none", "inner.radius": "m",
                                  "inner.vp": "a note on two lines"}


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
