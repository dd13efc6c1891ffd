"""The kind registry (flows/kinds.py): every kind a study writes is declared, a step whose result falls short of
its kind fails in one line before anything is written, every study's stored datasets are what their kinds say,
and a root written before mad_gaussian had kinds of its own still lists, shows and plots."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from data_catalog import Catalog, make_key
from flows.kinds import KINDS, Kind, check, lookup
from flows.step import Step
from pipelines.registry import STUDIES, load_flow
from strata_errors import RunError


def _study_steps() -> list[Step]:
    """Every Step object of the study modules and of the modules they take steps from (shared steps, ASPIRE,
    claims): the Steps in the globals of every loaded ``studies.*``/``flows.*`` module, and those modules' modules."""
    for name in STUDIES:
        load_flow(name)
    steps: dict[int, Step] = {}
    for mod_name, mod in list(sys.modules.items()):
        if mod is None or not mod_name.startswith(("studies", "flows")):
            continue
        for value in vars(mod).values():
            if isinstance(value, Step):
                steps[id(value)] = value
    return list(steps.values())


def test_every_kind_a_study_writes_is_declared():
    steps = _study_steps()
    by_kind = {s.kind: s.name for s in steps}
    assert {"checkpoint", "claims", "reference_posterior", "mad_gaussian_curves", "aspire_metrics"} <= set(by_kind)
    undeclared = {kind: step for kind, step in by_kind.items() if lookup(kind) is None}
    assert not undeclared, f"kinds written by steps but not declared in flows/kinds.py: {undeclared}"
    assert lookup("segy") is not None  # `strata segy import`'s kind
    for kind in KINDS.values():  # each declared with its one-line description
        assert kind.doc and "\n" not in kind.doc, kind.name


def test_check_names_the_variable_and_its_dims():
    ds = xr.Dataset({"w2": (("chain",), np.zeros(3)), "mean": (("chain", "dim"), np.zeros((3, 2))),
                     "cov": (("chain", "dim", "dim_"), np.zeros((3, 2, 2)))},
                    coords={"chain": np.arange(3), "generation": 1})
    assert check(ds, "mad_gaussian_generation") is None
    assert check(ds.drop_vars("w2"), "mad_gaussian_generation") == "no variable 'w2'"
    flat = ds.assign(cov=(("chain", "dim"), np.zeros((3, 2))))
    assert check(flat, "mad_gaussian_generation") == "variable 'cov' has dims (chain, dim), not (chain, dim, dim_)"
    assert check(ds.drop_vars("chain"), "mad_gaussian_generation") == "no coordinate 'chain'"
    assert check(ds, "not_a_declared_kind") is None  # made-up kinds (tests) are not checked
    grid = Kind("t", "a test kind", {"v": ("x", "y?", "z")}, optional={"o": ("case|sample", "...")})
    for dims, ok in ((("x", "z"), True), (("x", "y", "z"), True), (("x", "t", "z"), False), (("z", "x"), False)):
        assert (check(xr.Dataset({"v": (dims, np.zeros((2,) * len(dims)))}), grid) is None) is ok, dims
    base = {"v": (("x", "z"), np.zeros((2, 2)))}
    for dims, ok in ((("sample",), True), (("case", "a", "b"), True), (("draw",), False), ((), False)):
        ds = xr.Dataset({**base, "o": (dims, np.zeros((2,) * len(dims)))})
        assert (check(ds, grid) is None) is ok, dims
    ckpt = xr.Dataset({"layer.weight": (("layer.weight#0",), np.zeros(2))},
                      attrs={"model_class": "mlp", "model_init": "{}"})
    assert check(ckpt, "checkpoint") == "no attribute 'checkpoint_format'"


# -- a step whose result lacks a variable of its kind fails, in one line, and nothing is complete ---------------
def _no_w2(*, chains: np.ndarray, **_: object) -> xr.Dataset:
    """A mad_gaussian generation without its W2 (mapped over chains)."""
    n = len(chains)
    return xr.Dataset({"mean": (("chain", "dim"), np.zeros((n, 2))), "cov": (("chain", "dim", "dim_"),
                                                                          np.zeros((n, 2, 2)))},
                      coords={"chain": chains, "generation": 0})


def _no_w2_mean() -> xr.Dataset:
    """mad_gaussian's curves without ``w2_mean``."""
    names = ("w2_se", "var_mean", "var_se", "var_median", "mean_err", "mean_err_se")
    return xr.Dataset({n: (("loop", "generation"), np.zeros((1, 2))) for n in names},
                      coords={"loop": ["fully_synthetic"], "generation": [0, 1]})


@dataclass(frozen=True)
class _Pieces:
    per_piece: int = 2
    per_task: int | str = 1


BAD_WHOLE = Step("bad_curves", _no_w2_mean, version="1", kind="mad_gaussian_curves")
BAD_MAPPED = Step("bad_generation", _no_w2, version="1", kind="mad_gaussian_generation", map_over="chain",
                  coord_param="chains")


