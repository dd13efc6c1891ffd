"""The plot of a trained network (kind ``checkpoint``): its training curve."""

from __future__ import annotations

import xarray as xr

from .plots import register

__all__ = ["plot_checkpoint"]


@register("checkpoint")
def plot_checkpoint(ds: xr.Dataset):
    """Training curve of a trained network: loss per epoch of each split in its history (log scale
    when every loss is positive), the best validation epoch marked."""
    import matplotlib.pyplot as plt
    import numpy as np

    from tasks.nn.layout import CLASS_ATTR, HISTORY_ATTR, parameter_summary

    history = {str(k): np.asarray(v, dtype=float) for k, v in dict(ds.attrs.get(HISTORY_ATTR) or {}).items()}
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (split, loss) in enumerate(history.items()):
        ax.plot(np.arange(1, loss.size + 1), loss, "-o", ms=3, color=f"C{i}", label=split)
    val = history.get("validation")
    if val is not None and val.size:
        best = int(np.argmin(val))
        ax.axvline(best + 1, color="k", ls=":", lw=1, label=f"best validation (epoch {best + 1})")
    if history and all((v > 0).all() for v in history.values() if v.size):
        ax.set_yscale("log")
    n = parameter_summary(ds)["count"]
    ax.set(xlabel="epoch", ylabel="loss", title=f"training of {ds.attrs.get(CLASS_ATTR, '?')} ({n:,} parameters)")
    if history:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no training history", ha="center", transform=ax.transAxes)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig
