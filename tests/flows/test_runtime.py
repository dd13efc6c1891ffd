"""Runtime settings that need no server: the quiet-server and quiet-cluster switches are settings
Prefect and distributed know."""

from __future__ import annotations

import json
import subprocess
import sys

from flows.runtime import _QUIET_SERVER


def test_quiet_server_switches_are_prefect_settings():
    # read back in a fresh interpreter, as the server process sees its environment
    code = ("import json; from prefect.settings import Settings; s = Settings().server.services; "
            "print(json.dumps([n for n in type(s).model_fields if getattr(getattr(s, n), 'enabled', None) is False]))")
    out = subprocess.run([sys.executable, "-c", code], env={**_QUIET_SERVER, "PATH": ""}, capture_output=True,
                         text=True, check=True).stdout
    disabled = set(json.loads(out))
    assert {"cancellation_cleanup", "foreman", "late_runs", "scheduler", "triggers"} <= disabled
    assert "event_persister" not in disabled and "task_run_recorder" not in disabled  # task runs still recorded
    assert len(disabled) >= len(_QUIET_SERVER)  # every switch took effect (event_logger is off by default)


def test_quiet_cluster_keys_are_dask_settings():
    """A misspelt key would be ignored silently: each one must be a setting distributed defines."""
    import dask
    import distributed  # noqa: F401  (loads distributed's defaults)

    from flows.runtime import _QUIET_CLUSTER

    for key, value in _QUIET_CLUSTER.items():
        default = dask.config.get(key)  # KeyError if distributed has no such setting
        assert type(default) is type(value), key
    assert _QUIET_CLUSTER["distributed.worker.profile.enabled"] is False