@pytest.mark.parametrize("step, call, variable", [
    (BAD_WHOLE, lambda: BAD_WHOLE(), "w2_mean"),
    (BAD_MAPPED, lambda: BAD_MAPPED(pieces=_Pieces(), chains=np.arange(4)), "w2"),
], ids=["whole", "mapped"])
def test_a_result_without_a_variable_of_its_kind_fails_in_one_line_and_nothing_is_complete(tmp_path, step, call,
                                                                                             variable):
    from flows.study import run_local

    cat = Catalog(tmp_path / "root")
    try:
        with pytest.raises(RunError) as info:
            run_local(SimpleNamespace(body=lambda cfg: {"out": call()}), None, cat, study="kinds_test")
        msg = str(info.value)
        assert "\n" not in msg and msg.startswith(f"step {step.name}"), msg
        assert f"not a {step.kind!r} dataset: no variable {variable!r}" in msg, msg
        assert "resume" not in msg, msg  # the step's code is at fault: a rerun fails the same way
        assert cat.list() == [] and cat.list(step.kind) == []  # nothing indexed as complete
        written = list((tmp_path / "root" / "datasets").glob(f"{step.kind}/*.zarr"))
        assert all(not cat.storage.is_complete(str(p)) for p in written)
        assert not list((tmp_path / "root" / "datasets").glob(f"{step.kind}/*.zarr/.strata/regions/*"))
    finally:
        cat.close()


# -- every study's datasets, as stored by its tiny run, are what their kinds say ---------------------------------
@pytest.mark.prefect
@pytest.mark.parametrize("study", sorted(STUDIES))
def test_every_dataset_of_a_tiny_run_satisfies_its_kind(study, tiny_run):
    """The session's shared tiny run of each study (the study contract suite's reference run: nothing is run
    again here). The write path checks every result already; this checks what was stored (after zarr)."""
    strata, proc = tiny_run(study)
    assert proc.returncode == 0, proc.stderr
    cat = Catalog(strata.root)
    try:
        records = cat.list()
        assert records
        for rec in records:
            assert lookup(rec.kind) is not None, f"{rec.step} writes kind {rec.kind}, not declared"
            with cat.open(rec.key, dask=False) as ds:
                assert check(ds, rec.kind) is None, f"{study}: {rec.step} ({rec.kind}): {check(ds, rec.kind)}"
    finally:
        cat.close()


# -- a root written before mad_gaussian had kinds of its own ----------------------------------------------------
def _old_gaussian_datasets() -> list[tuple[str, str, xr.Dataset]]:
    """(step, old kind, dataset) of mad_gaussian as a root written before its own kinds holds them."""
    from tasks.generative.gaussian import LOOPS, draw_real, summarize
    from tests.tasks.test_mad_gaussian import TRUTH, run_loop

    gens = [g for loop in LOOPS for g in run_loop(loop, chains=8, n=6, generations=2, n_synth=6, n_fresh=2,
                                                  seed=3)]
    real = draw_real(np.arange(8), n=6, dim=1, seed=3, **TRUTH)
    return [("real_samples", "mad_real", real), ("generation", "mad_generation", gens[-1]),
            ("curves", "mad_curves", summarize(gens, LOOPS))]


def test_a_root_written_before_mad_gaussian_had_its_own_kinds_lists_shows_and_plots(tmp_path, capsys):
    from pipelines.cli import main

    root = tmp_path / "root"
    cat = Catalog(root)
    keys = {}
    try:
        for step, kind, ds in _old_gaussian_datasets():
            assert check(ds, f"mad_gaussian_{kind[len('mad_'):]}") is None  # the new kind's schema …
            assert check(ds, kind) is not None  # … not the mad study's
            key = make_key(step, "1", {"old": True}, [])
            cat.claim(key, "t", kind, step, "1")
            cat.write(key, kind, ds, {"step": step, "version": "1", "params": {"old": True}, "inputs": [],
                                      "code": {}, "study": "mad_gaussian"})
            keys[kind] = key
    finally:
        cat.close()
    assert main(["catalog", "list", "--json", "--root", str(root)]) == 0
    listed = {r["key"]: r["kind"] for r in json.loads(capsys.readouterr().out)}
    assert listed == {key: kind for kind, key in keys.items()}
    for kind, key in keys.items():
        assert main(["catalog", "show", key, "--json", "--root", str(root)]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["kind"] == kind and doc["complete"]
        png = tmp_path / f"{kind}.png"
        assert main(["plot", key, "-o", str(png), "--root", str(root)]) == 0
        assert capsys.readouterr().out.strip() == str(png)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_mad_gaussian_declares_its_own_kinds():
    module = sys.modules[load_flow("mad_gaussian").steps.__module__]  # wherever the study lives
    kinds = {v.kind for v in vars(module).values() if isinstance(v, Step)}
    assert kinds == {"mad_gaussian_real", "mad_gaussian_generation", "mad_gaussian_curves"}
