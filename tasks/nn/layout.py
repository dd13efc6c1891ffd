"""How a checkpoint is laid out as an ``xr.Dataset`` (no torch here: ``catalog show`` reads it).

One variable per ``state_dict`` tensor, named by its key, with dtype kept and dims of its own
(``<key>#0``, ``<key>#1``, …), and the attr ``role`` (``parameter`` or ``buffer``). Dataset attrs:
``model_class`` (the registered name), ``model_module`` (the module that registers it, imported on
load when the name is not registered yet — only modules of the ``tasks`` package), ``model_init``
(the init kwargs as JSON values, a callable as ``{"$callable": name}``), ``history`` (loss per epoch,
by split) and ``checkpoint_format``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = ["FORMAT", "FORMAT_ATTR", "CLASS_ATTR", "MODULE_ATTR", "INIT_ATTR", "HISTORY_ATTR", "ROLE_ATTR",
           "MEMBERS_ATTR", "CALLABLE_KEY", "tensor_dims", "parameter_summary"]

FORMAT = 1
FORMAT_ATTR = "checkpoint_format"
CLASS_ATTR = "model_class"
MODULE_ATTR = "model_module"
INIT_ATTR = "model_init"
HISTORY_ATTR = "history"
ROLE_ATTR = "role"
MEMBERS_ATTR = "checkpoint_members"  # the dim along which a checkpoint stacks models of one class and init
CALLABLE_KEY = "$callable"


def tensor_dims(key: str, ndim: int) -> tuple[str, ...]:
    """The dims of the variable of tensor ``key`` (its own: tensors never share a dim)."""
    return tuple(f"{key}#{i}" for i in range(ndim))


def parameter_summary(ds: xr.Dataset) -> dict[str, Any]:
    """``{"count": N, "shapes": {name: shape}}`` of the trainable parameters (buffers left out);
    metadata only, nothing is read."""
    shapes = {str(n): list(v.shape) for n, v in ds.data_vars.items() if v.attrs.get(ROLE_ATTR) == "parameter"}
    return {"count": int(sum(int(np.prod(s, dtype=np.int64)) for s in shapes.values())), "shapes": shapes}
