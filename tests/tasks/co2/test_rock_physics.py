"""Gassmann brine → CO2 substitution with patchy and uniform mixing (``tasks.co2.rock_physics``).

Check values come from :func:`_reference`, a separate formula path: Gassmann in its "ratio" form
``K_sat/(K_min−K_sat) = K_dry/(K_min−K_dry) + K_fl/(φ(K_min−K_fl))``, which the module does not use.
"""

from __future__ import annotations

import numpy as np
import pytest

from strata_errors import InputError
from tasks.co2.rock_physics import max_vp, min_vp, patchy, uniform

K_MIN, K_BRINE, K_CO2, RHO_BRINE, RHO_CO2 = 36.6e9, 2.735e9, 0.125e9, 1053.0, 501.9

# Threshold at phi = 0.25, rho = 2200: K_dry = 0 when K_sat equals the Reuss average
# K_R = 1/(0.25/2.735e9 + 0.75/36.6e9) = 8.936592e9 Pa; K_sat = 5/9 rho vp² (vs = vp/√3), so
# vp_min = sqrt(9/5 · 8.936592e9 / 2200) = 2704.026 m/s.
VP_MIN_2200_025 = 2704.026074
# K_sat reaches K_min (K_dry = K_min) at vp_max = sqrt(9/5 · 36.6e9 / 2200) = 5472.244 m/s, for any phi.
VP_MAX_2200 = 5472.244014


def _reference(vp, rho, phi, s, mixing="patchy"):
    """(vp, rho) by Gassmann's ratio form; scalars or arrays, no validation."""
    vp, rho, phi, s = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (vp, rho, phi, s)))

    def ratio(k):
        return k / (K_MIN - k)

    def fluid(k_fl):
        return k_fl / (phi * (K_MIN - k_fl))

    def modulus(a):
        return K_MIN * a / (1.0 + a)

    mu = rho * vp**2 / 3.0
    k_brine_sat = rho * vp**2 - 4.0 / 3.0 * mu
    a_dry = ratio(k_brine_sat) - fluid(K_BRINE)
    if mixing == "patchy":
        m_brine = rho * vp**2
        m_co2 = modulus(a_dry + fluid(K_CO2)) + 4.0 / 3.0 * mu
        m = 1.0 / ((1.0 - s) / m_brine + s / m_co2)
    else:
        k_fl = 1.0 / (s / K_CO2 + (1.0 - s) / K_BRINE)
        m = modulus(a_dry + fluid(k_fl)) + 4.0 / 3.0 * mu
    rho_new = rho + phi * s * (RHO_CO2 - RHO_BRINE)
    return np.sqrt(m / rho_new), rho_new


def test_reference_values_at_3500():
    # Independent numbers (ratio form above, and a scipy root solve of the forward Gassmann for K_dry):
    # K_dry = 9.8695e9, K_sat_co2 = 10.1344e9 Pa; S=0.5: vp 3376.24, rho 2131.11; S=1: vp 3274.52, rho 2062.23.
    ref_vp, ref_rho = _reference(3500.0, 2200.0, 0.25, [0.5, 1.0])
    np.testing.assert_allclose(ref_vp, [3376.24, 3274.52], atol=0.01)
    np.testing.assert_allclose(ref_rho, [2131.11, 2062.23], atol=0.01)
    vp, rho = patchy(3500.0, 2200.0, 0.25, np.array([0.5, 1.0]))
    np.testing.assert_allclose(vp, [3376.2, 3274.5], atol=0.1)
    np.testing.assert_allclose(rho, [2131.1, 2062.2], atol=0.1)
    np.testing.assert_allclose(vp, ref_vp, rtol=1e-12)
    np.testing.assert_allclose(rho, ref_rho, rtol=1e-12)


@pytest.mark.parametrize("mixing", [patchy, uniform])
def test_matches_reference_on_a_random_field(mixing):
    rng = np.random.default_rng(7)
    rho = rng.uniform(1950.0, 2600.0, (6, 5))
    phi = rng.uniform(0.05, 0.4, (6, 5))
    lo, hi = min_vp(rho, phi), max_vp(rho)
    vp = lo + rng.uniform(0.01, 0.99, (6, 5)) * (hi - lo)
    s = rng.uniform(0.0, 1.0, (6, 5))
    vp_out, rho_out = mixing(vp, rho, phi, s)
    ref_vp, ref_rho = _reference(vp, rho, phi, s, mixing.__name__)
    np.testing.assert_allclose(vp_out, ref_vp, rtol=1e-11)
    np.testing.assert_allclose(rho_out, ref_rho, rtol=1e-13)


def test_thresholds():
    assert min_vp(2200.0, 0.25) == pytest.approx(VP_MIN_2200_025, abs=1e-6)
    assert max_vp(2200.0) == pytest.approx(VP_MAX_2200, abs=1e-6)
    np.testing.assert_allclose(min_vp([2200.0, 2200.0], [0.25, 0.35]), [VP_MIN_2200_025, 2369.463179], atol=1e-6)
    patchy(VP_MIN_2200_025 + 1e-3, 2200.0, 0.25, 1.0)
    with pytest.raises(InputError, match="too low"):
        patchy(VP_MIN_2200_025 - 1e-3, 2200.0, 0.25, 1.0)
    patchy(VP_MAX_2200 - 1e-3, 2200.0, 0.25, 1.0)
    with pytest.raises(InputError, match="too high"):
        uniform(VP_MAX_2200 + 1e-3, 2200.0, 0.25, 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mixing", [patchy, uniform])
def test_zero_saturation_returns_baseline_bitwise(dtype, mixing):
    rng = np.random.default_rng(1)
    vp = rng.uniform(3000.0, 4500.0, (5, 4)).astype(dtype)
    rho = rng.uniform(2100.0, 2400.0, (5, 4)).astype(dtype)
    s = np.where(rng.uniform(size=(5, 4)) < 0.5, 0.0, rng.uniform(0.1, 1.0, (5, 4))).astype(dtype)
    dry = s == 0
    assert dry.any() and (~dry).any()
    vp_out, rho_out = mixing(vp, rho, 0.25, s)
    assert vp_out.dtype == dtype and rho_out.dtype == dtype
    assert np.array_equal(vp_out[dry], vp[dry]) and np.array_equal(rho_out[dry], rho[dry])
    assert np.all(vp_out[~dry] != vp[~dry]) and np.all(rho_out[~dry] < rho[~dry])
    vp0, rho0 = mixing(vp, rho, 0.25, 0.0)
    assert np.array_equal(vp0, vp) and np.array_equal(rho0, rho)
    assert vp0 is not vp  # a new array, never the caller's


def test_uniform_and_patchy_differ_between_the_end_members():
    s = np.array([0.0, 0.5, 1.0])
    vp_p, rho_p = patchy(3500.0, 2200.0, 0.25, s)
    vp_u, rho_u = uniform(3500.0, 2200.0, 0.25, s)
    ref_u, _ = _reference(3500.0, 2200.0, 0.25, 0.5, "uniform")
    assert ref_u == pytest.approx(3238.51, abs=0.01)
    assert vp_u[1] == pytest.approx(ref_u, rel=1e-12)
    assert vp_p[1] - vp_u[1] > 100.0  # 3376.24 vs 3238.51 m/s
    assert vp_u[0] == vp_p[0] == 3500.0
    assert vp_u[2] == pytest.approx(vp_p[2], rel=1e-13)
    np.testing.assert_array_equal(rho_u, rho_p)


@pytest.mark.parametrize("vp0", [2800.0, 3500.0, 4000.0])
def test_patchy_vp_decreases_with_saturation_and_rho_is_linear(vp0):
    s = np.linspace(0.0, 1.0, 2001)
    vp, rho = patchy(vp0, 2200.0, 0.25, s)
    assert np.all(np.diff(vp) < 0)
    np.testing.assert_allclose(rho, 2200.0 + 0.25 * s * (RHO_CO2 - RHO_BRINE), rtol=1e-15, atol=0)
    np.testing.assert_allclose(np.diff(rho), 0.25 * (RHO_CO2 - RHO_BRINE) / 2000, rtol=1e-9)


def test_stiff_frame_patchy_vp_is_not_monotone():
    # Documented limitation: near K_sat ≈ K_min the fluid effect is small and the density drop wins.
    vp, _ = patchy(5000.0, 2200.0, 0.25, np.linspace(0.0, 1.0, 101))
    assert vp[-1] > vp.min()


def _field(vp_cell, s_cell):
    xs, zs = np.arange(4) * 12.5, 100.0 + np.arange(3) * 5.0
    vp = np.full((4, 3), 3500.0)
    s = np.full((4, 3), 0.4)
    vp[2, 1], s[2, 1] = vp_cell, s_cell
    return vp, s, {"x": xs, "z": zs}


@pytest.mark.parametrize("mixing", [patchy, uniform])
def test_negative_dry_modulus_names_the_cell(mixing):
    vp, s, coords = _field(2500.0, 0.3)
    with pytest.raises(InputError) as err:
        mixing(vp, 2200.0, 0.25, s, coords=coords)
    msg = str(err.value)
    assert "\n" not in msg
    assert "baseline vp 2500 m/s at x=25, z=105 m is too low for Gassmann substitution" in msg
    assert "phi=0.25: the dry-frame modulus would be negative" in msg
    assert "2704.0 m/s" in msg
    with pytest.raises(InputError, match=r"baseline vp 2500 m/s at index \(2, 1\) is too low"):
        mixing(vp, 2200.0, 0.25, s)

    vp, s, coords = _field(2500.0, 0.0)
    vp_out, rho_out = mixing(vp, 2200.0, 0.25, s, coords=coords)
    assert vp_out[2, 1] == 2500.0 and rho_out[2, 1] == 2200.0
    assert vp_out[0, 0] < 3500.0


def test_too_stiff_baseline_names_the_cell():
    vp, s, coords = _field(6000.0, 0.3)
    with pytest.raises(InputError, match=r"baseline vp 6000 m/s at x=25, z=105 m is too high .* vp < 5472\.2 m/s"):
        patchy(vp, 2200.0, 0.25, s, coords=coords)


def test_broadcasting_scalars_and_integers():
    vp, rho = patchy(np.array([[3000], [3500]]), 2200, 0.25, np.array([0.0, 0.5, 1.0]))
    assert vp.shape == rho.shape == (2, 3)
    assert vp.dtype == rho.dtype == np.float64
    np.testing.assert_array_equal(vp[:, 0], [3000.0, 3500.0])
    vp, rho = patchy(3500.0, 2200.0, 0.25, 0.5)
    assert vp.shape == rho.shape == () and float(vp) == pytest.approx(3376.24, abs=0.01)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"saturation": -0.1}, r"saturation must be in \[0, 1\], got -0.1"),
        ({"saturation": 1.01}, r"saturation must be in \[0, 1\], got 1.01"),
        ({"saturation": np.nan}, r"saturation must be in \[0, 1\], got nan"),
        ({"phi": 0.0}, r"phi must be in \(0, 1\), got 0"),
        ({"phi": 1.0}, r"phi must be in \(0, 1\), got 1"),
        ({"phi": np.nan}, r"phi must be in \(0, 1\), got nan"),
        ({"vp": 0.0}, "vp must be positive and finite, got 0"),
        ({"vp": -3500.0}, "vp must be positive and finite, got -3500"),
        ({"vp": np.inf}, "vp must be positive and finite, got inf"),
        ({"rho": np.nan}, "rho must be positive and finite, got nan"),
        ({"rho": 0.0}, "rho must be positive and finite, got 0"),
        ({"vp": np.ones(3) * 3500.0, "saturation": np.ones(4) * 0.5}, r"shapes do not broadcast.*vp \(3,\)"),
        ({"vp": "3500"}, "vp must be real numbers"),
        ({"k_co2": 40e9}, "k_co2 .* must be below k_mineral"),
        ({"k_brine": -1.0}, "k_brine must be positive and finite"),
        ({"rho_co2": np.nan}, "rho_co2 must be positive and finite"),
        ({"coords": {"x": np.arange(3.0)}}, "coords must give one 1-D coordinate per axis"),
        ({"vp": 10000.0, "rho": 100.0, "phi": 0.9, "saturation": 1.0}, "CO2-bearing density would not be positive"),
    ],
)
def test_validation_errors(kwargs, match):
    args = {"vp": 3500.0, "rho": 2200.0, "phi": 0.25, "saturation": 0.5} | kwargs
    with pytest.raises(InputError, match=match) as err:
        patchy(**args)
    assert "\n" not in str(err.value)


def test_validation_names_the_cell():
    vp, s, coords = _field(3500.0, 1.5)
    with pytest.raises(InputError, match=r"saturation must be in \[0, 1\], got 1.5 at x=25, z=105 m"):
        patchy(vp, 2200.0, 0.25, s, coords=coords)
    with pytest.raises(InputError, match=r"coords must give one 1-D coordinate per axis .* \(4, 3\)"):
        patchy(vp, 2200.0, 0.25, 0.5, coords={"x": coords["x"], "z": coords["x"]})
    with pytest.raises(InputError, match="phi must be in"):
        min_vp(2200.0, 1.2)
