"""Every piece computes in the default floating-point environment, whatever its process computed before.

Why: a Devito operator sets flush-to-zero and denormals-are-zero in the thread that calls it
(``_MM_SET_FLUSH_ZERO_MODE`` at the top of the generated C code) and leaves them set. Measured: in a process,
``np.float32(1e-40) * 0.5`` is ``5e-41`` before any operator ran and ``0.0`` after one. So a piece's bytes
depended on its process's history — a Dask worker that had run a wave solver for another study, or an earlier
step, gave other bytes for a piece with tiny values (the two-phase flow, a network's forward pass) than a
fresh one. :func:`default_fp_env` puts the C99 floating-point environment (``fegetenv``/``fesetenv`` of the
C library's ``libm``, which on x86-64 include the SSE control register) back to the default for the piece and
restores the caller's afterwards; a Devito operator inside the piece still flushes, as in a fresh process.
Where no ``libm`` with ``fesetenv`` is found the context does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["default_fp_env"]

_ENV_BYTES = 256  # larger than any libc's fenv_t (28 bytes on x86-64 glibc, 32 on aarch64)


def _libm() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("m")
    try:
        lib = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return lib if lib is not None and hasattr(lib, "fegetenv") and hasattr(lib, "fesetenv") else None


_LIBM = _libm()
_DEFAULT = ctypes.create_string_buffer(_ENV_BYTES)
if _LIBM is not None:
    if sys.platform.startswith("linux"):  # glibc's FE_DFL_ENV is the pointer (const fenv_t *) -1
        _saved = ctypes.create_string_buffer(_ENV_BYTES)
        _LIBM.fegetenv(_saved)
        _LIBM.fesetenv(ctypes.c_void_p(-1))
        _LIBM.fegetenv(_DEFAULT)
        _LIBM.fesetenv(_saved)
    else:  # elsewhere: the environment this module was imported in (before a piece ran in this process)
        _LIBM.fegetenv(_DEFAULT)


@contextmanager
def default_fp_env() -> Iterator[None]:
    """The block runs in the default floating-point environment (rounding to nearest, no exceptions trapped,
    denormals kept); the caller's environment is put back afterwards."""
    if _LIBM is None:
        yield
        return
    saved = ctypes.create_string_buffer(_ENV_BYTES)
    _LIBM.fegetenv(saved)
    _LIBM.fesetenv(_DEFAULT)
    try:
        yield
    finally:
        _LIBM.fesetenv(saved)
