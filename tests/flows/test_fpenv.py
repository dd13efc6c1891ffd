"""A piece's bytes do not depend on what its process computed before: a Devito operator leaves flush-to-zero set in
its thread, and every piece (and every step of a direct run) computes in the default floating-point environment."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from data_catalog import RegionWriter, Storage
from flows.fpenv import SUPPORTED, default_fp_env
from flows.pieces import PieceSpec, compute_pieces, compute_whole

TINY = np.float32(1e-40)  # a float32 denormal: halving it gives 5e-41, or 0 when denormals are flushed
HALF, ZERO = 0x8b61, 0  # the bits of float32 5e-41 and of 0 (compared as bits: with denormals-are-zero set,
#                         5e-41 == 0 is True)


def _bits(x) -> list[int]:
    return np.atleast_1d(np.asarray(x, np.float32)).view(np.uint32).tolist()


def _run_an_operator() -> None:
    from devito import Eq, Grid, Operator, TimeFunction

    u = TimeFunction(name="u", grid=Grid(shape=(4, 4)))
    Operator([Eq(u.forward, u + 1)])(time_M=1)


def _halve(shots=None) -> xr.Dataset:
    values = np.full(1 if shots is None else len(shots), TINY, np.float32) * np.float32(0.5)
    return xr.Dataset({"v": (("shot",), values)}, coords={"shot": [0] if shots is None else shots})


@pytest.fixture
def flushing():
    """This thread after a Devito operator ran in it (as a worker that ran a wave solver); the caller's
    environment is put back afterwards."""
    if not SUPPORTED:
        pytest.skip("flows.fpenv cannot set the default floating-point environment on this platform")
    with default_fp_env():
        _run_an_operator()
        if _bits(TINY * np.float32(0.5)) != [ZERO]:
            pytest.skip("Devito's operators do not flush denormals on this platform")
        yield


def test_a_devito_operator_leaves_denormals_flushed_and_the_default_environment_keeps_them(flushing):
    with default_fp_env():
        assert _bits(TINY * np.float32(0.5)) == [HALF]
        _run_an_operator()  # an operator inside the block flushes, as in a fresh process
        assert _bits(TINY * np.float32(0.5)) == [ZERO]
    assert _bits(TINY * np.float32(0.5)) == [ZERO]  # the caller's environment is back


def test_pieces_and_whole_steps_compute_in_the_default_environment(tmp_path, flushing):
    storage = Storage(tmp_path / "root")
    whole = storage.uri("t", "whole")
    compute_whole(PieceSpec("whole", _halve, {}, (), storage, whole))
    mapped = storage.uri("t", "mapped")
    writer = RegionWriter(storage, mapped, "shot", np.arange(2), 1)
    compute_pieces(PieceSpec("mapped", _halve, {}, (), storage, mapped, writer=writer, coord_param="shots"), [0, 1])
    for uri in (whole, mapped):
        with storage.open(uri, dask=False) as ds:
            assert set(_bits(ds.v.values)) == {HALF}, uri


def test_a_direct_run_computes_in_the_default_environment(flushing):
    from flows.direct import DirectRun
    from flows.step import Step

    step = Step(name="halve", fn=_halve, version="1", kind="example")
    held = DirectRun().call_step(step, [], {}, None, None)
    assert _bits(held.data.v.values) == [HALF]
