"""Where a run's pieces compute, as configuration: a ``cluster:`` section in the study file or in a file given
with ``--cluster FILE``. Kinds: ``local`` (a Dask LocalCluster of ``workers`` processes, as ``--workers``),
``address`` (a running ``dask scheduler``, as ``--dask-address``), ``slurm`` and ``pbs`` (a dask-jobqueue
cluster: batch jobs of ``cores`` and ``memory`` each, each running ``processes`` Dask workers).

A batch cluster (:class:`pipelines.batch.BatchCluster`; its jobs: :mod:`pipelines.jobqueue`) is started by the run's
executor when the first piece must be computed (a cached rerun submits no job); its scheduler runs in strata's
process, its logs and the jobs' outputs go to ``<root>/logs/<flow run id>/`` (``log_directory`` moves them), its
dashboard takes a free port (or ``dashboard_port``). Compute nodes need the data root (shared storage or object
storage); they never talk to Prefect (pieces are plain Dask tasks whose results come back to the flow's process), so
the job environment carries no loopback URL of strata's host. Thread counts of Devito/OpenMP and torch per worker
come from ``threads_per_worker``. SLURM's answers become one line each: a refused submission (``sbatch``'s reason),
no worker after ``start_timeout`` (the jobs' pending reasons), a job that ended (its state; its pieces run again on
new jobs, up to ``--retries`` times).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, model_validator

from flows.config import StudyConfig
from strata_errors import InputError

__all__ = ["ClusterConfig", "Adaptive", "load_cluster", "worker_env", "submit_env"]

_WALLTIME = r"^(\d+-)?\d{1,3}:\d{2}(:\d{2})?$"
_MEMORY = r"^\d+(\.\d+)?\s*(B|[KMGTP]i?B|[KMGTP])$"


class Adaptive(StudyConfig):
    """Scale between ``minimum`` and ``maximum`` jobs with the work waiting (dask-jobqueue ``adapt``)."""

    minimum: int = Field(0, ge=0, le=10_000)
    maximum: int = Field(4, ge=1, le=10_000)

    @model_validator(mode="after")
    def _order(self) -> Adaptive:
        if self.minimum > self.maximum:
            raise ValueError(f"adaptive: minimum {self.minimum} > maximum {self.maximum}")
        return self


class ClusterConfig(StudyConfig):
    """A ``cluster:`` section."""

    kind: Literal["local", "address", "slurm", "pbs"] = "local"
    address: str | None = None                      # kind address: tcp://host:port of the scheduler
    workers: int = Field(1, ge=1, le=10_000)        # local: worker processes; slurm/pbs: jobs (without adaptive)
    cores: int = Field(1, ge=1, le=1024)            # slurm/pbs: cores per job
    memory: Annotated[str, Field(pattern=_MEMORY)] = "4GiB"   # slurm/pbs: memory per job
    processes: int = Field(1, ge=1, le=1024)        # slurm/pbs: Dask workers per job (cores shared among them)
    threads_per_worker: int | None = Field(None, ge=1, le=1024)  # OpenMP/torch threads; default cores // processes
    walltime: Annotated[str, Field(pattern=_WALLTIME)] = "01:00:00"
    queue: str | None = None
    account: str | None = None
    gpus: int = Field(0, ge=0, le=64)               # per job
    adaptive: Adaptive | None = None
    interface: str | None = None                    # network interface compute nodes reach the scheduler on
    job_extra: tuple[str, ...] = ()                 # further #SBATCH / #PBS directives
    prologue: tuple[str, ...] = ()                  # shell lines before the worker starts (module load ...)
    start_timeout: float = Field(600.0, gt=0, le=7 * 86_400)  # s without any worker (jobs pending): the run fails
    log_directory: str | None = None                # slurm/pbs: job outputs and Dask logs (default <root>/logs)
    dashboard_port: int | None = Field(None, ge=0, le=65_535)  # the scheduler's dashboard (default: a free port)

    @model_validator(mode="after")
    def _consistent(self) -> ClusterConfig:
        if self.kind == "address" and not self.address:
            raise ValueError("kind address needs address: tcp://HOST:PORT of a running dask scheduler")
        if self.kind != "address" and self.address:
            raise ValueError(f"address is for kind address, not {self.kind}")
        if self.processes > self.cores:
            raise ValueError(f"processes {self.processes} > cores {self.cores}: each worker needs a core")
        return self

    @property
    def threads(self) -> int:
        return self.threads_per_worker or max(1, self.cores // self.processes)


def load_cluster(path: str | Path | None, study_file: Path | None) -> ClusterConfig | None:
    """The ``cluster:`` section of ``path`` (``--cluster FILE``), else of the study file, else None."""
    import yaml

    for source in (path, study_file):
        if source is None:
            continue
        source = Path(source)
        try:
            doc = yaml.safe_load(source.read_text())
        except OSError as exc:
            raise InputError(f"cannot read cluster file {source}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise InputError(f"{source}: not valid YAML ({str(exc).splitlines()[0]})") from None
        section = doc.get("cluster") if isinstance(doc, dict) else None
        if section is None:
            if source == Path(path or ""):
                raise InputError(f"{source}: a cluster file is a mapping with a cluster: section")
            continue
        try:
            return ClusterConfig.model_validate(section)
        except ValidationError as exc:  # the first problem, in one line
            err = exc.errors()[0]
            field = ".".join(["cluster", *map(str, err["loc"])])
            msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
            got = f" (got {err['input']!r})" if err["loc"] and err["type"] != "extra_forbidden" else ""
            raise InputError(f"{source}: {field}: {msg}{got}") from None
    return None


def _loopback(value: str) -> bool:
    """Is ``value`` a URL whose host is this machine's loopback (127.0.0.0/8, ::1, localhost, a name of them)?"""
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return False
    if not parts.scheme or not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        addrs = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addrs) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs)


def worker_env(cfg: ClusterConfig, root: str, api_url: str | None) -> dict[str, str]:
    """What every worker process gets: the data root, its thread counts, and the Prefect API if a compute node can
    reach it (not a loopback address; workers do not need it: pieces report through Dask)."""
    env = {"STRATA_HOME": root, "DEVITO_LANGUAGE": "openmp"}
    env.update({v: str(cfg.threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    if api_url and not _loopback(api_url):
        env["PREFECT_API_URL"] = api_url
    return env


def submit_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment ``sbatch``/``qsub`` run in (SLURM copies it into the job): strata's, less the URLs of this
    machine's loopback (e.g. the root's Prefect server), meaningless on a compute node."""
    environ = dict(os.environ if environ is None else environ)
    return {k: v for k, v in environ.items() if not (("://" in v) and _loopback(v))}
