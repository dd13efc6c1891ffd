"""A study run: one Prefect flow run whose steps share one task runner and one catalog."""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from data_catalog import Catalog, EventLog, now_iso, owner_id
from strata_errors import RunError

from .code import git_info, package_versions
from .context import active, current_run
from .execute import execute
from .executors import Executor, InProcess
from .interrupts import kept_interrupts
from .prefect_task import ProgressArtifact, TaskWrapper, inline, prefect_task
from .runtime import Runtime, prefect_home
from .step import Pieces, Ref, Step

__all__ = ["StudyRun", "StepResult", "RunResult", "study_flow", "run_study", "run_body", "run_local"]


@dataclass
class StepResult:
    step: str
    label: str | None
    key: str
    kind: str
    status: str
    seconds: float


@dataclass
class RunResult:
    study: str
    preset: str | None
    flow_run_id: str
    outputs: dict[str, Ref]
    steps: list[StepResult]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def output_keys(self) -> dict[str, str]:
        """{output name: dataset key}."""
        return {name: ref.key for name, ref in self.outputs.items()}

    @property
    def computed(self) -> list[str]:
        """The keys of the datasets the run computed, in step order."""
        return [s.key for s in self.steps if s.status == "computed"]

    @property
    def reused(self) -> list[str]:
        """The keys of the datasets the run found in the catalog, in step order."""
        return [s.key for s in self.steps if s.status == "reused"]


class StudyRun:
    """State of one study run in the flow process: catalog, identity, events, step results. The run context
    (:class:`~flows.context.RunContext`) that executes steps: each step's work wrapped by ``as_task`` (a Prefect
    task run of the flow run, or :func:`~flows.prefect_task.inline` for :func:`run_local`)."""

    def __init__(self, catalog: Catalog, study: str, preset: str | None, overrides: Sequence[str],
                 console: Any = None, executor: Executor | None = None, as_task: TaskWrapper = prefect_task):
        self.catalog, self.study, self.preset, self.overrides = catalog, study, preset, list(overrides)
        self.executor = executor or InProcess()
        self.outputs: dict[str, Ref] = {}
        self.flow_run_id = self.owner = ""
        self.code = git_info()
        self.packages = package_versions()
        self.steps: list[StepResult] = []
        self.console = console
        self.events: EventLog | None = None
        self.t_body = 0.0
        self.deployment_id: str | None = None  # a scheduled run: the Prefect deployment that started it
        self.retries = 0  # attempts after a failed task, at least (a step may ask for more)
        self.as_task = as_task

    # -- lifecycle -----------------------------------------------------------------------------
    def begin(self, flow_run_id: str, config: Any) -> None:
        self.t_body = time.perf_counter()
        self.flow_run_id = flow_run_id
        self.owner = owner_id(flow_run_id)
        self.events = EventLog(self.catalog.lineage_dir, flow_run_id, self.catalog.root)
        self.catalog.index.put_run(flow_run_id, study=self.study, preset=self.preset, overrides=self.overrides,
                                   started=now_iso(), status="RUNNING")
        self._emit_flow("START", config)

    def run_body(self, body: Callable[..., Mapping[str, Ref]], config: Any, flow_run_id: str) -> dict[str, Ref]:
        """The study's outputs: its flow body run as flow run ``flow_run_id`` of this run (its steps in this run
        context: the caller made it current), with the flow's lineage events and index row."""
        self.begin(flow_run_id, config)
        try:
            with kept_interrupts():  # a signal whose exception a finalizer dropped still stops the run
                outputs = dict(body(config))
        except BaseException as exc:
            self.end("FAIL", str(exc))
            raise
        self.end("COMPLETE")
        self.outputs = outputs
        return outputs

    def end(self, status: str, error: str | None = None) -> None:
        self.catalog.index.put_run(self.flow_run_id, finished=now_iso(), status=status)
        self._emit_flow(status, None, error)

    def _emit_flow(self, state: str, config: Any, error: str | None = None) -> None:
        doc = {"level": "flow", "flow_run_id": self.flow_run_id, "study": self.study, "preset": self.preset,
               "overrides": self.overrides, "code": self.code, "packages": self.packages}
        if self.deployment_id:
            doc["deployment_id"] = self.deployment_id
        if config is not None:
            doc["config"] = config.model_dump(mode="json") if hasattr(config, "model_dump") else dict(config)
        self.events.emit(state, job=self.study, run_id=self.flow_run_id, strata=doc, error=error)

    # -- steps ---------------------------------------------------------------------------------
    def call_step(self, step: Step, inputs: Sequence[Ref], params: Mapping[str, Any], pieces: Pieces | None,
                  label: str | None) -> Ref:
        """Reuse or compute ``step`` (the run context's answer to a step call)."""
        return execute(self, step, inputs, params, pieces, label)

    def emit(self, state: str, step: str, run_id: str, inputs: Sequence[Ref], uri: str,
             lineage: Mapping[str, Any], error: str | None = None) -> None:
        """One OpenLineage event of a step (job ``<study>.<step>``, parent = the flow run)."""
        doc = {"level": "step", "flow_run_id": self.flow_run_id, "key": lineage["key"], "params": lineage["params"],
               "code": lineage["code"], "packages": self.packages}
        self.events.emit(state, job=f"{self.study}.{step}", run_id=run_id, parent=(self.study, self.flow_run_id),
                         inputs=[r.uri for r in inputs], outputs=[uri], strata=doc, error=error)

    def record(self, step: str, ref: Ref, status: str, seconds: float, label: str | None) -> None:
        res = StepResult(step, label, ref.key, ref.kind, status, seconds)
        self.steps.append(res)
        if self.console is not None:
            tag = "[green]computed[/]" if status == "computed" else "[dim]reused[/]"
            self.console.print(f"  {step:<16} {label or '':<28} {ref.key[:12]}  {tag}  {seconds:6.2f} s")

    def show_warnings(self, warned: Iterable[tuple[type[Warning], str]] | None) -> None:
        """Re-raise here the warnings a piece collected (wherever it ran): the CLI shows each once."""
        for category, message in warned or ():
            warnings.warn(message, category, stacklevel=2)

    @contextmanager
    def status(self, text: str) -> Iterator[None]:
        """A spinner on an interactive stderr while a step computes."""
        if self.console is None or not self.console.is_terminal:
            yield
            return
        with self.console.status(f"  {text.strip()} …"):
            yield

    @contextmanager
    def progress(self, description: str, total: int, done: int) -> Iterator[Callable[..., None]]:
        """Progress of a mapped step (pieces done / total): a bar on an interactive stderr, and a Prefect
        progress artifact of the step's task run (updated at most once a second, and at the end)."""
        artifact = ProgressArtifact(description, total, done)
        if self.console is None or total <= 1 or not self.console.is_terminal:
            yield artifact.advance
            artifact.close()
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=self.console, transient=True) as prog:
            tid = prog.add_task(description, total=total, completed=done)

            def advance(n: int = 1) -> None:
                prog.advance(tid, n)
                artifact.advance(n)

            yield advance
        artifact.close()


