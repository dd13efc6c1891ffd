"""Cluster configurations: SLURM and PBS clusters built through dask-jobqueue print job scripts with what was
configured (no queue system here, nothing submitted); bad sections are one error line."""

from __future__ import annotations

import pytest

from pipelines.cluster import ClusterConfig, load_cluster, worker_env
from pipelines.jobqueue import jobqueue_cluster
from strata_errors import InputError

SECTION = {"cores": 8, "memory": "16GiB", "walltime": "02:30:00", "queue": "compute", "account": "geo42",
           "processes": 2, "gpus": 1, "prologue": ["module load gcc/12"]}


@pytest.mark.parametrize("kind,expected", [
    ("slurm", ["#SBATCH -p compute", "#SBATCH -A geo42", "#SBATCH --cpus-per-task=8", "#SBATCH --mem=16G",
               "#SBATCH -t 02:30:00", "#SBATCH --gres=gpu:1"]),
    ("pbs", ["#PBS -q compute", "#PBS -A geo42", "#PBS -l select=1:ncpus=8:mem=16gb:ngpus=1",
             "#PBS -l walltime=02:30:00"]),
])
def test_batch_clusters_print_their_job_scripts(kind, expected):
    cfg = ClusterConfig(kind=kind, **SECTION)
    cluster = jobqueue_cluster(cfg, worker_env(cfg, "/shared/strata", "http://10.0.0.7:4200/api"))
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    lines = script.splitlines()
    for line in expected:
        assert line in lines, (line, script)
    for line in ("module load gcc/12", "export STRATA_HOME=/shared/strata", "export OMP_NUM_THREADS=4",
                 "export PREFECT_API_URL=http://10.0.0.7:4200/api"):
        assert line in lines, (line, script)
    worker = next(x for x in lines if "dask_worker" in x)
    assert "--nthreads 1" in worker and "--nworkers 2" in worker  # one piece at a time per worker process


def test_cluster_script_command_reads_a_cluster_file(strata_offline, tmp_path):
    f = tmp_path / "cluster.yaml"
    f.write_text("cluster:\n  kind: pbs\n  cores: 4\n  memory: 8GiB\n  walltime: '00:30:00'\n  queue: short\n")
    proc = strata_offline("cluster", "script", "seismic_survey", "--preset", "tiny", "--cluster", str(f))
    assert "#PBS -q short" in proc.stdout and "#PBS -l select=1:ncpus=4:mem=8gb" in proc.stdout
    assert f"export STRATA_HOME={strata_offline.root}" in proc.stdout


@pytest.mark.parametrize("text,match", [
    ("cluster:\n  kind: slurm\n  cores: 2\n  processes: 4\n", "processes 4 > cores 2"),
    ("cluster:\n  kind: address\n", "needs address"),
    ("cluster:\n  kind: sge\n", "kind"),
    ("cluster:\n  kind: slurm\n  walltime: 3 hours\n", "walltime"),
    ("nothing: here\n", "a cluster file is a mapping with a cluster: section"),
])
def test_bad_cluster_sections_are_one_error(tmp_path, text, match):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(InputError, match=match) as err:
        load_cluster(f, None)
    assert "\n" not in str(err.value)


def test_local_and_address_clusters_need_no_job_script(strata_offline, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("cluster:\n  kind: local\n  workers: 2\n")
    proc = strata_offline("cluster", "script", "seismic_survey", "--cluster", str(f), check=False)
    assert proc.returncode == 2 and "no slurm or pbs cluster section (kind: local)" in proc.stderr
