"""End-to-end study runs through the CLI on the session's shared Prefect server, and in process
(:func:`flows.study.run_local`) where only the datasets are checked."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_catalog import Catalog

from ..conftest import REPO, Strata, fingerprints, group_alive, region_markers

pytestmark = pytest.mark.prefect

SMALL = ["--set", "generations=2", "--set", "chains=40", "--set", "pieces.per_piece=10",
         "--set", "loops=[fully_synthetic, fresh_data]"]
SMALL_SETS = SMALL[1::2]  # as local_run takes them


@pytest.fixture(scope="module")
def reference(tmp_path_factory, prefect_server):
    """One uninterrupted serial run (rerun, kill/resume and --workers 2 of every study: test_study_contract)."""
    s = Strata(tmp_path_factory.mktemp("ref") / "root", prefect_server)
    return s, s.json("run", "mad_gaussian", *SMALL)


def test_run_document_report_and_timings(reference):
    s, first = reference
    assert set(first) == {"study", "preset", "flow_run_id", "seconds", "outputs", "computed", "reused", "report",
                          "claims"}
    assert first["study"] == "mad_gaussian" and first["preset"] == "small"
    assert first["claims"].startswith("claims: ") and " of 7 hold" in first["claims"]
    assert len(first["computed"]) == 9 and first["reused"] == []  # 8 steps, then the claims
    assert Path(first["report"]).is_file() and (Path(first["report"]).parent / "curves.png").is_file()
    run = json.loads((Path(first["report"]).parent / "run.json").read_text())
    assert run["timings"]["prefect_startup_s"] > 0 and run["timings"]["steps_s"] > 0


def test_show_lineage_stale_reproduce(reference):
    s, first = reference
    curves = first["outputs"]["curves"]
    show = s.json("catalog", "show", curves[:8])
    assert set(show) == {"key", "kind", "step", "version", "uri", "created", "params", "inputs", "run_id",
                         "flow_run_id", "code", "fingerprint", "complete", "variables"}
    assert show["kind"] == "mad_gaussian_curves" and show["complete"] and len(show["inputs"]) == 6
    assert set(show["code"]) >= {"git_sha", "dirty", "source_hash"}
    assert show["created"].endswith("+00:00")
    up = s.json("catalog", "lineage", curves)
    steps = {n["step"] for n in up["nodes"]}
    assert steps == {"curves", "generation", "real_samples"}
    real = next(n for n in up["nodes"] if n["step"] == "real_samples")
    assert real["params"]["n"] == 20 and real["code"]["source_hash"]
    # generation t links to t-1 and to the real set
    gens = {n["key"]: n for n in up["nodes"] if n["step"] == "generation"}
    for e in up["edges"]:
        if e["to"] in gens and e["from"] in gens:
            assert gens[e["to"]]["params"]["generation"] == gens[e["from"]]["params"]["generation"] + 1
    down = s.json("catalog", "lineage", real["key"], "--downstream", "--depth", "1")
    assert down["direction"] == "down" and curves not in {n["key"] for n in down["nodes"]}
    assert len({n["key"] for n in down["nodes"]}) == 1 + 2 * 3  # itself + every generation (each reads the real set)
    dot = s("catalog", "lineage", curves, "--dot").stdout
    assert dot.startswith("digraph lineage") and "->" in dot
    assert s("catalog", "stale", curves).returncode == 0
    rep = s("catalog", "reproduce", curves).stdout
    assert "strata run mad_gaussian --preset small --set generations=2" in rep
    png = s.root.parent / "curves.png"
    assert s("plot", curves, "-o", str(png)).returncode == 0 and png.stat().st_size > 10_000


def test_verify_finds_a_flipped_byte(reference, tmp_path):
    import shutil

    s0, first = reference
    root = tmp_path / "copy"
    shutil.copytree(s0.root, root)
    s = Strata(root, None)
    s("catalog", "reindex")  # uris point at the copied root now
    assert s("catalog", "verify").returncode == 0
    key = first["outputs"]["last_fresh_data"]
    chunk = next(p for p in sorted((root / "datasets" / "mad_gaussian_generation" / f"{key}.zarr" / "cov").rglob("*"))
                 if p.is_file() and p.name != "zarr.json")
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x01
    chunk.write_bytes(bytes(data))
    proc = s("catalog", "verify", check=False)
    assert proc.returncode == 1
    assert key in proc.stdout and proc.stderr.strip().splitlines()[-1].startswith("error: 1 dataset(s) failed")


def test_failed_piece_exits_1_with_one_line_and_resumes(tmp_path, prefect_server):
    s = Strata(tmp_path / "root", prefect_server)
    proc = s("run", "mad_gaussian", *SMALL, fault="real_samples:1:raise", check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: step real_samples: 1 of 4 pieces not written") and "injected fault" in last
    assert "(first: chains " in last and ", piece 1:" in last  # the piece by its chains and its index
    before = region_markers(s.root, "mad_gaussian_real")
    assert len(before) == 3
    assert s("run", "mad_gaussian", *SMALL).returncode == 0
    after = region_markers(s.root, "mad_gaussian_real")
    assert len(after) == 4 and all(after[k] == v for k, v in before.items())


def test_a_transient_failure_is_retried_when_asked(tmp_path, prefect_server, local_run):
    """A piece that fails once (injected, on a Dask worker): without --retries the run fails; with --retries 1
    it succeeds, with the keys and fingerprints of a clean run."""
    workers = ["--workers", "2"]
    s = Strata(tmp_path / "root", prefect_server)
    state = tmp_path / "fault-state"
    state.mkdir()
    s.env["STRATA_FAULT_STATE"] = str(state)
    failed = s("run", "mad_gaussian", *SMALL, *workers, fault="real_samples:2:flaky", check=False)
    assert failed.returncode == 1 and "injected transient fault" in failed.stderr.strip().splitlines()[-1]
    (state / "real_samples-2").unlink()  # the fault is armed again
    out = json.loads(s("run", "mad_gaussian", *SMALL, *workers, "--retries", "1", "--json",
                       fault="real_samples:2:flaky").stdout)
    assert (state / "real_samples-2").exists()  # it did fail once
    clean_run = local_run("mad_gaussian", *SMALL_SETS, root=tmp_path / "clean")  # in process
    clean = clean_run.output_keys
    assert out["outputs"] == clean
    assert fingerprints(s.root, out["outputs"].values()) == fingerprints(tmp_path / "clean", clean.values())


def test_a_failed_first_wave_stops_the_step_naming_the_piece(tmp_path, prefect_server):
    s = Strata(tmp_path / "root", prefect_server)
    proc = s("run", "mad_gaussian", *SMALL, "--workers", "1", fault="real_samples:0:raise", check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: step real_samples: 4 of 4 pieces not written (first: chains 0–"), last
    assert ", piece 0: injected fault at real_samples:0" in last
    assert region_markers(s.root, "mad_gaussian_real") == {}


def _assert_same_as_reference(root: Path, out: dict, reference) -> None:
    """Same output keys as the reference run, and the same bytes (fingerprints)."""
    ref, first = reference
    assert out["outputs"] == first["outputs"]
    assert fingerprints(root, out["outputs"].values()) == fingerprints(ref.root, first["outputs"].values())


def test_one_worker_gives_the_same_bytes(reference, tmp_path, local_run):
    """One worker thread: the next chunk is queued behind the layout's (--workers 2: test_study_contract). In
    process, on the LocalCluster ``--workers 1`` starts."""
    run = local_run("mad_gaussian", *SMALL_SETS, workers=1)
    _assert_same_as_reference(tmp_path / "root", {"outputs": run.output_keys}, reference)


def test_killed_parallel_run_stops_its_cluster(tmp_path, stop_root_servers):
    """No PREFECT_API_URL: strata starts (or finds) the root's server and a LocalCluster; a kill takes
    the cluster and every other child of the run (the root's server stays, in its own session)."""
    s = Strata(tmp_path / "root", None)
    stop_root_servers(s.root)
    env = {**s.env, "STRATA_FAULT": "generation:1:kill"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", "mad_gaussian", *SMALL, "--workers", "2"],
                            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err[-2000:]
    time.sleep(1.0)
    assert group_alive(proc.pid) == []
    cat = Catalog(s.root)
    assert [r.step for r in cat.list()] == ["real_samples"]
    cat.close()


def test_sigterm_stops_the_run_and_its_children(tmp_path, stop_root_servers):
    """A scheduler's SIGTERM to strata alone: it stops its cluster, then exits."""
    s = Strata(tmp_path / "root", None)
    stop_root_servers(s.root)
    env = dict(s.env)
    env.pop("PREFECT_API_URL", None)
    long_run = [*SMALL, "--set", "generations=30"]  # still running when the signal comes
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", "mad_gaussian", *long_run, "--workers", "2"],
                            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 240
    while not list((s.root / "datasets").glob("mad_gaussian_generation/*.zarr")) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    # Prefect turns SIGTERM inside a flow into a failed run (exit 1); outside one it is an interrupt (130)
    assert proc.returncode in (1, 130), err.decode()[-2000:]
    assert err.decode().strip().splitlines()[-1].startswith("error: ")
    time.sleep(1.0)
    assert group_alive(proc.pid) == []


def test_several_pieces_per_task_give_the_same_datasets(reference, tmp_path, local_run):
    """pieces.per_task is a runtime choice: same keys, same bytes, still one marker per chunk (run in process)."""
    ref, first = reference
    out = local_run("mad_gaussian", *SMALL_SETS, "pieces.per_task=3")
    _assert_same_as_reference(tmp_path / "root", {"outputs": out.output_keys}, reference)
    assert len(region_markers(tmp_path / "root", "mad_gaussian_real")) == 4


@pytest.mark.parametrize("mode", ["--ephemeral", "root-server"])
def test_a_finished_run_leaves_no_process_of_its_own(tmp_path, stop_root_servers, mode):
    """After a run exits (fast, with os._exit, when its Prefect server outlives it), nothing of its
    process group is left: no ephemeral Prefect server, no cluster. The root's server lives in its
    own session and is stopped at teardown."""
    s = Strata(tmp_path / "root", None)
    stop_root_servers(s.root)
    env = {k: v for k, v in s.env.items() if k not in ("PREFECT_API_URL", "STRATA_EPHEMERAL")}
    flags = ["--ephemeral"] if mode == "--ephemeral" else []
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", "mad_gaussian", "--preset", "tiny", *flags,
                             "--workers", "1", "--json"], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    out, err = proc.communicate(timeout=150)  # would hang if a child kept the pipes open
    assert proc.returncode == 0, err.decode()[-2000:]
    assert json.loads(out)["computed"]
    time.sleep(1.0)
    assert group_alive(proc.pid) == []