def _claims_markdown(run: StudyRun) -> list[str]:
    """The run's claims (output ``claims``) as a markdown table, or nothing."""
    if "claims" not in run.outputs:
        return []
    from tasks.claims import rows, summary_line

    with run.catalog.open(run.outputs["claims"].key, dask=False) as ds:
        ds = ds.load()

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"**{summary_line(ds)}**", "", "| claim | value ± SE | comparison | verdict | paper | statement |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {cell(r['id'])} | {cell(r['value'])} | {cell(r['comparison'])} | {r['verdict']} | "
              f"{cell(r['paper'] or '—')} | {cell(r['statement'])} |" for r in rows(ds)]
    return [*lines, ""]


def report_markdown(run: StudyRun, report: str) -> str:
    """The run's summary as markdown: its claims, if the study checks a paper's, its steps (computed or reused,
    seconds) and where its report is."""
    lines = [f"# {run.study} (preset {run.preset or '-'})", "", f"Report: [{report}](file://{report})", "",
             *_claims_markdown(run), "| step | label | key | status | seconds |", "|---|---|---|---|---|"]
    lines += [f"| {s.step} | {s.label or ''} | `{s.key[:12]}` | {s.status} | {s.seconds:.2f} |" for s in run.steps]
    return "\n".join(lines)


def study_flow(name: str) -> Callable[[Callable[..., Mapping[str, Ref]]], Any]:
    """Decorate ``body(config) -> {output name: Ref}`` into the study's Prefect flow; ``config`` is
    the study's frozen config model (attribute access)."""

    def deco(body: Callable[..., Mapping[str, Ref]]):
        from prefect import flow
        from prefect.runtime import flow_run

        @flow(name=name, validate_parameters=False, persist_result=False, log_prints=False)
        def _flow(config: Any) -> dict[str, str]:
            run = current_run()
            if not isinstance(run, StudyRun):
                raise RunError(f"the Prefect flow of study {name} runs inside run_study (a study run)")
            outputs = run_body(run, body, config, str(flow_run.id))
            return {k: r.key for k, r in outputs.items()}

        _flow.body = body
        return _flow

    return deco


