"""k-NN precision/recall and the Fréchet distance on known cases."""

from __future__ import annotations

import numpy as np
import pytest

from strata_errors import InputError
from tasks.generative.metrics import PCAFeatures, frechet_distance, precision_recall


def _two_modes(n: int, rng: np.random.Generator) -> np.ndarray:
    centres = np.where(rng.random(n) < 0.5, -6.0, 6.0)
    return np.column_stack([centres + rng.normal(size=n), rng.normal(size=n)])


def test_identical_sets_give_one_one():
    x = np.random.default_rng(0).normal(size=(300, 4))
    assert precision_recall(x, x.copy(), k=3) == (1.0, 1.0)


def test_disjoint_far_sets_give_zero_zero():
    rng = np.random.default_rng(1)
    assert precision_recall(rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 100.0) == (0.0, 0.0)


def test_a_set_missing_one_mode_has_full_precision_and_half_recall():
    rng = np.random.default_rng(2)
    real = _two_modes(2000, rng)
    fake = _two_modes(4000, rng)
    fake = fake[fake[:, 0] < 0][:1000]  # only the left mode
    precision, recall = precision_recall(real, fake, k=3)
    assert precision >= 0.97
    assert recall == pytest.approx(0.5, abs=0.04)
    # a same-size random subset of the real law keeps both modes: recall far above one half
    assert precision_recall(real, _two_modes(1000, rng), k=3)[1] >= 0.8


def test_precision_falls_when_the_fake_spreads():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(1000, 2))
    wide = precision_recall(real, 3.0 * rng.normal(size=(1000, 2)))
    narrow = precision_recall(real, 0.3 * rng.normal(size=(1000, 2)))
    assert wide[0] < 0.7 < narrow[0] and narrow[1] < 0.7 < wide[1]  # measured: (0.59, 0.99), (1.00, 0.49)


def test_frechet_distance_known_answer():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(20000, 3))
    b = 2.0 * rng.normal(size=(20000, 3)) + np.array([1.0, 0.0, 0.0])
    # |mu|^2 + tr(I + 4I - 2*2I) = 1 + 3
    assert frechet_distance(a, b) == pytest.approx(4.0, rel=0.03)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_pca_features_whiten_the_real_data():
    rng = np.random.default_rng(5)
    real = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6))
    f = PCAFeatures.fit(real, 3)
    z = f(real)
    assert z.shape == (500, 3)
    np.testing.assert_allclose(np.cov(z, rowvar=False), np.eye(3), atol=1e-10)
    with pytest.raises(InputError, match="expected 6 columns"):
        f(real[:, :5])


def test_bad_inputs():
    x = np.zeros((3, 2))
    with pytest.raises(InputError, match="needs more than k"):
        precision_recall(x, x, k=3)
    with pytest.raises(InputError, match="finite"):
        precision_recall(np.full((10, 2), np.nan), np.zeros((10, 2)))
