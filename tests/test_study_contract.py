"""The study contract: every registered study, run on its ``tiny`` preset (its reference run and the run that is
killed through the CLI; the reruns and the 2-worker run in process, on the whole step runtime), must

1. compute nothing when rerun (same output keys);
2. resume a run SIGKILLed at a random piece of a mapped step to the same bytes as an
   uninterrupted run, without redoing the regions finished before the kill;
3. give the same bytes with ``--workers 2`` as serially;
4. write outputs that open with xarray, numeric variables all finite (checkpoints: they load) — except where a
   variable's attr ``nan_meaning`` says what NaN stands for (an unmeasured claim);
5. record lineage that leads from every output up to the study's first steps (no inputs).

A study gets these checks by being registered (a module and a YAML in ``studies/``) and giving its YAML
a ``tiny`` preset (seconds of work, every step run). Nothing here is specific to one study: mapped
steps and their piece counts are read from the reference run's catalog (datasets with region
markers); the fault to inject is drawn from them by a ``random.Random`` seeded by the study's name
(and ``$STRATA_CONTRACT_SEED``, default 0: set it to try other pieces). Each study's uninterrupted
reference run is done once (module-scoped fixture) and compared against.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

import studies
from data_catalog import COMPLETE_ATTR, LINEAGE_ATTR, Catalog, Record
from pipelines.registry import STUDIES
from studies import study_file

from .conftest import REPO, Strata, fingerprints, group_alive, region_markers, run_in_process

pytestmark = pytest.mark.prefect

PRESET = "tiny"
CHECKPOINT_KIND = "checkpoint"


def _run_args(study: str, *extra: str) -> list[str]:
    return ["run", study, "--preset", PRESET, *extra]


@dataclass(frozen=True)
class Reference:
    """One uninterrupted serial run of a study on its own root."""

    study: str
    strata: Strata
    out: dict                      # the run's --json document
    stderr: str
    records: dict[str, Record]     # every dataset of the run, by key
    pieces: dict[str, int]         # mapped datasets: key -> number of regions

    @property
    def root(self) -> Path:
        return self.strata.root

    def first_steps(self) -> set[str]:
        """Keys of the datasets of the steps that have no inputs."""
        return {k for k, r in self.records.items() if not r.inputs}


def _markers(root: Path) -> dict[str, int]:
    """{marker path: mtime_ns} of every region marker under a root (all kinds)."""
    kinds = (root / "datasets").iterdir() if (root / "datasets").is_dir() else ()
    return {p: t for k in kinds for p, t in region_markers(root, k.name).items()}


def _regions_by_key(markers) -> dict[str, set[int]]:
    """Marker paths (``datasets/<kind>/<key>.zarr/.strata/regions/<i>``) -> {key: {i, ...}}."""
    out: dict[str, set[int]] = {}
    for p in markers:
        parts = Path(p).parts
        out.setdefault(parts[2].removesuffix(".zarr"), set()).add(int(parts[-1]))
    return out


# a study that only the tests register (tests/example_study: what adding a study takes), run like the others
EXAMPLE = ("tests.example_study", "example_walk")


@pytest.fixture(scope="module", params=[*sorted(STUDIES), EXAMPLE[1]])
def study(request) -> Iterator[str]:
    name = request.param
    with pytest.MonkeyPatch.context() as mp:
        if name == EXAMPLE[1]:  # registered through the environment, for this study's tests (and their CLI runs)
            mp.setenv(studies.ENV, EXAMPLE[0])
        yield _checked(name)


def _checked(name: str) -> str:
    path = study_file(name)
    doc = (yaml.safe_load(path.read_text()) if path.is_file() else None) or {}
    if PRESET not in (doc.get("presets") or {}):
        pytest.fail(f"registered study {name!r} has no {PRESET!r} preset in {path}: the study contract suite "
                    f"runs every study on it (seconds of work, every step run)", pytrace=False)
    return name


@pytest.fixture(scope="module")
def reference(study, tiny_run) -> Reference:
    """The study's uninterrupted serial run, once per study and session (shared with study-specific
    tests); its root is only read afterwards, or rerun with everything reused."""
    s, proc = tiny_run(study)
    out = json.loads(proc.stdout)
    cat = Catalog(s.root)
    try:
        records = {r.key: r for r in cat.list()}
    finally:
        cat.close()
    pieces = {k: len(v) for k, v in _regions_by_key(_markers(s.root)).items()}
    return Reference(study, s, out, proc.stderr, records, pieces)


def _same_as_reference(root: Path, out: dict, ref: Reference) -> None:
    """Same output keys, every dataset of the reference run present with the same bytes, and the
    same regions."""
    assert out["outputs"] == ref.out["outputs"]
    assert fingerprints(root, ref.records) == {k: r.fingerprint for k, r in ref.records.items()}
    assert set(_markers(root)) == set(_markers(ref.root))


def _in_process(study: str, root: Path, workers: int | None = None) -> dict:
    """A run of the study's tiny preset in this process (``run_in_process``: the whole step runtime, no CLI, no
    Prefect; ``workers``: on a LocalCluster, as ``--workers``), as the parts of ``strata run --json`` checked here."""
    result = run_in_process(study, root=root, preset=PRESET, workers=workers)
    return {"outputs": result.output_keys, "computed": result.computed, "reused": result.reused}


# -- 0. the reference run itself -------------------------------------------------------------------------
def test_tiny_run_computes_every_step_without_warnings(reference):
    out = reference.out
    assert out["study"] == reference.study and out["preset"] == PRESET
    assert out["reused"] == [] and sorted(out["computed"]) == sorted(reference.records)
    assert set(out["outputs"].values()) <= set(reference.records)
    # a tiny preset is still valid physics: no dispersion (or other) warning
    warned = [line for line in reference.stderr.splitlines() if line.startswith("warning:")]
    assert warned == [], f"the {PRESET} preset of {reference.study} warns: {warned}"


# -- 1. rerun ----------------------------------------------------------------------------------------------
def test_rerun_computes_nothing(reference):
    """In process on the reference root (a cached rerun through the CLI: tests/flows/test_server.py)."""
    again = _in_process(reference.study, reference.root)
    assert again["computed"] == []
    assert sorted(again["reused"]) == sorted(reference.out["computed"])
    assert again["outputs"] == reference.out["outputs"]


# -- 2. kill -> resume -------------------------------------------------------------------------------------
def _draw_fault(ref: Reference) -> tuple[str, int]:
    """(step, piece): a mapped step of the study and a piece index one of its datasets has, drawn
    reproducibly per study (``STRATA_CONTRACT_SEED`` draws others). Not piece 0 when there are more:
    its kill comes before the dataset is laid out, which a kill between steps already covers."""
    by_step: dict[str, int] = {}
    for key, n in ref.pieces.items():
        step = ref.records[key].step
        by_step[step] = max(by_step.get(step, 0), n)
    if not by_step:
        pytest.skip(f"{ref.study} has no mapped step")
    rng = random.Random(f"study-contract:{ref.study}:{os.environ.get('STRATA_CONTRACT_SEED', '0')}")
    step = rng.choice(sorted(by_step))
    return step, rng.randrange(1, by_step[step]) if by_step[step] > 1 else 0


def test_kill_at_a_random_piece_then_resume_gives_the_same_bytes(reference, tmp_path, prefect_server):
    step, piece = _draw_fault(reference)
    fault = f"{step}:{piece}:kill"
    s = Strata(tmp_path / "root", prefect_server)
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", *_run_args(reference.study, "--json")],
                            env={**s.env, "STRATA_FAULT": fault}, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, f"STRATA_FAULT={fault}: exit {proc.returncode}\n{err.decode()[-2000:]}"
    deadline = time.monotonic() + 10
    while group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert group_alive(proc.pid) == [], f"STRATA_FAULT={fault}: processes outlived the kill"

    # nothing half-written is visible: what the catalog lists is complete, verifies and is the reference's
    cat = Catalog(s.root)
    try:
        complete = {r.key: r for r in cat.list()}
        in_flight = [r for r in cat.index.list(complete_only=False) if not r.complete]
        assert all(ok for _, ok, _ in cat.verify()), f"STRATA_FAULT={fault}"
        marked = {g.stem for g in (s.root / "datasets").rglob("*.zarr") if cat.storage.is_complete(str(g))}
    finally:
        cat.close()
    assert set(complete) <= set(reference.records), f"STRATA_FAULT={fault}: datasets the reference run has not"
    assert {k: r.fingerprint for k, r in complete.items()} == {k: reference.records[k].fingerprint for k in complete}
    assert marked == set(complete)
    # the killed step's dataset is the one in flight, with exactly the regions before the killed piece
    assert [r.step for r in in_flight] == [step], f"STRATA_FAULT={fault}: in flight {in_flight}"
    before = _markers(s.root)
    partial = {k: v for k, v in _regions_by_key(before).items() if k not in complete}
    assert partial == ({in_flight[0].key: set(range(piece))} if piece else {}), f"STRATA_FAULT={fault}"

    # the rerun, in process on a LocalCluster of 2 (its workers never train multi-threaded: Devito's bits are the CLI's)
    again = _in_process(reference.study, s.root, workers=2)
    assert sorted(again["reused"]) == sorted(complete), f"STRATA_FAULT={fault}"
    assert sorted(again["computed"]) == sorted(set(reference.records) - set(complete)), f"STRATA_FAULT={fault}"
    _same_as_reference(s.root, again, reference)
    after = _markers(s.root)
    assert {p: after[p] for p in before} == before, f"STRATA_FAULT={fault}: finished regions were redone"
    cat = Catalog(s.root)
    try:  # the stored bytes hash to the recorded fingerprints
        assert all(ok for _, ok, _ in cat.verify()), f"STRATA_FAULT={fault}: the resumed root does not verify"
    finally:
        cat.close()


# -- 3. workers --------------------------------------------------------------------------------------------
def test_two_workers_give_the_same_bytes_as_serial(reference, tmp_path):
    """On a LocalCluster of 2 processes as ``--workers 2`` starts them (the test process's, shared by its runs on
    workers: ``conftest.shared_cluster``), from this process (the CLI's ``--workers``: tests/flows/test_study_runs.py,
    test_faults.py)."""
    out = _in_process(reference.study, tmp_path / "root", workers=2)
    assert sorted(out["computed"]) == sorted(reference.out["computed"]) and out["reused"] == []
    _same_as_reference(tmp_path / "root", out, reference)


# -- 4. outputs open and are finite ------------------------------------------------------------------------
def test_every_dataset_opens_and_is_finite(reference):
    """Every dataset of the run (the outputs and what they were made from)."""
    cat = Catalog(reference.root)
    try:
        for key, rec in reference.records.items():
            with cat.open(key) as ds:
                assert ds.attrs.get(COMPLETE_ATTR) is True and ds.attrs[LINEAGE_ATTR]["key"] == key
                assert ds.variables, f"{rec.step} {key}: no variables"
                for name, var in ds.variables.items():
                    if var.dtype.kind in "fc" and "nan_meaning" not in var.attrs:  # NaN that says something
                        assert np.isfinite(var.values).all(), f"{rec.step} {key}: {name} is not finite"
    finally:
        cat.close()


def test_checkpoints_load(reference):
    """A trained network builds again from its checkpoint dataset (registered class, every tensor)."""
    keys = [k for k, r in reference.records.items() if r.kind == CHECKPOINT_KIND]
    if not keys:
        pytest.skip(f"{reference.study} writes no {CHECKPOINT_KIND}")
    from tasks.nn.checkpoint import from_dataset
    from tasks.nn.layout import MEMBERS_ATTR

    cat = Catalog(reference.root)
    try:
        for key in keys:
            with cat.open(key) as ds:
                ds = ds.load()
            dim = ds.attrs.get(MEMBERS_ATTR)  # a checkpoint of several models (e.g. one per chain)
            for member in [None] if dim is None else ds[dim].values.tolist():
                trained = from_dataset(ds, member=member)
                assert len(trained.module.state_dict()) == len(ds.data_vars), f"checkpoint {key} {member}"
    finally:
        cat.close()


# -- 5. lineage --------------------------------------------------------------------------------------------
def test_lineage_of_every_output_reaches_the_first_steps(reference):
    first = reference.first_steps()
    assert first, f"{reference.study}: no step without inputs"
    reached: set[str] = set()
    cat = Catalog(reference.root)  # what `strata catalog lineage KEY --json` prints (its CLI: test_study_runs)
    try:
        docs = {name: cat.lineage(key, "up") for name, key in reference.out["outputs"].items()}
    finally:
        cat.close()
    for name, doc in docs.items():
        nodes = {n["key"]: n for n in doc["nodes"]}
        parents: dict[str, set[str]] = {k: set() for k in nodes}
        for e in doc["edges"]:
            parents[e["to"]].add(e["from"])
        assert set(nodes) <= set(reference.records), f"output {name}: lineage names datasets not in the run"
        for k, n in nodes.items():  # the walk is whole: each dataset's parents are exactly its inputs
            assert n["step"] == reference.records[k].step
            assert parents[k] == set(reference.records[k].inputs), f"output {name}: {n['step']} {k}"
        roots = {k for k, p in parents.items() if not p}
        assert roots and roots <= first, f"output {name}: lineage stops at {roots - first}"
        reached |= roots
    assert reached == first, f"{reference.study}: no output comes from {first - reached}"
