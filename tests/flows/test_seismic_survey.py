"""The seismic_survey study end to end (CLI on the shared Prefect server), its bad inputs, SEG-Y in/out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data_catalog import Catalog
from pipelines.cli import main

from ..conftest import Strata, fingerprints, region_markers

N_SHOTS, N_REC = 4, 101  # the small preset


@pytest.fixture(scope="module")
def reference(tmp_path_factory, prefect_server):
    """One uninterrupted small run (kill/resume, rerun and --workers 2: test_study_contract)."""
    s = Strata(tmp_path_factory.mktemp("survey-ref") / "root", prefect_server)
    return s, s.json("run", "seismic_survey")


def _records(root: Path, key: str):
    cat = Catalog(root)
    try:
        with cat.open(key) as ds:
            return ds.load()
    finally:
        cat.close()


@pytest.mark.prefect
def test_small_survey_runs(reference):
    s, out = reference
    assert out["study"] == "seismic_survey" and out["preset"] == "small"
    assert set(out["outputs"]) == {"velocity_model", "geometry", "shot_records"}
    assert len(out["computed"]) == 3 and out["reused"] == []
    show = s.json("catalog", "show", out["outputs"]["shot_records"])
    assert show["kind"] == "shot_records" and show["step"] == "survey" and show["complete"]
    assert show["inputs"] == [out["outputs"]["velocity_model"], out["outputs"]["geometry"]]
    data = show["variables"]["data"]
    assert data["dims"] == ["shot", "receiver", "time"] and data["dtype"] == "float32"
    assert data["shape"][:2] == [N_SHOTS, N_REC] and data["chunks"][0] == 1  # one shot per chunk
    ds = _records(s.root, out["outputs"]["shot_records"])
    assert np.isfinite(ds["data"].values).all() and float(np.abs(ds["data"]).max()) > 0
    assert ds.attrs["noise_snr_db"] == 20.0
    np.testing.assert_array_equal(ds["src_x"].values, 125.0 + 250.0 * np.arange(N_SHOTS))
    report = Path(out["report"]).parent
    for name in ("velocity_model", "geometry", "shot_records"):
        assert (report / f"{name}.png").stat().st_size > 10_000


@pytest.mark.prefect
def test_pieces_of_two_shots_give_the_same_records(reference, tmp_path, local_run):
    """Noise is seeded per shot, so how shots are grouped into pieces changes the key, not the data. In process, the
    shots computed on a LocalCluster (processes that never trained multi-threaded, as the CLI: Devito's bits)."""
    ref_s, ref = reference
    run = local_run("seismic_survey", "simulation.pieces.per_piece=3", workers=2)
    out = {"outputs": run.output_keys}
    root = tmp_path / "root"
    assert out["outputs"]["velocity_model"] == ref["outputs"]["velocity_model"]
    assert out["outputs"]["shot_records"] != ref["outputs"]["shot_records"]
    assert len(region_markers(root, "shot_records")) == 2  # pieces of 3 + 1 shots
    a = fingerprints(root, [out["outputs"]["shot_records"]])[out["outputs"]["shot_records"]]
    b = fingerprints(ref_s.root, [ref["outputs"]["shot_records"]])[ref["outputs"]["shot_records"]]
    assert a == b


@pytest.mark.prefect
def test_segy_export_import_round_trip(reference, tmp_path):
    s, out = reference
    key = out["outputs"]["shot_records"]
    first = tmp_path / "survey.sgy"
    assert s("segy", "export", key, str(first)).returncode == 0
    imp = s.json("segy", "import", str(first))
    assert set(imp) == {"key", "traces", "samples", "format", "endian"}
    ds = _records(s.root, key)
    nt = ds.sizes["time"]
    assert (imp["traces"], imp["samples"], imp["format"], imp["endian"]) == (N_SHOTS * N_REC, nt, "ieee32", "big")
    show = s.json("catalog", "show", imp["key"])
    assert show["kind"] == "segy" and show["step"] == "segy_import" and show["inputs"] == []
    seg = _records(s.root, imp["key"])
    np.testing.assert_array_equal(seg["data"].values, ds["data"].values.reshape(N_SHOTS * N_REC, nt))  # exact
    np.testing.assert_allclose(seg["time"].values, ds["time"].values, rtol=0, atol=1e-12)  # whole µs in SEG-Y
    np.testing.assert_array_equal(seg["SourceX"].values, np.repeat(ds["src_x"].values * 100, N_REC))  # cm
    np.testing.assert_array_equal(seg["FieldRecord"].values, np.repeat(np.arange(1, N_SHOTS + 1), N_REC))
    # the same content is the same dataset; exporting the import gives the same bytes
    assert s.json("segy", "import", str(first))["key"] == imp["key"]
    second = tmp_path / "again.sgy"
    assert s("segy", "export", imp["key"][:8], str(second)).returncode == 0
    assert second.read_bytes() == first.read_bytes()
    assert f"strata segy import {first}" in s("catalog", "reproduce", imp["key"]).stdout
    png = tmp_path / "segy.png"
    assert s("plot", imp["key"], "-o", str(png)).returncode == 0 and png.stat().st_size > 10_000
    events = [json.loads(line) for p in (s.root / "lineage").glob("*.ndjson") for line in p.read_text().splitlines()]
    assert any(e["job"]["name"] == "segy.segy_import" and e["inputs"][0]["name"].endswith("survey.sgy")
               for e in events)


# -- config and bad input: exit 2, one line, nothing registered (no Prefect needed) --------------------
def test_presets_validate():
    from pipelines.config import load_study
    from pipelines.registry import models

    small = load_study("seismic_survey", "small", [], models()).config
    large = load_study("seismic_survey", "large", [], models()).config
    assert small.model.shape == (101, 61) and small.geometry.n_shots == 4 and small.simulation.pieces.per_piece == 1
    assert large.model.shape == (401, 201) and large.geometry.n_shots == 16
    with pytest.raises(Exception, match="frozen"):
        small.geometry.n_shots = 5


# -- bad input: exit 2, one line, nothing registered (no Prefect needed) -------------------------------
@pytest.mark.parametrize(("override", "message"), [
    ("model.velocities=[.nan, 2000, 2500]", "finite"),
    ("model.velocities=[1500, 0, 2500]", "greater than 0"),
    ("model.perturbation.std=2000", "non-positive"),
    ("geometry.dt=0.01", "CFL"),
    ("geometry.first_shot_x=5000", "source 0 at x=5000 m"),
    ("geometry.receiver_depth=-10", "outside the model"),
    ("geometry.n_shots=0", "n_shots"),
])
def test_bad_survey_input_exits_2_before_any_work(override, message, tmp_path, capsys):
    root = tmp_path / "root"
    assert main(["run", "seismic_survey", "--root", str(root), "--set", override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (root / "datasets").exists()


def test_bad_segy_file_exits_2_and_registers_nothing(tmp_path, strata_offline):
    s = strata_offline
    from tasks.seismic.segy import write_segy

    from ..test_layering import _shot_records

    good = tmp_path / "good.sgy"
    write_segy(_shot_records(), good)
    truncated = tmp_path / "truncated.sgy"
    truncated.write_bytes(good.read_bytes()[:-7])
    noise = tmp_path / "noise.sgy"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    for path in (truncated, noise, tmp_path / "missing.sgy"):
        proc = s("segy", "import", str(path), check=False)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert json.loads(s("catalog", "list", "--json").stdout) == []
    assert not (s.root / "datasets").exists() or not any((s.root / "datasets").rglob("*.zarr"))
    proc = s("segy", "export", "abcdef", str(tmp_path / "x.sgy"), check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ")


@pytest.mark.prefect
@pytest.mark.parametrize("workers", [None, 2])
def test_a_warning_of_every_piece_reaches_the_terminal_once(tmp_path, prefect_server, workers):
    """Every shot of a too-coarse grid warns about dispersion, in process or on the workers: the
    user sees one `warning:` line, no Python warning source lines."""
    s = Strata(tmp_path / "root", prefect_server)
    coarse = ["--set", "geometry.f0=20", "--set", "model.shape=[61, 41]", "--set", "geometry.n_shots=3",
              "--set", "geometry.shot_spacing=200", "--set", "geometry.n_receivers=31",
              "--set", "geometry.receiver_spacing=20", "--set", "geometry.record_length=0.2"]
    proc = s("run", "seismic_survey", *coarse, *(["--workers", str(workers)] if workers else []), "--json")
    lines = proc.stderr.splitlines()
    warned = [line for line in lines if line.startswith("warning:")]
    assert len(warned) == 1 and "points per wavelength" in warned[0], proc.stderr[-2000:]
    assert not any("DispersionWarning" in line or "warnings.warn" in line for line in lines), proc.stderr[-2000:]
    assert len(json.loads(proc.stdout)["computed"]) == 3
