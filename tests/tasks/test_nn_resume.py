"""Training resumed after a kill ends with the bytes of an uninterrupted fit (CNF, FNO, a plain MLP), from
the last epoch kept; a state that is not the model's is ignored; the catalog's epoch store keeps two slots."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from data_catalog import Storage
from flows.epochs import CatalogEpochStore
from tasks.co2.surrogate import train_surrogate
from tasks.inference.cnf import train_cnf
from tasks.inference.stylized import make_problem, sample_pairs
from tasks.nn.checkpoint import to_dataset
from tasks.nn.models import MLP
from tasks.nn.resume import epoch_store
from tasks.nn.training import fit, seeded_torch
from tests.tasks.co2.test_surrogate import FNO, _data


class Killed(Exception):
    """Stands for a SIGKILL after an epoch was kept."""


class MemoryStore:
    """Keeps the packed state per fit; ``kill_after``: raise Killed once that epoch is saved."""

    def __init__(self, kill_after: int | None = None):
        self.kept: dict[int, tuple[dict, dict]] = {}
        self.saved: list[tuple[int, int]] = []
        self.kill_after = kill_after

    def load(self, call):
        return self.kept.get(call)

    def save(self, call, arrays, meta):
        self.kept[call] = ({k: v.copy() for k, v in arrays.items()}, dict(meta))
        self.saved.append((call, meta["epoch"]))
        if meta["epoch"] == self.kill_after:
            self.kill_after = None
            raise Killed


def _fingerprint(trained) -> str:
    from data_catalog.fingerprint import fingerprints

    return fingerprints(to_dataset(trained))[0]


def _killed_then_resumed(train, kill_after: int):
    """(uninterrupted, resumed, store): ``train()`` run whole; then killed after epoch ``kill_after`` and run again."""
    whole = train()
    store = MemoryStore(kill_after)
    with epoch_store(store), pytest.raises(Killed):
        train()
    with epoch_store(store):
        resumed = train()
    return whole, resumed, store


CNF = {"epochs": 4, "batch_size": 64, "transforms": 2, "hidden_features": [8, 8], "patience": None}


def test_a_cnf_killed_mid_training_resumes_to_the_same_checkpoint():
    x, c = sample_pairs(make_problem(2, 3, seed=0, noise_scale=0.5), 300, seed=0)
    whole, resumed, store = _killed_then_resumed(lambda: train_cnf(x, c, seed=5, threads=1, **CNF), kill_after=2)
    assert store.saved == [(0, 1), (0, 2), (0, 3), (0, 4)]  # epochs 3 and 4 only were trained again
    assert resumed.history == whole.history and len(whole.history["train"]) == 4
    assert _fingerprint(resumed) == _fingerprint(whole)


def test_the_fno_killed_mid_training_resumes_to_the_same_checkpoint():
    ds = _data(12)
    training = {"epochs": 5, "batch_size": 4, "lr": 5e-3, "held_out": 0.25, "patience": None}
    whole, resumed, store = _killed_then_resumed(
        lambda: train_surrogate(ds, fno=FNO, training=training, seed=3, threads=1), kill_after=3)
    assert [e for _, e in store.saved] == [1, 2, 3, 4, 5]
    assert resumed.history == whole.history
    assert _fingerprint(resumed) == _fingerprint(whole)


def _mlp(epochs=12, patience=3, sizes=(1, 8, 1)):
    with seeded_torch(0, 0, threads=1) as gen:
        x = torch.rand(64, 1, generator=gen) * 4 - 2
        model = MLP(list(sizes), activation=torch.tanh)
        history = fit(model, x, torch.sin(2 * x), generator=gen, epochs=epochs, batch_size=16, lr=5e-2,
                      patience=patience)
    return model, history


def test_early_stopping_and_a_finished_fit_resume_without_training_again():
    (m0, h0), (m1, h1), store = _killed_then_resumed(lambda: _mlp(epochs=200, patience=2), kill_after=3)
    assert len(h0["train"]) < 200 and h1 == h0  # stopped early, at the same epoch
    assert all(torch.equal(a, b) for a, b in zip(m0.state_dict().values(), m1.state_dict().values(), strict=True))
    n = len(store.saved)
    assert store.kept[0][1]["stopped"]
    with epoch_store(store):
        m2, h2 = _mlp(epochs=200, patience=2)  # the step killed after its fit finished: nothing is trained again
    assert len(store.saved) == n and h2 == h0
    assert all(torch.equal(a, b) for a, b in zip(m0.state_dict().values(), m2.state_dict().values(), strict=True))


def test_a_state_of_another_model_is_not_used():
    store = MemoryStore()
    with epoch_store(store):
        _mlp(epochs=3, sizes=(1, 4, 1))
    store.saved.clear()
    m0, h0 = _mlp(epochs=3, sizes=(1, 8, 1))
    with epoch_store(store):
        m1, h1 = _mlp(epochs=3, sizes=(1, 8, 1))
    assert [e for _, e in store.saved] == [1, 2, 3] and h1 == h0  # trained from the start


def _arrays(value: float) -> dict[str, np.ndarray]:
    return {"module/w": np.full((2, 3), value, "f4"), "rng/global": np.arange(5, dtype="u1"),
            "optimizer/0/step": np.array(3.0, "f4")}


def test_the_catalog_store_keeps_the_newest_whole_slot_and_the_dataset_write_removes_them(tmp_path):
    storage = Storage(tmp_path)
    uri = storage.uri("checkpoint", "k")
    store = CatalogEpochStore(storage, uri, "train", {"source_hash": "abc"})
    assert store.load(0) is None
    for epoch in (1, 2, 3):
        store.save(0, _arrays(epoch), {"epoch": epoch, "stopped": False, "waited": 0, "best": None})
    with pytest.warns(UserWarning, match="resumes after epoch 3"):
        arrays, meta = store.load(0)
    assert meta["epoch"] == 3 and np.array_equal(arrays["module/w"], _arrays(3)["module/w"])
    assert arrays["optimizer/0/step"].shape == () and arrays["rng/global"].dtype == np.uint8
    assert storage.attrs(uri) == {}  # the dataset itself is not there: the state is invisible
    zarr_json = tmp_path / "datasets/checkpoint/k.zarr/.strata/training/fit-0-1/zarr.json"
    zarr_json.write_text(zarr_json.read_text().replace('"strata_complete": true', '"strata_complete": false'))
    with pytest.warns(UserWarning, match="resumes after epoch 2"):  # killed while keeping epoch 3: epoch 2
        assert store.load(0)[1]["epoch"] == 2
    other = CatalogEpochStore(storage, uri, "train", {"source_hash": "changed"})
    assert other.load(0) is None  # another version of the step's code starts over
    storage.write(uri, xr.Dataset({"a": ("x", np.arange(3.0))}), {"key": "k"})
    assert not (tmp_path / "datasets/checkpoint/k.zarr/.strata/training").exists()


def test_a_full_disk_while_keeping_the_state_warns_and_training_goes_on(tmp_path, monkeypatch):
    import errno

    storage = Storage(tmp_path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage, "write", full)
    store = CatalogEpochStore(storage, storage.uri("checkpoint", "k"), "train", {"source_hash": "abc"})
    m0, h0 = _mlp(epochs=3)
    with epoch_store(store), pytest.warns(UserWarning, match="could not be kept .No space left on device"):
        m1, h1 = _mlp(epochs=3)
    assert h1 == h0 and store.failed
