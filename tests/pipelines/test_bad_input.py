"""The bad-input battery (issue 17): every case is exit 2 (1 for a run that failed), exactly one ``error:`` line
on stderr that says what and where, no traceback, and — for errors caught before any work — a data root left
exactly as it was (its index rows and the files under ``datasets/``, with sizes and mtimes).

Most cases run in process through ``pipelines.cli.main`` (what the console script calls: the same parser, the
same exception → exit code mapping); ``test_end_to_end`` repeats a few in a subprocess to prove the console
path (exit code, one line, no traceback) end to end. docs/troubleshooting.md lists every case with
the message it gives.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from data_catalog import Catalog, make_key
from pipelines.cli import main


# -- inputs --------------------------------------------------------------------------------------------------
def _shot_records(data: np.ndarray) -> xr.Dataset:
    nshot, nrec, nt = data.shape
    return xr.Dataset({"data": (("shot", "receiver", "time"), data.astype(np.float32))},
                      coords={"time": ("time", 0.004 * np.arange(nt), {"units": "s"}),
                              "src_x": ("shot", 100.0 * np.arange(nshot), {"units": "m"}),
                              "rec_x": (("shot", "receiver"), np.tile(10.0 * np.arange(nrec), (nshot, 1)),
                                        {"units": "m"})})


def _study_file(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> SimpleNamespace:
    """Every bad file of the battery, and a data root holding one ``shot_records`` dataset."""
    from tasks.seismic.segy import write_segy

    d = tmp_path_factory.mktemp("bad-inputs")
    f = SimpleNamespace(dir=d)
    # SEG-Y: one good file, then the same truncated, with headers only, with bytes too many, not SEG-Y, a folder
    good = d / "good.sgy"
    write_segy(_shot_records(np.ones((2, 3, 50))), good)
    raw = good.read_bytes()
    f.segy_truncated = d / "truncated.sgy"
    f.segy_truncated.write_bytes(raw[:-100])
    f.segy_empty = d / "empty.sgy"
    f.segy_empty.write_bytes(raw[:3600])
    f.segy_sizes = d / "sizes.sgy"
    f.segy_sizes.write_bytes(raw + b"\0" * 100)
    f.segy_text = d / "notes.sgy"
    f.segy_text.write_text("these are field notes, not seismic data\n" * 200)
    f.segy_dir = d / "folder.sgy"
    f.segy_dir.mkdir()
    # velocity models (x, z), m/s, given to seismic_survey as model.file.path
    vp = np.full((61, 41), 2000.0)
    for name, change in (("nan", np.nan), ("inf", np.inf), ("negative", -1500.0), ("zero", 0.0)):
        bad = vp.copy()
        bad[30, 20] = change
        np.save(d / f"vp_{name}.npy", bad)
    np.save(d / "vp_1d.npy", vp[:, 0])
    np.save(d / "vp_small.npy", vp[:5, :5])
    np.save(d / "vp_3d.npy", np.full((61, 3, 41), 2000.0))
    np.save(d / "vp_strings.npy", np.full((61, 41), "fast"))
    (d / "vp_folder.npy").mkdir()
    (d / "vp_empty.zarr").mkdir()
    np.save(d / "vp_object.npy", np.array([{"vp": 1}], dtype=object), allow_pickle=True)
    (d / "vp_garbage.npy").write_bytes(b"not an npy file at all" * 10)
    (d / "vp_text.txt").write_text("2000 2000\n2000 2000\n")
    write_segy(_shot_records(-np.ones((1, 61, 41))), d / "vp_segy.sgy")
    f.model = {p.stem.removeprefix("vp_"): str(p) for p in d.glob("vp*")}
    # study files
    f.yaml_syntax = _study_file(d, "syntax.yaml", "study: mad_gaussian\nconfig:\n  n: [1, 2\n")
    f.yaml_list = _study_file(d, "list.yaml", "- study: mad_gaussian\n")
    f.yaml_escape = _study_file(d, "escape.yaml", "study: ../../etc/passwd\nconfig: {}\n")
    f.yaml_unknown_key = _study_file(d, "extra.yaml", "study: mad_gaussian\nconfig: {}\noutput_dir: /tmp/x\n")
    f.yaml_python = _study_file(d, "python.yaml", "study: !!python/object/apply:os.system ['true']\n")
    # a data root with one dataset
    f.root = d / "root"
    cat = Catalog(f.root)
    key = make_key("records", "1", {}, [])
    cat.claim(key, "t", "shot_records", "records", "1")
    cat.write(key, "shot_records", _shot_records(np.ones((2, 3, 50))),
              {"step": "records", "version": "1", "params": {}, "inputs": [], "code": {}, "study": "battery"})
    cat.close()
    f.key = key
    f.file = d / "a-file"
    f.file.write_text("x")
    f.locked = d / "locked"
    f.locked.mkdir()
    f.locked.chmod(0o500)
    return f


def snapshot(root: Path) -> tuple:
    """The root as a user sees it: index rows, and every file under ``datasets/`` with size and mtime."""
    cat = Catalog(root)
    try:
        rows = sorted((r.key, r.kind, r.step, r.fingerprint, r.complete) for r in cat.list())
    finally:
        cat.close()
    tree = sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in (root / "datasets").rglob("*"))
    top = sorted(p.name for p in root.iterdir() if not p.name.startswith("catalog.db-"))  # SQLite's WAL files come
    return rows, tree, top                                                              # and go with connections


# -- the cases -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    id: str
    what: str          # the "case" column of docs/troubleshooting.md
    argv: object       # (files) -> the CLI's arguments (without --root); of a checkpoint case: the attrs edited
    says: str          # a part of the one error line
    code: int = 2


def _survey(*sets: str):
    return lambda f: ["run", "seismic_survey", "--preset", "tiny", *(a for s in sets for a in ("--set", s))]


def _model(name: str):
    return lambda f: ["run", "seismic_survey", "--preset", "tiny", "--set", f"model.file.path={f.model[name]}"]


CASES = [
    # command line
    Case("cli-command", "unknown command", lambda f: ["frobnicate"], "invalid choice: 'frobnicate'"),
    Case("cli-missing-arg", "run without a study", lambda f: ["run"], "the following arguments are required: study"),
    Case("cli-workers", "--workers 0", lambda f: ["run", "mad_gaussian", "--workers", "0"], "--workers must be ≥ 1"),
    Case("cli-retries", "--retries -1", lambda f: ["run", "mad_gaussian", "--retries", "-1"], "--retries must be ≥ 0"),
    Case("cli-port", "server start --port 70000", lambda f: ["server", "start", "--port", "70000"],
         "--port must be 1-65535"),
    # study files and overrides
    Case("study-unknown", "unknown study", lambda f: ["run", "no_such_study"], "unknown study 'no_such_study'"),
    Case("study-preset", "unknown preset", lambda f: ["run", "mad_gaussian", "--preset", "huge"],
         "unknown preset 'huge'"),
    Case("study-missing-file", "study file that does not exist",
         lambda f: ["run", str(f.dir / "nowhere.yaml")], "nowhere.yaml does not exist"),
    Case("study-syntax", "YAML syntax error", lambda f: ["run", f.yaml_syntax], "syntax.yaml: line 4, column 1: YAML"),
    Case("study-not-mapping", "study file that is a list", lambda f: ["run", f.yaml_list],
         "a study file is a mapping"),
    Case("study-top-key", "unknown top-level key", lambda f: ["run", f.yaml_unknown_key],
         "unknown top-level key(s) output_dir"),
    Case("study-python-tag", "a YAML tag that would run code", lambda f: ["run", f.yaml_python],
         "python.yaml: line 1, column 8: YAML tag not allowed"),
    Case("set-unknown-field", "--set of an unknown field", lambda f: ["run", "mad_gaussian", "--set", "colour=blue"],
         "--set colour=blue: field 'colour': unknown field"),
    Case("set-bad-value", "--set with a value of the wrong type", _survey("geometry.n_shots=many"),
         "--set geometry.n_shots=many: field 'geometry.n_shots': Input should be a valid integer"),
    # SEG-Y
    Case("segy-truncated", "truncated SEG-Y", lambda f: ["segy", "import", str(f.segy_truncated)],
         "truncated.sgy' is truncated or its size disagrees with its headers: 6140 bytes"),
    Case("segy-zero-traces", "SEG-Y with zero traces", lambda f: ["segy", "import", str(f.segy_empty)],
         "empty.sgy' has zero traces (3600 bytes: file headers only)"),
    Case("segy-sizes", "SEG-Y whose size disagrees with its headers",
         lambda f: ["segy", "import", str(f.segy_sizes)], "sizes.sgy' is truncated or its size disagrees with its "
         "headers: 6340 bytes, but 3600 + n × (240 + 4×50) is 6240 for n = 6"),
    Case("segy-not-segy", "a text file named .sgy", lambda f: ["segy", "import", str(f.segy_text)], "notes.sgy"),
    Case("segy-directory", "a directory named .sgy", lambda f: ["segy", "import", str(f.segy_dir)],
         "folder.sgy is a directory, not a SEG-Y file"),
    Case("segy-missing", "a SEG-Y file that does not exist",
         lambda f: ["segy", "import", str(f.dir / "gone.sgy")], "gone.sgy does not exist"),
    # arrays given as the velocity model
    Case("model-nan", "velocity model .npy with a NaN", _model("nan"), "1 NaN values (first at x=300 m, z=200 m)"),
    Case("model-inf", "velocity model .npy with an Inf", _model("inf"), "1 infinite values (first at x=300 m"),
    Case("model-negative", "velocity model .npy with a negative velocity", _model("negative"),
         "1 non-positive values (first at x=300 m, z=200 m)"),
    Case("model-zero", "velocity model .npy with a zero velocity", _model("zero"), "1 non-positive values"),
    Case("model-1d", "velocity model .npy of one dimension", _model("1d"), "must be 2D (x, z) or 3D (x, y, z)"),
    Case("model-shape", "velocity model too small for the survey", _model("small"), "is outside the model"),
    Case("model-3d", "3D velocity model given to a 2D study", _model("3d"),
         "circle center (300.0, 220.0) has 2 coordinates; the model has dims ('x', 'y', 'z')"),
    Case("model-strings", "velocity model .npy of strings", _model("strings"),
         "velocity model values must be real numbers, got dtype <U4"),
    Case("model-pickle", "velocity model .npy of Python objects", _model("object"),
         "vp_object.npy is not a numeric .npy array: Object arrays cannot be loaded when allow_pickle=False"),
    Case("model-garbage", "velocity model .npy that is not an array file", _model("garbage"),
         "vp_garbage.npy is not a .npy array file"),
    Case("model-folder", "velocity model .npy that is a directory", _model("folder"),
         "vp_folder.npy cannot be read: Is a directory"),
    Case("model-zarr", "velocity model .zarr that is not a zarr store", _model("empty"),
         "vp_empty.zarr is not a zarr store"),
    Case("model-format", "velocity model of an unknown format", _model("text"), "unknown format '.txt'"),
    Case("model-segy", "post-stack SEG-Y velocity model with negative values", _model("segy"),
         "non-positive values"),
    # configuration ranges
    Case("range-cfl", "time step above the CFL limit", _survey("geometry.dt=0.01"), "above the CFL limit"),
    Case("range-absorbing", "absorbing layer thinner than the stencil", _survey("simulation.nbl=2"),
         "simulation.nbl"),
    Case("range-shots", "more shots than fit in the model", _survey("geometry.n_shots=50"),
         "source 3 at x=700 m, z=20 m is outside the model"),
    Case("range-dispersion", "fewer points per wavelength than the stencil can carry", _survey("geometry.f0=60"),
         "points per wavelength"),
    Case("range-space-order", "odd space order", _survey("simulation.space_order=5"),
         "field 'simulation.space_order'"),
    # catalog keys and paths
    Case("key-malformed", "malformed key", lambda f: ["catalog", "show", "NOTAKEY"], "malformed key 'NOTAKEY'"),
    Case("key-unknown", "unknown key", lambda f: ["catalog", "show", "abcdef12"], "no dataset with key 'abcdef12'"),
    Case("key-escape", "a key that is a path", lambda f: ["plot", "../../etc/passwd"],
         "malformed key '../../etc/passwd'"),
    Case("study-name-escape", "study file whose study name holds ../", lambda f: ["run", f.yaml_escape],
         "unknown study '../../etc/passwd'"),
    Case("kind-escape", "a kind that holds ../", lambda f: ["catalog", "list", "--kind", "../../etc"],
         "kind '../../etc'"),
    Case("plot-missing-folder", "plot -o into a missing folder",
         lambda f: ["plot", f.key, "-o", str(f.dir / "missing" / "x.png")], "the folder"),
    Case("export-not-a-folder", "segy export into a path under a file",
         lambda f: ["segy", "export", f.key, str(f.file / "x.sgy")], "a-file is a file, not a folder"),
    Case("export-unwritable", "segy export into an unwritable folder",
         lambda f: ["segy", "export", f.key, str(f.locked / "x.sgy")], "is not writable"),
    # learning studies
    Case("aspire-k0", "ASPIRE with K = 0 iterations",
         lambda f: ["run", "aspire_stylized", "--set", "aspire.iterations=0"],
         "field 'aspire.iterations': Input should be greater than or equal to 1"),
    Case("aspire-held-out", "more held-out cases than pairs",
         lambda f: ["run", "aspire_stylized", "--preset", "tiny", "--set", "aspire.test_cases=500"],
         "test_cases (500) must not exceed train_pairs (400)"),
    Case("mad-no-real", "a MAD loop with zero real samples",
         lambda f: ["run", "mad", "--preset", "tiny", "--set", "n_fresh=0"], "n_fresh > 0 real samples"),
    Case("mad-gaussian-no-real", "a Gaussian MAD loop with zero real samples",
         lambda f: ["run", "mad_gaussian", "--set", "n_fresh=0"], "n_fresh > 0 real samples"),
]


def _check(code: int, err: str, case: Case) -> None:
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert case.says in lines[0], lines[0]
    assert code == case.code, (code, lines[0])


class Accepted(Exception):
    """A case's configuration was accepted: the run would start (the in-process test stops it there)."""


