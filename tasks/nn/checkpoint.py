"""A trained network ↔ a checkpoint dataset (layout in :mod:`tasks.nn.layout`); nothing is pickled."""

from __future__ import annotations

import importlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import xarray as xr

from strata_errors import InputError

from . import models as _builtin  # noqa: F401 - registers the built-in classes and activations
from .layout import (
    CALLABLE_KEY,
    CLASS_ATTR,
    FORMAT,
    FORMAT_ATTR,
    HISTORY_ATTR,
    INIT_ATTR,
    MEMBERS_ATTR,
    MODULE_ATTR,
    ROLE_ATTR,
    tensor_dims,
)
from .registry import MODELS, callable_name, callable_named, model_class, model_name

_OWN_MODULE = re.compile(r"tasks(\.[A-Za-z_][A-Za-z0-9_]*)+")  # the only modules a checkpoint may ask to import

__all__ = ["Trained", "to_dataset", "from_dataset", "stack"]


@dataclass(frozen=True)
class Trained:
    """What a training step returns: the module, the kwargs that build its registered class again,
    and its training history (loss per epoch, by split: e.g. ``train``, ``validation``)."""

    module: torch.nn.Module
    init: Mapping[str, Any] = field(default_factory=dict)
    history: Mapping[str, Sequence[float]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The registered name of the module's class (InputError when it has none)."""
        return model_name(type(self.module))


def _encode(value: Any, where: str) -> Any:
    """``value`` as JSON values; a registered callable as ``{"$callable": name}``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            raise InputError(f"{where} = {value!r}: a checkpoint stores finite numbers only")
        return float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, list | tuple):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) and k != CALLABLE_KEY for k in value):
            raise InputError(f"{where}: mapping keys must be strings other than {CALLABLE_KEY!r}")
        return {k: _encode(v, f"{where}.{k}") for k, v in value.items()}
    if callable(value):
        return {CALLABLE_KEY: callable_name(value)}
    raise InputError(f"{where} is a {type(value).__name__}: checkpoint init kwargs must be JSON values "
                     "or registered callables")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, Mapping):
        if set(value) == {CALLABLE_KEY}:
            return callable_named(value[CALLABLE_KEY])
        return {k: _decode(v) for k, v in value.items()}
    return value


def _history(history: Mapping[str, Sequence[float]]) -> dict[str, list[float]]:
    out = {str(k): [float(v) for v in values] for k, values in history.items()}
    if not all(math.isfinite(v) for values in out.values() for v in values):
        raise InputError("the training history must be finite numbers")
    return out


def to_dataset(trained: Trained) -> xr.Dataset:
    """The checkpoint dataset of ``trained``: its ``state_dict`` tensors, class name, init and history."""
    name = trained.name
    module = trained.module
    params = {n for n, _ in module.named_parameters(remove_duplicate=False)}
    variables = {}
    for key, tensor in module.state_dict().items():
        if not isinstance(tensor, torch.Tensor):
            raise InputError(f"{name}: state_dict entry {key!r} is a {type(tensor).__name__}, not a tensor")
        try:
            values = tensor.detach().cpu().contiguous().numpy().copy()
        except TypeError as exc:  # e.g. bfloat16: numpy has no such dtype
            raise InputError(f"{name}: tensor {key!r} of dtype {tensor.dtype} has no numpy dtype") from exc
        role = "parameter" if key in params else "buffer"
        variables[key] = xr.Variable(tensor_dims(key, values.ndim), values,
                                     {ROLE_ATTR: role, "long_name": f"{role} {key}"})
    attrs = {FORMAT_ATTR: FORMAT, CLASS_ATTR: name, MODULE_ATTR: type(module).__module__,
             INIT_ATTR: _encode(dict(trained.init), "init"), HISTORY_ATTR: _history(trained.history)}
    return xr.Dataset(variables, attrs=attrs)


def stack(members: Sequence[Trained], dim: str, labels: Sequence[Any]) -> xr.Dataset:
    """One checkpoint dataset of several models of one class and init (e.g. one per chain), their tensors
    stacked along ``dim`` (coordinate ``labels``); their histories are not kept. Load one with
    ``from_dataset(ds, member=label)``."""
    if not members or len(members) != len(labels):
        raise InputError(f"stack: {len(members)} models for {len(labels)} labels of {dim!r}")
    sets = [to_dataset(m) for m in members]
    first = sets[0].attrs
    for label, one in zip(labels, sets, strict=True):
        if (one.attrs[CLASS_ATTR], one.attrs[INIT_ATTR]) != (first[CLASS_ATTR], first[INIT_ATTR]):
            raise InputError(f"stack: the model of {dim}={label} is a {one.attrs[CLASS_ATTR]}"
                             f"({json.dumps(one.attrs[INIT_ATTR])}), not a {first[CLASS_ATTR]}"
                             f"({json.dumps(first[INIT_ATTR])})")
    out = xr.concat([one.assign_attrs({HISTORY_ATTR: {}}) for one in sets], dim=dim, combine_attrs="override")
    return out.assign_coords({dim: (dim, np.asarray(labels))}).assign_attrs({MEMBERS_ATTR: dim})


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (torch's load_state_dict lists each mismatch on its own)."""
    return " ".join(str(exc).split())


def from_dataset(ds: xr.Dataset, member: Any = None) -> Trained:
    """Build the registered class from a checkpoint dataset and load its tensors (on the CPU, eval mode);
    of a stacked checkpoint (:func:`stack`), the model ``member`` (a label of its members' dim).

    Only classes and callables of the registry are built (InputError for any other name); a class
    not registered yet is looked for in the checkpoint's ``model_module`` if that is a module of the
    ``tasks`` package (importing it registers the class; no other module is ever imported); the
    stored dtypes must be the ones the class builds."""
    if CLASS_ATTR not in ds.attrs or INIT_ATTR not in ds.attrs:
        raise InputError(f"not a checkpoint dataset: attrs {CLASS_ATTR!r} and {INIT_ATTR!r} are missing")
    if ds.attrs.get(FORMAT_ATTR) != FORMAT:
        raise InputError(f"checkpoint format {ds.attrs.get(FORMAT_ATTR)!r} is not {FORMAT}")
    dim = ds.attrs.get(MEMBERS_ATTR)
    if dim is not None:
        labels = ds[dim].values.tolist() if dim in ds.coords else []
        if member is None or member not in labels:
            raise InputError(f"this checkpoint stacks {len(labels)} models along {dim!r}: pick one with member= "
                             f"(one of {labels[:10]}{'...' if len(labels) > 10 else ''}), got {member!r}")
        ds = ds.sel({dim: member}, drop=True)
    elif member is not None:
        raise InputError(f"this checkpoint holds one model: member={member!r} names none")
    name = ds.attrs[CLASS_ATTR]
    where = ds.attrs.get(MODULE_ATTR)
    if name not in MODELS and isinstance(where, str) and _OWN_MODULE.fullmatch(where):
        try:
            importlib.import_module(where)  # registers the class
        except Exception as exc:
            raise InputError(f"checkpoint of {name}: its module {where} does not import: {exc}") from None
    cls = model_class(name)
    init = _decode(ds.attrs[INIT_ATTR])
    if not isinstance(init, dict):
        raise InputError(f"checkpoint of {name}: {INIT_ATTR} must be a mapping")
    try:
        module = cls(**init)
    except (TypeError, ValueError, RuntimeError) as exc:  # init kwargs of another class, or values it refuses
        raise InputError(f"checkpoint of {name}: its {INIT_ATTR} {json.dumps(ds.attrs[INIT_ATTR])} does not build "
                         f"it: {_one_line(exc)}") from None
    expected = module.state_dict()
    state = {}
    for key, var in ds.data_vars.items():
        state[str(key)] = torch.from_numpy(np.ascontiguousarray(var.values).copy())
        if key in expected and expected[key].dtype != state[key].dtype:
            raise InputError(f"checkpoint of {name}: tensor {key!r} is {state[key].dtype}, the class builds "
                             f"{expected[key].dtype}")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # torch lists each mismatch on a line of its own: the first, and how many more
        found = [" ".join(line.split()) for line in str(exc).splitlines()[1:] if line.strip()] or [_one_line(exc)]
        more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
        raise InputError(f"checkpoint does not fit {name}({json.dumps(ds.attrs[INIT_ATTR])}): "
                         f"{found[0]}{more}") from None
    history = {k: list(v) for k, v in dict(ds.attrs.get(HISTORY_ATTR) or {}).items()}
    return Trained(module.eval(), init, history)
