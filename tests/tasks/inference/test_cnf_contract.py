"""The contract every conditional normalizing flow (CNF) class meets, parametrized over ``CASES``.

A CNF class is a registered ``torch.nn.Module`` with ``conditional(c)`` (a zuko ``NormalizingFlow`` whose
``transform`` maps x to the base variable), ``log_prob(x, c)``, ``sample(c, n, generator)`` and
``posterior_mean_std(c, n, generator)``, and ``standardize(x, c)`` (z-scoring buffers, named ``*_mean`` /
``*_scale``, set from data). Add a new class to ``CASES`` and it meets the same tests: vectors (event shape
``(features,)``) and images (event shape ``(C, H, W)``) alike.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from data_catalog import Catalog, make_key
from tasks.inference.cnf import VectorCNF
from tasks.inference.glow import ImageCNF
from tasks.nn.checkpoint import Trained, from_dataset, to_dataset
from tasks.nn.training import seeded_torch

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Case:
    """How to build one CNF class (init kwargs as JSON, a dtype name) and draw inputs of its event shapes:
    ``x_shape`` of x, ``c_shape`` of the condition (``(features,)`` for vectors, ``(C, H, W)`` for images)."""

    id: str
    cls: type[torch.nn.Module]
    init: dict
    x_shape: tuple[int, ...]
    c_shape: tuple[int, ...]

    @property
    def dims(self) -> int:
        """The number of scalars in one x."""
        return math.prod(self.x_shape)

    def build(self, dtype: str = "float32", seed: int = 0) -> tuple[torch.nn.Module, dict]:
        """The class built from JSON init kwargs, z-scored from data, its parameters moved off their initial
        values by small seeded noise: a flow whose steps start as the identity (zero-initialized last layers)
        would otherwise be tested at a point where no gradient reaches its earlier layers."""
        init = {**self.init, "dtype": dtype}
        with seeded_torch(seed, threads=1) as gen:
            module = self.cls(**init)
            x, c = self.inputs(256, gen, dtype)
            module.standardize(x, c)  # non-trivial z-scoring, so the buffers matter
            with torch.no_grad():
                for p in module.parameters():
                    p.add_(0.05 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        return module, init

    def inputs(self, n: int, gen: torch.Generator, dtype: str = "float32") -> tuple[torch.Tensor, torch.Tensor]:
        """Pairs with means and scales far from 0 and 1, and x correlated with c (with the sum of the
        condition's features or channels)."""
        dt = getattr(torch, dtype)
        c = 3.0 + 2.0 * torch.randn(n, *self.c_shape, generator=gen, dtype=dt)
        x = -1.0 + 0.5 * torch.randn(n, *self.x_shape, generator=gen, dtype=dt)
        x = x + 0.3 * c.sum(1, keepdim=True)
        return x, c


def _vector(family: str) -> Case:
    return Case(f"vector_cnf-{family}", VectorCNF,
                {"features": 3, "context": 2, "transforms": 2, "hidden_features": [16, 16], "family": family},
                x_shape=(3,), c_shape=(2,))


def _image(pixelwise: bool) -> Case:
    """A conditional Glow on 8×8 one-channel images given two channels: 2 levels of 2 steps, tiny nets;
    z-scoring per channel or per pixel."""
    return Case("image_cnf-glow" + ("-pixelwise" if pixelwise else ""), ImageCNF,
                {"channels": 1, "context_channels": 2, "size": [8, 8], "levels": 2, "steps": 2, "hidden": 8,
                 "context_features": 4, "pixelwise": pixelwise},
                x_shape=(1, 8, 8), c_shape=(2, 8, 8))


CASES = [_vector("nsf"), _vector("maf"), _image(False), _image(True)]
cases = pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])


def _tiny(case: Case, dtype: str, n: int = 4, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    with seeded_torch(seed, threads=1) as gen:
        return case.inputs(n, gen, dtype)


@cases
@pytest.mark.parametrize("dtype, tol", [("float32", 1e-4), ("float64", 1e-10)])
def test_the_inverse_undoes_the_forward_transform(case, dtype, tol):
    module, _ = case.build(dtype)
    x, c = _tiny(case, dtype, n=16)
    with torch.no_grad():
        dist = module.conditional(c)
        z = dist.transform(x)
        back = dist.transform.inv(z)
        assert z.shape == x.shape and not torch.allclose(z, x)
        assert torch.allclose(back, x, atol=tol, rtol=tol)
        # and the other way round: base draws → x → base draws
        eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
        assert torch.allclose(dist.transform(dist.transform.inv(eps)), eps, atol=tol, rtol=tol)


@cases
def test_the_log_determinant_is_the_autograd_jacobian_and_log_prob_uses_it(case):
    module, _ = case.build("float64")
    x, c = _tiny(case, "float64", n=3)
    for i in range(len(x)):
        dist = module.conditional(c[i])
        flat = x[i].reshape(-1)  # the Jacobian of the flattened event
        jac = torch.autograd.functional.jacobian(
            lambda v, d=dist: d.transform(v.reshape(case.x_shape)).reshape(-1), flat)
        assert jac.shape == (case.dims, case.dims)
        sign, logdet = torch.linalg.slogdet(jac)
        z, ladj = dist.transform.call_and_ladj(x[i])
        assert sign > 0 and torch.allclose(ladj, logdet, atol=1e-9, rtol=1e-9)
        # change of variables with a standard normal base, in the original units of x
        normal = -0.5 * (z**2).sum() - 0.5 * case.dims * math.log(2 * math.pi)
        assert torch.allclose(module.log_prob(x[i], c[i]), normal + logdet, atol=1e-9, rtol=1e-9)


@cases
def test_gradients_reach_every_parameter(case):
    module, _ = case.build("float32")
    x, c = _tiny(case, "float32", n=32)
    module.zero_grad()
    (-module.log_prob(x, c).mean()).backward()
    params = dict(module.named_parameters())
    assert params
    missing = [n for n, p in params.items() if p.grad is None or not torch.isfinite(p.grad).all()
               or not torch.any(p.grad != 0)]
    assert not missing, f"no gradient reaches {missing}"
    # a sample is differentiable too (reparameterized): gradients reach the parameters through it
    module.zero_grad()
    module.sample(c[:2], 5, torch.Generator().manual_seed(0)).sum().backward()
    assert any(p.grad is not None and torch.any(p.grad != 0) for p in params.values())


@cases
def test_sample_and_density_shapes_and_the_generator_fixes_the_samples(case):
    module, _ = case.build("float32")
    x, c = _tiny(case, "float32", n=5)
    with torch.no_grad():
        assert module.log_prob(x, c).shape == (5,)
        assert module.log_prob(x[0], c[0]).shape == ()
        assert module.sample(c, 7, torch.Generator().manual_seed(0)).shape == (7, 5, *case.x_shape)
        assert module.sample(c[0], 7, torch.Generator().manual_seed(0)).shape == (7, *case.x_shape)
        a = module.sample(c, 7, torch.Generator().manual_seed(3))
        b = module.sample(c, 7, torch.Generator().manual_seed(3))
        d = module.sample(c, 7, torch.Generator().manual_seed(4))
        assert torch.equal(a, b) and not torch.equal(a, d) and torch.isfinite(a).all()
    mean, std = module.posterior_mean_std(c, 64, torch.Generator().manual_seed(0))
    assert mean.shape == std.shape == (5, *case.x_shape) and bool((std > 0).all())
    draws = module.sample(c, 64, torch.Generator().manual_seed(0)).detach()
    assert torch.allclose(mean, draws.mean(0)) and torch.allclose(std, draws.std(0))


PROBE_SEED = 11


def _probe(module: torch.nn.Module, x: torch.Tensor, c: torch.Tensor) -> dict[str, str]:
    with seeded_torch(0, threads=1), torch.no_grad():
        logp = module.log_prob(x, c).numpy()
        draws = module.sample(c, 5, torch.Generator().manual_seed(PROBE_SEED)).numpy()
    return {"logp": logp.tobytes().hex(), "samples": draws.tobytes().hex()}


@cases
def test_a_stored_cnf_reloads_in_a_new_process_with_the_same_density_and_samples(case, tmp_path):
    module, init = case.build("float32", seed=2)
    trained = Trained(module, init, {"train": [3.0, 2.0], "validation": [3.5, 2.5]})
    x, c = _tiny(case, "float32", n=6, seed=3)
    np.savez(tmp_path / "probe.npz", x=x.numpy(), c=c.numpy())
    root = tmp_path / "root"
    cat = Catalog(root)
    key = make_key("cnf_contract", "1", {"case": case.id}, [])
    cat.write(key, "checkpoint", to_dataset(trained), {"step": "cnf_contract", "version": "1"})
    in_process = from_dataset(to_dataset(trained))
    assert _probe(in_process.module, x, c) == _probe(module, x, c)
    code = f"""
import json, numpy as np, torch
import {case.cls.__module__}  # registers the class
from data_catalog import Catalog
from tasks.nn.checkpoint import from_dataset
from tasks.nn.training import seeded_torch
cat = Catalog({str(root)!r})
with cat.open({key!r}, dask=False) as ds:
    t = from_dataset(ds.load())
probe = np.load({str(tmp_path / "probe.npz")!r})
x, c = torch.from_numpy(probe["x"]), torch.from_numpy(probe["c"])
with seeded_torch(0, threads=1), torch.no_grad():
    logp = t.module.log_prob(x, c).numpy()
    draws = t.module.sample(c, 5, torch.Generator().manual_seed({PROBE_SEED})).numpy()
print(json.dumps({{"logp": logp.tobytes().hex(), "samples": draws.tobytes().hex(), "init": t.init,
                  "history": t.history, "class": type(t.module).__name__,
                  "buffers": {{k: v.tolist() for k, v in t.module.state_dict().items()
                              if k.endswith(("_mean", "_scale"))}}}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout)
    assert {"logp": got["logp"], "samples": got["samples"]} == _probe(module, x, c)
    assert got["init"] == init and got["class"] == case.cls.__name__
    assert got["history"] == {k: list(v) for k, v in trained.history.items()}
    buffers = {k: v.tolist() for k, v in module.state_dict().items() if k.endswith(("_mean", "_scale"))}
    assert buffers and got["buffers"] == buffers and any(v != 0.0 for b in buffers.values() for v in b)


@cases
def test_the_init_kwargs_are_json(case):
    _, init = case.build("float32")
    assert json.loads(json.dumps(init)) == init
