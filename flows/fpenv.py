"""Every piece computes in the default floating-point environment, whatever its thread computed before.

Why: a Devito operator sets flush-to-zero and denormals-are-zero in the thread that calls it
(``_MM_SET_FLUSH_ZERO_MODE`` at the top of the generated C code) and leaves them set. Measured: in a process,
``np.float32(1e-40) * 0.5`` is ``5e-41`` before any operator ran and ``0.0`` after one. So a piece's bytes
depended on its process's history — a Dask worker that had run a wave solver for another study, or an earlier
step, gave other bytes for a piece with tiny values (co2_forecast's monitor velocity model) than a fresh one.
:func:`default_fp_env` puts the C99 floating-point environment (``fegetenv``/``fesetenv`` of the C library's
``libm``, which on x86-64 include the SSE control register) to the default for the piece and restores the
caller's afterwards; a Devito operator inside the piece still flushes, as in a fresh process. Thread pools a
piece starts after such an operator (torch's) keep what that thread had: this covers the calling thread.

Where the default environment cannot be set and checked (a C library other than glibc on x86-64 or aarch64
Linux, or a check that fails at import) the context does nothing and results may depend on history as before.
"""

from __future__ import annotations

import ctypes
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

__all__ = ["default_fp_env", "SUPPORTED"]

_ENV_BYTES = 256  # more than any libc's fenv_t (32 bytes on x86-64 glibc, 8 on aarch64)
_DFL_ENV = ctypes.c_void_p(-1)  # glibc's FE_DFL_ENV, (const fenv_t *) -1, on x86-64 and aarch64


def _halved_tiny_bits() -> int:
    """The bits of float32 1e-40 / 2: 0x8b61 (5e-41) in the default environment, 0 when denormals are flushed."""
    tiny = np.array([1e-40], np.float32)
    return int((tiny * np.float32(0.5)).view(np.uint32)[0])


def _default_env() -> tuple[ctypes.CDLL, ctypes.Array] | None:
    """(libm, the default environment), captured and checked once; None where that cannot be done."""
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "aarch64"):
        return None
    try:
        libm = ctypes.CDLL("libm.so.6")
    except OSError:
        return None
    saved, default = ctypes.create_string_buffer(_ENV_BYTES), ctypes.create_string_buffer(_ENV_BYTES)
    if libm.fegetenv(saved) != 0:
        return None
    try:
        ok = libm.fesetenv(_DFL_ENV) == 0 and libm.fegetenv(default) == 0 and _halved_tiny_bits() == 0x8b61
    finally:
        libm.fesetenv(saved)
    return (libm, default) if ok else None


_ENV = _default_env()
SUPPORTED = _ENV is not None  # False: default_fp_env does nothing here


@contextmanager
def default_fp_env() -> Iterator[None]:
    """The block runs in the default floating-point environment (rounding to nearest, no exceptions trapped,
    denormals kept); the caller's environment is put back afterwards."""
    if _ENV is None:
        yield
        return
    libm, default = _ENV
    saved = ctypes.create_string_buffer(_ENV_BYTES)
    libm.fegetenv(saved)
    libm.fesetenv(default)
    try:
        yield
    finally:
        libm.fesetenv(saved)
