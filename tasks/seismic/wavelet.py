"""Source wavelets: Ricker by peak frequency, a user wavelet resampled, the usable f_max."""

from __future__ import annotations

import numpy as np

from strata_errors import InputError

__all__ = ["max_frequency", "resample_wavelet", "ricker"]


def ricker(f0: float, t: np.ndarray, *, t0: float | None = None,
           amplitude: float = 1.0) -> np.ndarray:
    """Ricker wavelet of peak frequency ``f0`` (Hz) at times ``t`` (s), centred at ``t0 = 1/f0``."""
    if not f0 > 0:
        raise InputError(f"Ricker peak frequency must be > 0 Hz, got {f0}")
    t0 = 1.0 / f0 if t0 is None else t0
    r = np.pi * f0 * (np.asarray(t, dtype=np.float64) - t0)
    return amplitude * (1.0 - 2.0 * r**2) * np.exp(-(r**2))


def resample_wavelet(samples: np.ndarray, dt: float, t: np.ndarray) -> np.ndarray:
    """A user wavelet sampled every ``dt`` s from t=0, linearly interpolated onto ``t``."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 1 or samples.size < 2 or not np.all(np.isfinite(samples)):
        raise InputError(f"user wavelet must be a finite 1D array of >= 2 samples, "
                         f"got shape {samples.shape}")
    if not dt > 0:
        raise InputError(f"user wavelet sample interval must be > 0 s, got {dt}")
    return np.interp(t, dt * np.arange(samples.size), samples, left=0.0, right=0.0)


def max_frequency(wavelet: np.ndarray, dt: float, *, threshold: float = 0.01) -> float:
    """Highest frequency (Hz) where the amplitude spectrum is >= ``threshold`` × its peak.

    For a Ricker wavelet of peak frequency f0 this is about 2.75 f0 at 1%.
    """
    w = np.asarray(wavelet, dtype=np.float64)
    n = 8 * max(w.size, 1024)
    spec = np.abs(np.fft.rfft(w, n))
    if not spec.max() > 0:
        raise InputError("source wavelet is all zeros")
    freqs = np.fft.rfftfreq(n, dt)
    return float(freqs[np.flatnonzero(spec >= threshold * spec.max())[-1]])
