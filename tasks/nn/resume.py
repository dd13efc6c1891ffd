"""Training that survives a kill (a walltime, a SIGKILL): the epoch state of :func:`tasks.nn.training.fit`.

After every epoch ``fit`` hands its whole state to the :class:`EpochStore` the runtime has set (none
set: nothing is kept, e.g. in a notebook); run again, it starts after the last epoch kept. The state
is everything the next epoch reads — the weights, Adam's moments and step counts, both random
generators, the best weights so far, the early-stopping counters and the history — so a resumed fit
ends with the very bytes of an uninterrupted one. A step may fit several times: the fits of one step
are told apart by their order (call 0, 1, ...), which is the same on every run of a deterministic step.
Importing this module does not import torch (the runtime sets a store for every whole step).

The state travels as plain arrays and JSON values (``pack``/``unpack``): the store decides where they
live (the runtime keeps them as an incomplete, invisible entry of the catalog; nothing is pickled).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:  # torch is imported by fit's callers; the runtime sets a store without it
    import torch

__all__ = ["EpochStore", "FitState", "epoch_store", "next_fit", "pack", "unpack"]

Arrays = dict[str, np.ndarray]


class EpochStore(Protocol):
    """Where the epoch state of a step's fits is kept between runs."""

    def load(self, call: int) -> tuple[Arrays, dict[str, Any]] | None:
        """The last state saved by fit number ``call`` of the step, or None."""

    def save(self, call: int, arrays: Arrays, meta: Mapping[str, Any]) -> None:
        """Keep the state after an epoch (replacing the previous one only once it is whole)."""


@dataclass
class _Session:
    store: EpochStore
    calls: int = 0


_session: ContextVar[_Session | None] = ContextVar("strata_epoch_store", default=None)


@contextmanager
def epoch_store(store: EpochStore | None) -> Iterator[None]:
    """Inside: the fits of this step keep their epoch state in ``store`` (None: nowhere)."""
    token = _session.set(_Session(store) if store is not None else None)
    try:
        yield
    finally:
        _session.reset(token)


def next_fit() -> tuple[EpochStore, int] | None:
    """(store, this fit's number within the step), or None when no store is set."""
    s = _session.get()
    if s is None:
        return None
    s.calls += 1
    return s.store, s.calls - 1


@dataclass
class FitState:
    """What ``fit`` needs to go on after ``epoch`` epochs (``stopped``: it had finished)."""

    epoch: int
    stopped: bool
    best: float
    waited: int
    history: dict[str, list[float]]
    best_state: dict[str, torch.Tensor] | None


def pack(state: FitState, module: torch.nn.Module, opt: torch.optim.Optimizer,
         generator: torch.Generator) -> tuple[Arrays, dict[str, Any]]:
    """The state as named arrays plus JSON values."""
    import torch

    arrays: Arrays = {f"module/{k}": _np(v) for k, v in module.state_dict().items()}
    for k, v in (state.best_state or {}).items():
        arrays[f"best/{k}"] = _np(v)
    for i, slots in opt.state_dict()["state"].items():
        for name, v in slots.items():
            arrays[f"optimizer/{i}/{name}"] = _np(v)
    arrays["rng/generator"] = _np(generator.get_state())
    arrays["rng/global"] = _np(torch.get_rng_state())
    for split, values in state.history.items():
        arrays[f"history/{split}"] = np.asarray(values, dtype=np.float64)
    meta = {"epoch": state.epoch, "stopped": state.stopped, "waited": state.waited,
            "best": state.best if math.isfinite(state.best) else None}
    return arrays, meta


def unpack(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], module: torch.nn.Module,
           opt: torch.optim.Optimizer, generator: torch.Generator) -> FitState | None:
    """Restore ``module``, ``opt`` and both generators from a packed state and return the rest;
    None (nothing changed) when the state is not this model's (other names, shapes or dtypes)."""
    import torch

    own = module.state_dict()
    if not _matches(arrays, "module/", own) or not _matches(arrays, "best/", own, optional=True):
        return None
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in arrays.items():
        if name.startswith("optimizer/"):
            _, i, slot = name.split("/", 2)
            slots.setdefault(int(i), {})[slot] = torch.from_numpy(np.array(value))
    param_groups = opt.state_dict()["param_groups"]
    if set(slots) - {i for g in param_groups for i in g["params"]}:
        return None
    module.load_state_dict({k: torch.from_numpy(np.array(arrays[f"module/{k}"])) for k in own})
    opt.load_state_dict({"state": slots, "param_groups": param_groups})
    generator.set_state(torch.from_numpy(np.array(arrays["rng/generator"])))
    torch.set_rng_state(torch.from_numpy(np.array(arrays["rng/global"])))
    best_state = ({k: torch.from_numpy(np.array(arrays[f"best/{k}"])) for k in own}
                  if f"best/{next(iter(own))}" in arrays else None) if own else None
    history = {name.split("/", 1)[1]: [float(v) for v in value]
               for name, value in arrays.items() if name.startswith("history/")}
    best = meta.get("best")
    return FitState(epoch=int(meta["epoch"]), stopped=bool(meta["stopped"]), waited=int(meta["waited"]),
                    best=math.inf if best is None else float(best), history=history, best_state=best_state)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _matches(arrays: Mapping[str, np.ndarray], prefix: str, own: Mapping[str, torch.Tensor],
             optional: bool = False) -> bool:
    names = {n[len(prefix):] for n in arrays if n.startswith(prefix)}
    if optional and not names:
        return True
    return names == set(own) and all(
        tuple(arrays[prefix + k].shape) == tuple(v.shape) and arrays[prefix + k].dtype == _np(v).dtype
        for k, v in own.items())
