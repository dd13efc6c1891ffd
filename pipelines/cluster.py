"""Where a run's pieces compute, as configuration: a ``cluster:`` section in the study file or in a file given
with ``--cluster FILE``. Kinds: ``local`` (a Dask LocalCluster of ``workers`` processes, as ``--workers``),
``address`` (a running ``dask scheduler``, as ``--dask-address``), ``slurm`` and ``pbs`` (a dask-jobqueue
cluster: batch jobs of ``cores`` and ``memory`` each, each running ``processes`` Dask workers).

Compute nodes need the data root (shared storage or object storage) and are given the Prefect API URL; the
thread counts of Devito/OpenMP and torch per worker come from ``threads_per_worker``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from strata_errors import InputError

from .config import StudyConfig

__all__ = ["ClusterConfig", "Adaptive", "load_cluster", "jobqueue_cluster", "worker_env"]

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


def worker_env(cfg: ClusterConfig, root: str, api_url: str | None) -> dict[str, str]:
    """What every worker process gets: the data root, the Prefect API, its thread counts."""
    env = {"STRATA_HOME": root, "DEVITO_LANGUAGE": "openmp"}
    env.update({v: str(cfg.threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def jobqueue_cluster(cfg: ClusterConfig, env: dict[str, str]) -> Any:
    """The dask-jobqueue cluster object of a ``slurm`` or ``pbs`` config (nothing is submitted until it is
    scaled; ``.job_script()`` shows what would be)."""
    import shlex

    from dask_jobqueue import PBSCluster, SLURMCluster

    # one Dask thread per worker (one piece at a time; its kernels use the OpenMP/torch threads): jobqueue
    # gives each worker cores // processes threads, so it is told of `processes` cores and the job asks
    # the batch system for all of them (job_cpu, resource_spec)
    common: dict[str, Any] = {
        "cores": cfg.processes, "memory": cfg.memory, "processes": cfg.processes, "walltime": cfg.walltime,
        "queue": cfg.queue, "account": cfg.account, "interface": cfg.interface, "job_name": "strata",
        "job_script_prologue": [*cfg.prologue, *(f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items()))],
    }
    extra = list(cfg.job_extra)
    if cfg.kind == "slurm":
        if cfg.gpus:
            extra.append(f"--gres=gpu:{cfg.gpus}")
        return SLURMCluster(**common, job_cpu=cfg.cores, job_extra_directives=extra)
    if cfg.kind == "pbs":
        mem = cfg.memory.replace("iB", "b").replace("B", "b").lower().replace(" ", "")
        spec = f"select=1:ncpus={cfg.cores}:mem={mem}" + (f":ngpus={cfg.gpus}" if cfg.gpus else "")
        return PBSCluster(**common, resource_spec=spec, job_extra_directives=extra)
    raise InputError(f"cluster kind {cfg.kind} is not a batch system (slurm, pbs)")
