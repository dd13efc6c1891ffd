"""Visible work in Prefect: a progress artifact per mapped step (100 % when done) and the run's summary as a
markdown artifact of the flow run, linking the HTML report."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.prefect


def _run_artifacts(tiny_run, prefect_server, study: str) -> tuple[dict, list]:
    """The tiny run of ``study`` (its --json document) and the Prefect artifacts of its flow run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    strata, proc = tiny_run(study)
    out = json.loads(proc.stdout)
    with temporary_settings({PREFECT_API_URL: prefect_server}), get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[out["flow_run_id"]])))
    return out, arts


def test_a_run_leaves_progress_and_report_artifacts(tiny_run, prefect_server):
    out, arts = _run_artifacts(tiny_run, prefect_server, "seismic_survey")
    progress = [a for a in arts if a.type == "progress"]
    assert progress and all(float(a.data) == 100.0 for a in progress)  # the survey's shots, all done
    assert any("survey" in (a.description or "") for a in progress)
    [report] = [a for a in arts if a.type == "markdown" and a.key == "strata-seismic-survey"]
    assert out["report"] in report.data and "| survey |" in report.data


def test_a_study_with_claims_shows_them_in_its_run_artifact(tiny_run, prefect_server):
    out, arts = _run_artifacts(tiny_run, prefect_server, "mad")
    [report] = [a for a in arts if a.type == "markdown" and a.key == "strata-mad"]
    assert f"**{out['claims']}**" in report.data and "| fully_synthetic_fid_rises |" in report.data
