"""mad on its ``tiny`` preset: generation t's models (a checkpoint entry) come from t−1's, every chain's model
loads and samples; each generation's samples and metrics come from its models; the curves have dims (loop, bias,
chain, generation)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from data_catalog import Catalog
from tasks.generative.mad import chain_model

pytestmark = pytest.mark.prefect


def test_tiny_generations_chain_models_and_curves(tiny_run):
    strata, proc = tiny_run("mad")
    doc = json.loads(proc.stdout)
    out = doc["outputs"]
    assert doc["claims"].startswith("claims: ") and " of 4 hold" in doc["claims"]  # the run's one-line verdict
    shown = strata("catalog", "show", out["claims"])  # the claims table itself
    assert shown.returncode == 0 and "fully_synthetic_fid_rises" in shown.stdout
    assert "Self-Consuming" in open(doc["report"]).read()  # the report's claims table names the paper
    cat = Catalog(strata.root)
    try:
        curves = cat.open(out["curves"]).load()
        assert curves.precision.dims == ("loop", "bias", "chain", "generation")
        assert curves.precision.shape == (2, 2, 4, 3)
        for m in ("precision", "recall", "fid"):
            assert np.isfinite(curves[m].values).all()
        last = cat.get(out["last_fully_synthetic_1"])
        [ckpt] = [cat.get(k) for k in last.inputs if cat.get(k).step == "mad_models"]
        assert ckpt.kind == "checkpoint"
        gens = [ckpt]
        while len(gens) < 3:  # lineage: models t=2 <- t=1 <- t=0 <- real data
            prev = [cat.get(k) for k in gens[-1].inputs if cat.get(k).step == "mad_models"]
            assert len(prev) == 1 and prev[0].kind == "checkpoint"
            gens.append(prev[0])
        models = [cat.open(g.key).load() for g in gens]
        assert [m.attrs["generation"] for m in models] == [2, 1, 0]
        assert not [k for k in gens[-1].inputs if cat.get(k).step == "mad_models"]
        model = chain_model(models[0], 3).module  # chain 3's mixture of generation 2
        x = model.sample(50, 1.0, torch.Generator().manual_seed(0))
        assert x.shape == (50, 2) and torch.isfinite(x).all()
        ds = [cat.open(last.key).load()]
        assert ds[0].attrs["generation"] == 2
        assert ds[0].samples.dims == ("chain", "sample", "feature") and ds[0].sizes["chain"] == 4
    finally:
        cat.close()
