"""What a batch job gets (no SLURM needed): no URL of strata's loopback, in the job script or in the environment
``sbatch`` copies into the job; the cluster section's new fields."""

from __future__ import annotations

import pytest

from pipelines.cluster import ClusterConfig, load_cluster, submit_env, worker_env
from strata_errors import InputError


@pytest.mark.parametrize("url,kept", [
    ("http://127.0.0.1:4200/api", False), ("http://localhost:4200/api", False), ("http://[::1]:4200/api", False),
    ("http://127.0.1.1:8080/api", False), ("http://10.0.0.7:4200/api", True), ("https://prefect.example.org/api", True),
])
def test_the_prefect_api_reaches_the_workers_only_from_another_address(url, kept):
    cfg = ClusterConfig(kind="slurm")
    assert ("PREFECT_API_URL" in worker_env(cfg, "/shared/root", url)) is kept


def test_sbatch_runs_without_loopback_urls():
    env = submit_env({"PATH": "/usr/bin", "PREFECT_API_URL": "http://127.0.0.1:4242/api",
                      "AWS_ENDPOINT_URL": "http://localhost:9000", "HTTP_PROXY": "http://10.1.2.3:3128",
                      "NOTE": "see http://127.0.0.1 later"})
    assert env == {"PATH": "/usr/bin", "HTTP_PROXY": "http://10.1.2.3:3128", "NOTE": "see http://127.0.0.1 later"}


def test_new_fields_have_their_defaults_and_limits(tmp_path):
    cfg = ClusterConfig(kind="slurm")
    assert (cfg.start_timeout, cfg.log_directory, cfg.dashboard_port) == (600.0, None, None)
    f = tmp_path / "c.yaml"
    f.write_text("cluster:\n  kind: slurm\n  start_timeout: 0\n")
    with pytest.raises(InputError, match="cluster.start_timeout: Input should be greater than 0"):
        load_cluster(f, None)
    f.write_text("cluster:\n  kind: slurm\n  dashboard_port: 70000\n")
    with pytest.raises(InputError, match="cluster.dashboard_port"):
        load_cluster(f, None)
