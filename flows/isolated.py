"""Run a whole step in a fresh Python process (``Step(..., isolated=True)``), e.g. network training.

Why: a process that ran multi-threaded torch CPU kernels gives Devito runs afterwards that differ
in the last bits from a fresh process's (seen with torch 2.13 and Devito 4.8; single-threaded torch
does not do it). A study that trains with all cores and then computes wave-equation summaries in the
same worker would give different bytes serially, on 2 workers and after a resume. Training in a
child process keeps the worker's own state untouched; the child costs an interpreter start and
the imports (a few seconds), small next to training.

The child gets the pickled :class:`flows.pieces.PieceSpec` on stdin, runs
:func:`flows.pieces.compute_whole` (it loads the inputs, calls the function and writes the dataset)
and writes the pickled outcome — the warnings raised, or the exception — to a file. A child killed
by a signal is a :class:`RunError` naming the signal; its output tail is kept in the message. The
child ends itself when its parent is gone (a killed worker leaves no training behind), and an
exception comes back with the child's traceback as a note.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from strata_errors import RunError

from .pieces import PieceSpec, Warned, compute_whole

__all__ = ["compute_isolated"]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def compute_isolated(spec: PieceSpec) -> list[Warned]:
    """:func:`compute_whole` of ``spec`` in a child interpreter; its warnings, or its exception, re-raised."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # what this process can import
    with tempfile.TemporaryDirectory(prefix="strata-isolated-") as tmp:
        result = Path(tmp) / "result.pickle"
        # -P: the working directory is not put first on the child's path (a ./flows there is not ours)
        proc = subprocess.run([sys.executable, "-P", "-m", "flows.isolated", str(result), str(os.getpid())],
                              input=pickle.dumps(spec), capture_output=True, env=env, check=False)
        if proc.returncode != 0 or not result.exists():
            tail = (proc.stderr or b"").decode(errors="replace").strip().splitlines()[-5:]
            how = (f"was killed by {_signal_name(-proc.returncode)}" if proc.returncode < 0
                   else f"exited with status {proc.returncode}")
            raise RunError(f"step {spec.step}: its process {how}" + (f": {' / '.join(tail)}" if tail else ""))
        try:
            ok, value = pickle.loads(result.read_bytes())
        except Exception as exc:
            raise RunError(f"step {spec.step}: its process sent back a result that does not load: {exc}") from None
    if not ok:
        raise value
    return value


def _orphaned_exit(parent: int) -> None:
    """End this process when its parent is gone (a killed worker must not leave training running)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(70)


def _main(result: str, parent: int) -> int:
    threading.Thread(target=_orphaned_exit, args=(parent,), daemon=True).start()
    spec = pickle.loads(sys.stdin.buffer.read())
    try:
        outcome = (True, compute_whole(spec))
    except Exception as exc:  # sent back and raised in the parent, with its type (exit codes kept)
        exc.add_note("".join(traceback.format_exc()))
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:
            exc = RunError(f"{type(exc).__name__}: {exc}")
        outcome = (False, exc)
    Path(result).write_bytes(pickle.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1], int(sys.argv[2])))