def run_body(run: StudyRun, body: Callable[..., Mapping[str, Ref]], config: Any, flow_run_id: str) -> dict[str, Ref]:
    """Run a study's flow body as flow run ``flow_run_id`` of ``run`` (inside a Prefect flow run)."""
    outputs = run.run_body(body, config, flow_run_id)
    try:  # the summary as a markdown artifact of the flow run, linking the HTML report written next
        from prefect.artifacts import create_markdown_artifact

        report = run.catalog.storage.cache_dir() / "reports" / flow_run_id / "index.html"
        create_markdown_artifact(report_markdown(run, str(report)), key=_artifact_key(run.study),
                                 description=f"strata run of {run.study}")
    except Exception:  # pragma: no cover - a report link must never fail a finished run
        pass
    return outputs


def _artifact_key(study: str) -> str:
    """Prefect artifact keys are lowercase letters, digits and dashes."""
    return "strata-" + "".join(c if c.isalnum() else "-" for c in study.lower())


def run_study(study_flow_obj: Any, config: Any, *, catalog: Catalog, study: str,
              preset: str | None, overrides: Sequence[str], workers: int | None = None,
              address: str | None = None, ephemeral: bool = False, console: Any = None,
              t_start: float | None = None, batch: Any = None,
              threads: int | None = None, retries: int = 0, flow_run_id: str | None = None,
              deployment_id: str | None = None) -> RunResult:
    """Run one study as one flow run on the chosen runner (see :class:`~flows.runtime.Runtime`); returns
    outputs, steps and timings. ``flow_run_id``: the flow run the body runs in, already started (a scheduled
    run's, of the deployment ``deployment_id``: :mod:`flows.schedule`); default: a flow run of its own."""
    t0 = t_start if t_start is not None else time.perf_counter()
    say = None if console is None else lambda text: console.print(text, markup=False, highlight=False, soft_wrap=True)
    with Runtime(prefect_home(catalog), workers, address, ephemeral, batch, threads, say) as rt:
        run = StudyRun(catalog, study, preset, overrides, console, rt.executor)
        run.retries, run.deployment_id = retries, deployment_id
        rt.log_dir = lambda: catalog.storage.cache_dir() / "logs" / (run.flow_run_id or "run")  # a batch cluster's
        with active(run):
            try:
                if flow_run_id is None:
                    study_flow_obj.with_options(task_runner=rt.task_runner())(config=config, return_state=False)
                else:
                    run_body(run, study_flow_obj.body, config, flow_run_id)
            except Exception as exc:
                fatal = getattr(rt.executor, "fatal", None)
                if fatal is not None:  # the cluster cannot serve the run (a refused job, no worker): its own line
                    raise fatal from None
                if hasattr(exc, "exit_code"):
                    raise
                raise RunError(f"study {study} failed: {exc}") from exc
        t_end_body = time.perf_counter()
    t_done = time.perf_counter()
    timings = {
        "prefect_startup_s": round(run.t_body - t0, 3),
        "steps_s": round(t_end_body - run.t_body, 3),
        "shutdown_s": round(t_done - t_end_body, 3),
        "server_s": round(rt.server_seconds, 3),
        "cluster_s": round(rt.cluster_seconds, 3),
    }
    return RunResult(study, preset, run.flow_run_id, run.outputs, run.steps, timings)


def run_local(study_flow_obj: Any, config: Any, catalog: Catalog, *, study: str, preset: str | None = None,
              overrides: Sequence[str] = (), executor: Executor | None = None, retries: int = 0,
              console: Any = None) -> RunResult:
    """Run one study in this process with the whole step runtime (keys, reuse, zarr, lineage, the catalog's index,
    pieces, resume) and no Prefect: no flow run, no server; each step's work runs inline on ``executor`` (default
    :class:`~flows.executors.InProcess`) with this process's threads. Its lineage and index name a flow run id of
    its own. For tests and notebooks; ``strata run`` is :func:`run_study`."""
    run = StudyRun(catalog, study, preset, overrides, console, executor, as_task=inline)
    run.retries = retries
    with active(run):
        run.run_body(study_flow_obj.body, config, str(uuid.uuid4()))
    return RunResult(study, preset, run.flow_run_id, run.outputs, run.steps,
                     {"steps_s": round(time.perf_counter() - run.t_body, 3)})
