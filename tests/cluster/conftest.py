"""A real one-node SLURM cluster for the tests of ``kind: slurm`` (issue 27).

The fixture writes a ``slurm.conf`` for this host (its CPUs and memory from ``slurmd -C``; two partitions: ``main``,
the default, and ``down``, ``State=DOWN``), starts ``munged`` (as the ``munge`` user), ``slurmctld`` and ``slurmd``
in the foreground from a temporary folder that holds their state, sockets and logs, waits for the node to be idle
and stops the three by pid at the end (the kernel stops them if the test process dies without its teardown).
Controller and node talk on loopback ports of their own, so each pytest-xdist worker can have its cluster. Without
root or without the Debian packages every test here skips with one line.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from flows.server import free_port

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
NEEDS = f"SLURM tests need root and Debian's {' '.join(PACKAGES)} (apt-get install -y {' '.join(PACKAGES)})"
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo")


def unavailable() -> str | None:
    """Why no SLURM cluster can run here (one line), or None."""
    missing = [b for b in BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]
    if missing or os.geteuid() != 0:
        return NEEDS
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return NEEDS
    return None


def _which(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


_LIBC = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    """In a daemon's child process: SIGTERM when the test process dies, even without its teardown (SIGKILL)."""
    _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Slurm:
    """One controller, one node (this host), munge: started with :meth:`start`, stopped with :meth:`stop`."""

    def __init__(self, base: Path):
        self.base = base
        self.conf = base / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.procs: dict[str, subprocess.Popen] = {}
        self.node = socket.gethostname().split(".")[0]

    # -- life ------------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> None:
        self.base.chmod(0o755)  # munged (user munge) reaches its folder through it
        self._start_munge()
        self._write_conf()
        for d in ("state", "spool", "log"):
            (self.base / d).mkdir(exist_ok=True)
        for daemon in ("slurmctld", "slurmd"):
            log = open(self.base / "log" / f"{daemon}.out", "wb")
            self.procs[daemon] = subprocess.Popen([_which(daemon), "-D", "-f", str(self.conf)], stdout=log,
                                                  stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
                                                  preexec_fn=_die_with_parent)
            log.close()
        deadline = time.monotonic() + timeout
        while True:
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead[0]} exited: {self.log_tail(dead[0])}")
            state = subprocess.run(["sinfo", "-h", "-n", self.node, "-p", "main", "-o", "%t"], env=self.env,
                                   capture_output=True, text=True).stdout.strip()
            if state == "idle":
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"node {self.node} not idle after {timeout} s (sinfo: {state!r}): "
                                   f"{self.log_tail('slurmd')}")
            time.sleep(0.2)

    def stop(self) -> None:
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def log_tail(self, daemon: str) -> str:
        for path in (self.base / "log" / f"{daemon}.log", self.base / "log" / f"{daemon}.out"):
            if path.exists() and path.stat().st_size:
                return path.read_text(errors="replace")[-1500:]
        return "(no log)"

    def _start_munge(self) -> None:
        munge = pwd.getpwnam("munge")
        d = self.base / "munge"
        d.mkdir()
        d.chmod(0o755)  # munged: its socket folder must be reachable by all, the key readable by it alone
        key = d / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        for p in (d, key):
            os.chown(p, munge.pw_uid, munge.pw_gid)
        self.socket = d / "munge.socket"
        self.procs["munged"] = subprocess.Popen(
            [_which("munged"), "-F", f"--socket={self.socket}", f"--key-file={key}", f"--pid-file={d}/munged.pid",
             f"--log-file={d}/munged.log", f"--seed-file={d}/munged.seed", "--num-threads=2"],
            user=munge.pw_uid, group=munge.pw_gid, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 20
        while not self.socket.exists():
            if self.procs["munged"].poll() is not None or time.monotonic() > deadline:
                err = self.procs["munged"].stderr.read().decode(errors="replace") if self.procs["munged"].poll() else ""
                raise RuntimeError(f"munged did not start: {err.strip() or '(no output)'}")
            time.sleep(0.05)

    def _write_conf(self) -> None:
        node = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout
        spec = next(line for line in node.splitlines() if line.startswith("NodeName="))
        spec = " ".join(w for w in spec.split() if w.split("=")[0] in
                        ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory"))
        b = self.base
        self.conf.write_text("\n".join([
            f"ClusterName=strata{os.getpid()}",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={free_port()}",
            f"SlurmdPort={free_port()}",
            "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={self.socket}",
            "SlurmUser=root", "SlurmdUser=root",
            f"StateSaveLocation={b}/state", f"SlurmdSpoolDir={b}/spool",
            f"SlurmctldPidFile={b}/slurmctld.pid", f"SlurmdPidFile={b}/slurmd.pid",
            f"SlurmctldLogFile={b}/log/slurmctld.log", f"SlurmdLogFile={b}/log/slurmd.log",
            "SlurmctldDebug=info", "SlurmdDebug=info",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "ReturnToService=2", "EnforcePartLimits=ALL", "MailProg=/bin/true",
            f"NodeName={self.node} NodeAddr=127.0.0.1 {spec} State=UNKNOWN",
            f"PartitionName=main Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
            f"PartitionName=down Nodes={self.node} MaxTime=INFINITE State=DOWN",
            "",
        ]))

    # -- questions -------------------------------------------------------------------------
    def known(self) -> set[str]:
        """Ids of every job the controller still lists, ended ones included (for MinJobAge, 300 s)."""
        out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i"], env=self.env, capture_output=True, text=True,
                             check=True).stdout
        return set(out.split())

    def queue(self) -> dict[str, tuple[str, str]]:
        """{job id: (state, reason)} of every job the controller still knows of (running, pending, ending)."""
        out = subprocess.run(["squeue", "-h", "-o", "%i %T %r"], env=self.env, capture_output=True, text=True,
                             check=True).stdout
        return {f[0]: (f[1], f[2]) for f in (line.split(None, 2) for line in out.splitlines()) if len(f) == 3}


@pytest.fixture(scope="session")
def slurm():
    """A started one-node SLURM cluster (:class:`Slurm`); its ``env`` has ``SLURM_CONF``."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="strata-slurm-"))
    cluster = Slurm(base)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
