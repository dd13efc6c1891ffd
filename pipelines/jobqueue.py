"""dask-jobqueue clusters of a ``slurm``/``pbs`` cluster config: jobs submitted in :func:`submit_env`, a refused
submission recorded as one reason (``sbatch``'s own words) instead of a traceback in the cluster's event loop."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path
from typing import Any

from strata_errors import InputError

from .cluster import ClusterConfig, submit_env

__all__ = ["jobqueue_cluster"]


class _Refused(Exception):
    """The batch system refused a job (its submit command failed)."""


def _refusal(command: str, err: str, rc: int) -> str:
    """``sbatch``'s error lines as one reason: ``invalid partition specified: nosuch; Batch job submission
    failed: Invalid partition name specified``."""
    prog = command.split()[0]
    lines = [line.strip() for line in err.splitlines() if line.strip()]
    lines = [line.removeprefix(f"{prog}: ").removeprefix("error: ").removeprefix("ERROR: ").strip() for line in lines]
    return "; ".join(dict.fromkeys(lines)) or f"{prog} exited {rc}"


def _job_class(base: type, refused: list[str]) -> type:
    """``base`` (SLURMJob, PBSJob) submitting in :func:`submit_env` and recording a refusal in ``refused``
    instead of raising it in the cluster's event loop (a traceback on the terminal and a run that waits)."""

    class Job(base):  # type: ignore[misc, valid-type]
        async def _submit_job(self, script_filename: str) -> str:
            cmd = [*shlex.split(self.submit_command), script_filename]
            try:
                proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                            stderr=asyncio.subprocess.PIPE, env=submit_env())
            except OSError as exc:
                raise _Refused(f"cannot run {cmd[0]}: {exc.strerror or exc}") from None
            out, err = await proc.communicate()
            if proc.returncode != 0:
                raise _Refused(_refusal(self.submit_command, err.decode(errors="replace"), proc.returncode))
            return out.decode()

        async def start(self) -> None:
            try:
                await super().start()
            except _Refused as exc:
                from distributed import Status

                refused.append(str(exc))
                self.status = Status.running  # no job: the run's executor ends the run with the reason

    Job.__name__ = Job.__qualname__ = base.__name__
    return Job


def jobqueue_cluster(cfg: ClusterConfig, env: dict[str, str], *, log_dir: Path | None = None,
                     refused: list[str] | None = None, quiet: bool = True) -> Any:
    """The dask-jobqueue cluster object of a ``slurm`` or ``pbs`` config (nothing is submitted until it is
    scaled; ``.job_script()`` shows what would be). ``log_dir``: the jobs' outputs (else SLURM's default, the
    folder ``sbatch`` runs in); ``refused``: where submissions the batch system refused are recorded; ``quiet``:
    Dask logs errors only (else as configured: a run routes them to its log folder)."""
    from dask_jobqueue import PBSCluster, SLURMCluster
    from dask_jobqueue.pbs import PBSJob
    from dask_jobqueue.slurm import SLURMJob

    # one Dask thread per worker (one piece at a time; its kernels use the OpenMP/torch threads): jobqueue
    # gives each worker cores // processes threads, so it is told of `processes` cores and the job asks
    # the batch system for all of them (job_cpu, resource_spec)
    refused = [] if refused is None else refused
    common: dict[str, Any] = {
        "cores": cfg.processes, "memory": cfg.memory, "processes": cfg.processes, "walltime": cfg.walltime,
        "queue": cfg.queue, "account": cfg.account, "interface": cfg.interface, "job_name": "strata",
        "job_script_prologue": [*cfg.prologue, *(f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items()))],
        "scheduler_options": {"dashboard_address": f":{cfg.dashboard_port or 0}"},
        "log_directory": str(log_dir) if log_dir is not None else None,
        "silence_logs": "error" if quiet else False,
    }
    extra = list(cfg.job_extra)
    if cfg.kind == "slurm":
        if cfg.gpus:
            extra.append(f"--gres=gpu:{cfg.gpus}")
        return SLURMCluster(**common, job_cpu=cfg.cores, job_extra_directives=extra,
                            job_cls=_job_class(SLURMJob, refused))
    if cfg.kind == "pbs":
        mem = cfg.memory.replace("iB", "b").replace("B", "b").lower().replace(" ", "")
        spec = f"select=1:ncpus={cfg.cores}:mem={mem}" + (f":ngpus={cfg.gpus}" if cfg.gpus else "")
        return PBSCluster(**common, resource_spec=spec, job_extra_directives=extra,
                          job_cls=_job_class(PBSJob, refused))
    raise InputError(f"cluster kind {cfg.kind} is not a batch system (slurm, pbs)")
