"""The append-only OpenLineage event log (openlineage-python file transport, one NDJSON per run)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["EventLog", "read_events", "flow_runs", "PRODUCER"]

PRODUCER = "https://github.com/strata-imaging/strata"
_FACET_SCHEMA = "https://strata-imaging.github.io/spec/StrataRunFacet.json"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _run_uuid(run_id: str) -> str:
    """OpenLineage wants UUIDs; Prefect ids are, anything else is mapped deterministically."""
    try:
        return str(uuid.UUID(str(run_id)))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, str(run_id)))


_FACET_CLASS: list[type] = []


def _strata_facet() -> type:
    """The run facet class carrying strata's own record (made once: an attrs class costs ~1 ms)."""
    if not _FACET_CLASS:
        import attr
        from openlineage.client.facet_v2 import RunFacet

        @attr.define
        class StrataRunFacet(RunFacet):
            doc: dict = attr.field(factory=dict)

            @staticmethod
            def _get_schema() -> str:
                return _FACET_SCHEMA

        _FACET_CLASS.append(StrataRunFacet)
    return _FACET_CLASS[0]


class EventLog:
    """Emit OpenLineage RunEvents into ``<dir>/<flow_run_id>.ndjson`` (append mode)."""

    def __init__(self, directory: str | Path, flow_run_id: str, namespace: str):
        from openlineage.client import OpenLineageClient
        from openlineage.client.transport.file import FileConfig, FileTransport

        Path(directory).mkdir(parents=True, exist_ok=True)
        self.path = Path(directory) / f"{flow_run_id}.ndjson"
        self.namespace = namespace
        self.flow_run_id = flow_run_id
        self._client = OpenLineageClient(
            transport=FileTransport(FileConfig(log_file_path=str(self.path), append=True))
        )

    def emit(
        self,
        state: str,
        *,
        job: str,
        run_id: str,
        parent: tuple[str, str] | None = None,
        inputs: Sequence[str] = (),
        outputs: Sequence[str] = (),
        strata: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """One event. ``state`` is START/COMPLETE/FAIL; datasets are named by their uri;
        ``strata`` carries params, code (version, git sha, dirty, source hash) and packages."""
        from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import error_message_run, parent_run

        facets: dict[str, Any] = {}
        if strata:
            facets["strata"] = _strata_facet()(doc=json.loads(json.dumps(strata, default=str)))
        if parent:
            pjob, prun = parent
            facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=_run_uuid(prun)),
                job=parent_run.Job(namespace=self.namespace, name=pjob),
            )
        if error:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=error, programmingLanguage="python"
            )
        event = RunEvent(
            eventType=getattr(RunState, state),
            eventTime=_now(),
            run=Run(runId=_run_uuid(run_id), facets=facets),
            job=Job(namespace=self.namespace, name=job),
            inputs=[InputDataset(namespace=self.namespace, name=u) for u in inputs],
            outputs=[OutputDataset(namespace=self.namespace, name=u) for u in outputs],
            producer=PRODUCER,
        )
        self._client.emit(event)


def read_events(directory: str | Path) -> Iterator[dict[str, Any]]:
    """Every event of every run log under ``directory``, as dicts."""
    for path in sorted(Path(directory).glob("*.ndjson")):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:  # a line cut by a kill: skip it
                        continue


def flow_runs(directory: str | Path) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """``(flow_run_id, index fields, is_start)`` of every flow-level event under ``directory``: what the index
    keeps of a run (study, preset, overrides, started or finished and status)."""
    for ev in read_events(directory):
        facet = ev.get("run", {}).get("facets", {}).get("strata", {}).get("doc", {})
        if facet.get("flow_run_id") and facet.get("level") == "flow":
            fields = {k: facet.get(k) for k in ("study", "preset", "overrides")}
            start = ev.get("eventType") == "START"
            fields["started" if start else "finished"] = ev.get("eventTime")
            if not start:
                fields["status"] = ev.get("eventType")
            yield facet["flow_run_id"], fields, start