@pytest.fixture
def no_runs(monkeypatch):
    """A configuration that passes validation stops the test instead of starting a run."""
    import pipelines.config

    real = pipelines.config.load_study

    def load_study(*args, **kw):
        loaded = real(*args, **kw)
        raise Accepted(f"accepted: {loaded.name} {loaded.overrides}")

    monkeypatch.setattr(pipelines.config, "load_study", load_study)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, files, capsys, no_runs):
    if case.id == "export-unwritable" and os.access(files.locked, os.W_OK):
        pytest.skip("running as root: no folder is unwritable")
    before = snapshot(files.root)
    code = main([*case.argv(files), "--root", str(files.root)] if case.id != "cli-command" else case.argv(files))
    err = capsys.readouterr().err
    _check(code, err, case)
    assert snapshot(files.root) == before


END_TO_END = ["segy-truncated", "model-nan", "key-escape", "study-name-escape", "range-dispersion"]


@pytest.mark.parametrize("case_id", END_TO_END)
def test_end_to_end(case_id, files, strata_offline):
    """The console path: a subprocess, its exit code, one line, no traceback; the root is unchanged."""
    case = next(c for c in CASES if c.id == case_id)
    before = snapshot(files.root)
    proc = strata_offline(*case.argv(files), "--root", str(files.root), check=False)
    _check(proc.returncode, proc.stderr, case)
    assert snapshot(files.root) == before


