"""Runtime settings that need no server: the root-server and quiet-cluster switches are settings
Prefect and distributed know."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

from flows.server import server_env


def test_root_server_switches_are_prefect_settings(tmp_path):
    """The root server's start-up switches, read back as the server process sees its environment:
    a misspelt one would be ignored silently."""
    code = ("import json; from prefect.settings import Settings; s = Settings().server; "
            "print(json.dumps({'triggers': s.services.triggers.enabled, 'blocks': s.register_blocks_on_start, "
            "'memo': s.memoize_block_auto_registration, 'migrate': s.database.migrate_on_start, "
            "'analytics': s.analytics_enabled, 'ui': s.ui.enabled, 'home': str(Settings().home)}))")
    env = server_env(tmp_path)
    def run() -> dict:
        return json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                         check=True).stdout)

    got = run()
    assert got == {"triggers": False, "blocks": False, "memo": False, "migrate": True, "analytics": False,
                   "ui": True, "home": str(tmp_path)}
    (tmp_path / f".migrated-{metadata.version('prefect')}").touch()
    env = server_env(tmp_path)  # this Prefect has migrated this home's database: no migration at start
    assert run()["migrate"] is False


def test_quiet_cluster_keys_are_dask_settings():
    """A misspelt key would be ignored silently: each one must be a setting distributed defines."""
    import dask
    import distributed  # noqa: F401  (loads distributed's defaults)

    from flows.runtime import _QUIET_CLUSTER

    for key, value in _QUIET_CLUSTER.items():
        default = dask.config.get(key)  # KeyError if distributed has no such setting
        assert type(default) is type(value), key
    assert _QUIET_CLUSTER["distributed.worker.profile.enabled"] is False
