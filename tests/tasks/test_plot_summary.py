"""The ``summary`` plotter draws both shapes of summary statistic the studies write: an image per sample
(seismic ASPIRE: FWI gradients, RTM images over x, z) and a vector per sample (aspire_location, aspire_stylized)."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import xarray as xr

from tasks.plots import plot_dataset

matplotlib.use("Agg")


@pytest.mark.parametrize("shape", ["image", "vector", "named vector"])
def test_the_summary_plotter_draws_every_shape_of_summary(shape):
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    if shape == "image":
        ds = xr.Dataset({"gradient": (("sample", "x", "z"), rng.normal(size=(4, 8, 6)))},
                        coords={"sample": np.arange(4), "x": 10.0 * np.arange(8), "z": 10.0 * np.arange(6)})
    elif shape == "vector":
        ds = xr.Dataset({"gradient": (("sample", "component"), rng.normal(size=(50, 4)))},
                        coords={"sample": np.arange(50)})
    else:
        ds = xr.Dataset({"gradient": (("sample", "axis"), rng.normal(size=(50, 2)))},
                        coords={"sample": np.arange(50), "axis": ["x", "y"]})
    fig = plot_dataset(ds, "summary")
    try:
        titles = [fig.get_suptitle(), *(ax.get_title() for ax in fig.axes)]
        assert any("summary statistic 'gradient'" in t for t in titles), titles
        if shape == "named vector":
            assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["x", "y"]
    finally:
        plt.close(fig)