# -- checkpoints: found mid-run ----------------------------------------------------------------------------
MAD = ["run", "mad", "--preset", "tiny", "--set", "family=gaussian", "--set", "loops=[fully_synthetic]",
       "--set", "biases=[1.0]", "--set", "generations=1"]  # 6 steps: real data, models and samples of t = 0, 1
CHECKPOINT_CASES = [
    Case("checkpoint-tampered", "a checkpoint whose tensors no longer fit its class (model_init edited)",
         {"model_init": {"features": 3}}, 'checkpoint does not fit gaussian_model({"features": 3}): size mismatch for '
         "mean: copying a param with shape torch.Size([2]) from checkpoint, the shape in current model is "
         "torch.Size([3]). (+2 more)"),
    Case("checkpoint-class", "a checkpoint of another model class (model_class edited)",
         {"model_class": "gaussian_mixture"}, 'checkpoint of gaussian_mixture: its model_init {"features": 2} does not '
         "build it: MixtureModel.__init__() missing 1 required positional argument: 'components'"),
]


@pytest.fixture(scope="module")
def mad_run(tmp_path_factory, prefect_server):
    """A root holding a small ``mad`` run (the Gaussian family, one loop, two generations)."""
    from tests.conftest import Strata

    strata = Strata(tmp_path_factory.mktemp("mad") / "root", prefect_server)
    strata(*MAD)
    return strata.root


