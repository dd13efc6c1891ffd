"""The report's tables: metrics per iteration with standard errors and paired changes, and the paper's set-up
beside the run's configuration."""

from __future__ import annotations

import numpy as np
import xarray as xr

from pipelines.config import load_study
from pipelines.registry import models
from pipelines.report import _metric_table, _paper_table


def test_a_metric_row_shows_value_standard_error_and_the_paired_change():
    ds = xr.Dataset({"rmse": ("iteration", [0.18, 0.056]), "rmse_se": ("iteration", [0.015, 0.0036]),
                     "rmse_diff": ("change", [-0.125]), "rmse_diff_se": ("change", [0.015]),
                     "rmse_per_case": (("iteration", "case"), np.zeros((2, 3)))},
                    coords={"iteration": [1, 2], "change": [2]})
    html = _metric_table(ds, "iteration")
    assert "<td>0.18 ± 0.015</td>" in html and "0.056 ± 0.0036 (Δ -0.125 ± 0.015)" in html
    assert "rmse_per_case" not in html and "rmse_diff" not in html


def test_the_paper_table_puts_the_papers_values_beside_the_presets():
    small = _paper_table(load_study("aspire_location", "small", [], models()))
    tiny = _paper_table(load_study("aspire_location", "tiny", ["aspire.cross_fit=3"], models()))
    assert "ASPIRE" in small and "<td>training pairs</td><td>1000</td><td>20000</td>" in small
    assert "<td>training pairs</td><td>1000</td><td>400</td>" in tiny
    assert "<td>cross-fitting folds</td><td>none</td><td>3</td>" in tiny
