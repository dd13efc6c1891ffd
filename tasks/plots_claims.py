"""The plot of a ``claims`` dataset: one row per claim, its value ± SE, the comparison and the verdict
(green holds, red fails, grey unmeasured); the statements are in the report's claims table."""

from __future__ import annotations

import xarray as xr

from .claims import VERDICT_COLOURS, rows
from .plots import register


@register("claims")
def plot_claims(ds: xr.Dataset):
    import matplotlib.pyplot as plt

    table = rows(ds)
    fig, ax = plt.subplots(figsize=(10, 0.6 + 0.32 * len(table)))
    ax.axis("off")
    cells = [[r["id"], r["value"], r["comparison"], r["paper"] or "—", r["verdict"]] for r in table]
    t = ax.table(cellText=cells, colLabels=["claim (statements: the report's table)", "value ± SE", "comparison",
                                            "paper", "verdict"],
                 loc="center", cellLoc="left", colWidths=[0.42, 0.17, 0.2, 0.08, 0.13])
    t.auto_set_font_size(False)
    t.set_fontsize(9)
    t.scale(1, 1.4)
    for i, r in enumerate(table, start=1):
        t[i, 4].set_facecolor(VERDICT_COLOURS[r["verdict"]])
    held = sum(r["verdict"] == "holds" for r in table)
    ax.set_title(f"claims: {held} of {len(table)} hold", loc="left")
    return fig
