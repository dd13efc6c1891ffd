"""Deterministic training: seeded torch state with fixed threads, and a small early-stopping fit loop."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

from strata_errors import InputError, RunError

from .resume import FitState, next_fit, pack, unpack

__all__ = ["seeded_torch", "torch_device", "fit", "Loss"]

# loss(module, x_batch, y_batch or None) -> mean loss of the batch (a 0-d tensor)
Loss = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor | None], torch.Tensor]


def torch_device(name: str = "cpu") -> torch.device:
    """``cpu`` or ``cuda[:i]`` (when asked for and available); InputError otherwise."""
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device {name!r} is not a torch device: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r} was asked for but CUDA is not available here")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"device must be cpu or cuda, got {name!r}")
    return dev


def _seeds(seed: int, index: int) -> tuple[int, int]:
    """(global RNG seed, generator seed), both from ``SeedSequence([seed, index])``."""
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 0 for v in (seed, index)):
        raise InputError(f"seed and index must be integers >= 0, got {seed!r}, {index!r}")
    glob, gen = np.random.SeedSequence([int(seed), int(index)]).spawn(2)
    return int(glob.generate_state(1, np.uint64)[0]), int(gen.generate_state(1, np.uint64)[0])


@contextmanager
def seeded_torch(seed: int, index: int = 0, *, threads: int, device: str = "cpu") -> Iterator[torch.Generator]:
    """Inside: torch's global RNG seeded, deterministic algorithms on, ``threads`` intra-op threads
    (fixed by the caller: results may depend on it); yields a seeded ``torch.Generator`` on
    ``device``. The previous RNG state, determinism flag and thread count come back afterwards."""
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise InputError(f"threads must be an integer >= 1, got {threads!r}")
    dev = torch_device(device)
    glob, gen = _seeds(seed, index)
    cuda = dev.type == "cuda"
    if cuda:  # cuBLAS is deterministic only with a fixed workspace (read when it starts)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    gpus = [dev.index if dev.index is not None else torch.cuda.current_device()] if cuda else []
    with torch.random.fork_rng(devices=gpus, device_type="cuda"):
        try:
            torch.default_generator.manual_seed(glob)
            if cuda:
                torch.cuda.manual_seed(glob)
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(True)
            yield torch.Generator(device=dev).manual_seed(gen)
        finally:
            torch.set_num_threads(before[0])
            torch.use_deterministic_algorithms(before[1], warn_only=before[2])
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


def _mse(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    return torch.nn.functional.mse_loss(module(x), y)


def _mean_loss(module: torch.nn.Module, loss: Loss, x: torch.Tensor, y: torch.Tensor | None,
               batches: list[torch.Tensor]) -> float:
    total = 0.0
    for b in batches:
        total += float(loss(module, x[b], None if y is None else y[b])) * len(b)
    return total / sum(len(b) for b in batches)


def fit(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *, generator: torch.Generator,
        loss: Loss | None = None, epochs: int = 100, batch_size: int = 64, lr: float = 1e-3,
        held_out: float = 0.2, patience: int | None = 10, weight_decay: float = 0.0) -> dict[str, list[float]]:
    """Train ``module`` with Adam (``torch.optim.AdamW`` with ``weight_decay`` > 0: decoupled weight decay)
    on a random ``1 - held_out`` of the rows of ``x`` (and ``y``);
    stop when the held-out loss has not improved for ``patience`` epochs, keep the best epoch's
    weights (eval mode on return). ``loss``: mean negative log-likelihood of a batch, or None for
    the MSE of ``module(x)`` against ``y``. Returns ``{"train": [...], "validation": [...]}``.
    Under the runtime's epoch store (:mod:`tasks.nn.resume`) the state is kept after every epoch and a
    fit run again after a kill goes on from the last epoch kept, to the same result."""
    if loss is None and y is None:
        raise InputError("fit: give targets y for the MSE, or a loss")
    if not weight_decay >= 0:
        raise InputError(f"fit: weight_decay must be >= 0, got {weight_decay!r}")
    if not 0.0 < held_out < 1.0 or epochs < 1 or batch_size < 1:
        raise InputError(f"fit: need 0 < held_out < 1, epochs >= 1, batch_size >= 1, got {held_out}, {epochs}, "
                         f"{batch_size}")
    loss = loss or _mse
    n = x.shape[0]
    n_val = max(1, round(held_out * n))
    if n - n_val < 1:
        raise InputError(f"fit: {n} rows leave nothing to train on after holding out {n_val}")
    order = torch.randperm(n, generator=generator, device=generator.device).to(x.device)
    val, train = order[:n_val], order[n_val:]
    val_batches = list(val.split(batch_size))
    opt = (torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay) if weight_decay
           else torch.optim.Adam(module.parameters(), lr=lr))
    state = FitState(epoch=0, stopped=False, best=math.inf, waited=0, history={"train": [], "validation": []},
                     best_state=None)
    kept = next_fit()  # the runtime's epoch store: resume after the last epoch a killed run kept
    if kept is not None:
        saved = kept[0].load(kept[1])
        state = (saved and unpack(*saved, module, opt, generator)) or state
    history = state.history
    for epoch in range(state.epoch, 0 if state.stopped else epochs):
        module.train()
        batches = list(train[torch.randperm(len(train), generator=generator, device=generator.device)
                             .to(x.device)].split(batch_size))
        total = 0.0
        for b in batches:
            opt.zero_grad()
            value = loss(module, x[b], None if y is None else y[b])
            value.backward()
            opt.step()
            total += float(value.detach()) * len(b)
        module.eval()
        with torch.no_grad():
            validation = _mean_loss(module, loss, x, y, val_batches)
        history["train"].append(total / len(train))
        history["validation"].append(validation)
        if not (math.isfinite(history["train"][-1]) and math.isfinite(validation)):
            raise RunError(f"fit: the loss is not finite at epoch {epoch + 1}")
        if validation < state.best:
            state.best, state.waited = validation, 0
            state.best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        else:
            state.waited += 1
        state.epoch = epoch + 1
        state.stopped = state.epoch == epochs or (patience is not None and state.waited >= patience)
        if kept is not None:
            kept[0].save(kept[1], *pack(state, module, opt, generator))
        if state.stopped:
            break
    best_state = state.best_state
    module.load_state_dict(best_state)
    module.eval()
    return history