def _attrs_file(root: Path, key: str) -> Path:
    return next((root / "datasets").glob(f"*/{key}.zarr")) / "zarr.json"


def _tampered(mad_run: Path, folder: Path, case: Case) -> tuple[Path, str, str]:
    """A copy of the mad root whose first-generation checkpoint has ``case``'s attrs edited and whose samples
    drawn from it are removed: (root, checkpoint key, removed samples key)."""
    import json

    from data_catalog.housekeeping import remove

    root = folder / "root"
    shutil.copytree(mad_run, root, ignore=shutil.ignore_patterns("prefect"))
    cat = Catalog(root)
    try:
        cat.reindex()  # the copy's own index
        models = next(r.key for r in cat.list("checkpoint")
                      if json.loads(_attrs_file(root, r.key).read_text())["attributes"]["generation"] == 0)
        samples = next(r.key for r in cat.list("mad_generation")
                       if any(n["key"] == models for n in cat.lineage(r.key, "up", 1)["nodes"]))
        remove(cat, samples, with_dependents=True)
    finally:
        cat.close()
    meta = _attrs_file(root, models)
    doc = json.loads(meta.read_text())
    doc["attributes"].update(case.argv)
    meta.write_text(json.dumps(doc))
    return root, models, samples


@pytest.mark.parametrize("case", CHECKPOINT_CASES, ids=[c.id for c in CHECKPOINT_CASES])
def test_a_bad_checkpoint_is_one_error_where_it_is_loaded(case, mad_run, tmp_path):
    """``api.load_model`` (what a notebook or a study step calls) refuses it in one line."""
    from pipelines import api
    from strata_errors import InputError

    root, models, _ = _tampered(mad_run, tmp_path, case)
    with pytest.raises(InputError) as err:
        api.load_model(models, root=root, member=0)
    assert case.says in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_a_bad_checkpoint_fails_the_run_in_one_line(mad_run, tmp_path, prefect_server):
    """The rerun reads the edited checkpoint and fails in one line; every visible dataset is complete and
    verifies."""
    from tests.conftest import Strata

    case = CHECKPOINT_CASES[0]
    root, _, samples = _tampered(mad_run, tmp_path, case)
    proc = Strata(root, prefect_server)(*MAD, check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(errors) == 1 and case.says in errors[0], proc.stderr
    assert errors[0].startswith("error: step mad_generation ("), errors  # the step that read it, named
    assert proc.returncode == case.code, errors
    cat = Catalog(root)
    try:
        assert samples not in {r.key for r in cat.list()} and all(r.complete for r in cat.list())
        assert all(ok for _, ok, _ in cat.verify(None))
    finally:
        cat.close()


def test_the_battery_is_long_enough():
    assert len(CASES) + len(CHECKPOINT_CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)
