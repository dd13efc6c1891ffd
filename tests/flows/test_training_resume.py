"""A training step SIGKILLed mid-training (as a walltime would; inside the isolated training process, and the kill
takes the whole run's process group with it) resumes on the rerun from its last epoch, kept as an incomplete,
invisible entry of the catalog; the rerun reuses everything before the training and ends with the uninterrupted
run's bytes."""

from __future__ import annotations

import json
import signal

import pytest

from data_catalog import Catalog

# The CNF of ASPIRE's first iteration (3 epochs in the tiny preset), through the whole runtime. The same
# resume of the CNF and of the FNO, bit for bit, is checked on the trainers in tests/tasks/test_nn_resume.py
# (co2_forecast here costs ~1 min more: its rerun recomputes the Devito monitoring after the training).
CASES = [("aspire_stylized", "train_posterior", 1, 3)]
# the steps before the training: reused by the rerun, and not computed again — but for those taken once per
# iteration (the summaries: k = 2's come after the training)
BEFORE = {"aspire_stylized": {"once": ("linear_problem", "pairs", "prior_estimates"), "per_iteration": ("summaries",)}}


def _complete(root) -> dict[str, str]:
    cat = Catalog(root)
    try:
        return {r.key: r.fingerprint for r in cat.list()}
    finally:
        cat.close()


@pytest.mark.parametrize(("study", "step", "kill_after", "epochs"), CASES, ids=[c[0] for c in CASES])
def test_a_training_step_killed_mid_training_resumes_from_its_last_epoch(study, step, kill_after, epochs,
                                                                         tiny_run, strata):
    reference, _ = tiny_run(study)
    killed = strata("run", study, "--preset", "tiny", fault=f"{step}.epoch:{kill_after}:kill", check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]

    cat = Catalog(strata.root)
    try:
        in_flight = [r for r in cat.index.list(complete_only=False) if not r.complete]
        assert [r.step for r in in_flight] == [step]  # the checkpoint is not visible...
        state = list((strata.root / "datasets").glob(f"*/{in_flight[0].key}.zarr/.strata/training/fit-0-*"))
        assert state and not cat.storage.is_complete(in_flight[0].uri)  # ...its epoch state is kept
        assert all(ok for _, ok, _ in cat.verify())
    finally:
        cat.close()

    again = strata("run", study, "--preset", "tiny", "--json")
    assert f"step {step}: training resumes after epoch {kill_after} (fit 0)" in again.stderr
    done = json.loads(again.stdout)
    assert in_flight[0].key in done["computed"]
    cat = Catalog(strata.root)
    try:
        reused = {cat.get(key).step for key in done["reused"]}
        recomputed = {cat.get(key).step for key in done["computed"]}
    finally:
        cat.close()
    once, per_iteration = set(BEFORE[study]["once"]), set(BEFORE[study]["per_iteration"])
    assert once | per_iteration <= reused and step in recomputed, (reused, recomputed)
    assert not once & recomputed, recomputed
    mine, theirs = _complete(strata.root), _complete(reference.root)
    assert mine == theirs  # every dataset, the checkpoint included, has the uninterrupted run's fingerprint
    histories = []
    for root in (strata.root, reference.root):
        cat = Catalog(root)
        try:
            histories.append(cat.open(in_flight[0].key, dask=False).attrs["history"])
        finally:
            cat.close()
    assert histories[0] == histories[1] and len(histories[0]["train"]) == epochs
    assert not list((strata.root / "datasets").rglob(".strata/training"))  # the state went with the write
    assert strata("catalog", "verify").returncode == 0
