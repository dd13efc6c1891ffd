"""The Prefect UI of a data root's server asks that server's API: not Prefect's default 127.0.0.1:4200, nor the
server a user's ``PREFECT_API_URL`` names. Checked without a browser (what ``GET /ui-settings`` answers) and in a
real headless browser: Chromium, Debian's package ``chromium`` (the browser test skips where it is missing)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urljoin

import pytest

from flows import server

from ..conftest import Strata

BROWSER = "chromium"  # Debian's package of the same name: apt-get install -y chromium

_UI_SETTINGS = """
from starlette.testclient import TestClient
from prefect.server.api.server import create_ui_app
print(TestClient(create_ui_app(False)).get("/ui-settings").text)
"""


def test_the_ui_settings_of_a_roots_server_name_the_api_it_serves(tmp_path, monkeypatch):
    """What Prefect's UI app answers at ``/ui-settings`` under the environment a root's server gets, with a user's
    shell naming another server: an address that resolves, against every address the UI is served at, to the
    API of that same server (the server's --host: loopback, another address, or every interface)."""
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")  # the user's own server
    monkeypatch.setenv("PREFECT_UI_API_URL", "http://127.0.0.1:4200/api")
    monkeypatch.setenv("PREFECT_SERVER_API_BASE_PATH", "/elsewhere")
    env = server.server_env(tmp_path / "prefect")
    proc = subprocess.run([sys.executable, "-c", _UI_SETTINGS], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    api_url = json.loads(proc.stdout)["api_url"]
    for host, seen_at in [("127.0.0.1", "127.0.0.1"), ("127.0.0.2", "127.0.0.2"), ("0.0.0.0", "127.0.0.1"),
                          ("0.0.0.0", "192.0.2.7")]:  # bound to every interface: reached at any of them
        info = server.ServerInfo(f"http://{host}:43210/api", 1, host, 43210, "log", 0.0, "3")
        assert info.ui == (f"http://{host}:43210" if host != "0.0.0.0" else "http://127.0.0.1:43210")
        assert urljoin(f"http://{seen_at}:43210/v2/runs", api_url) == f"http://{seen_at}:43210/api", api_url
    assert "PREFECT_SERVER_API_BASE_PATH" not in env  # the API stays at /api, where ServerInfo.url and the UI look


def _text(dom: str) -> str:
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


def _page(url: str, profile: Path, *expect: str, budget: int = 15000, patience: float = 45.0) -> str:
    """The text of a UI page once its scripts ran (headless Chromium's DOM), loaded again until it shows every
    string of ``expect`` or ``patience`` seconds passed (the UI fetches the API after it loads)."""
    t0 = time.monotonic()
    while True:
        # virtual time: timers fire at once and the dump waits for the page's fetches, up to ``budget`` ms of
        # the page's time (the V1 UI's run list needs ~60 s of it); a tall window renders every row (that list
        # draws only the rows in view)
        proc = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                               f"--user-data-dir={profile}", "--window-size=1400,2000",
                               f"--virtual-time-budget={budget}", "--dump-dom", url],
                              capture_output=True, text=True, timeout=120)
        text = _text(proc.stdout)
        if all(e in text for e in expect) or time.monotonic() - t0 > patience:
            return text
        time.sleep(1)


def _get(url: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"},
                                 method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _ui_api(ui: str) -> tuple[dict, str]:
    """(the UI's settings, the API address they name, resolved as the browser does against the UI's page)."""
    settings = _get(f"{ui}/ui-settings")
    return settings, urljoin(f"{ui}/", settings["api_url"])


@pytest.mark.prefect
@pytest.mark.slow
def test_the_ui_of_a_roots_server_lists_the_run_and_shows_its_task_runs_and_summary(tmp_path):
    """A run on a root with no PREFECT_API_URL starts the root's server and advertises its UI; in a real browser
    that UI's runs page (both of Prefect's UIs) lists the run, and the flow run's page its task runs and its
    summary artifact (``strata server start --host ADDR`` starts the same server: the fast test above covers the
    UI's address at ADDR)."""
    if shutil.which(BROWSER) is None:
        pytest.skip(f"no headless browser: `{BROWSER}` is not on PATH (Debian: apt-get install -y {BROWSER})")
    s = Strata(tmp_path / "root", None)
    s.env.pop("PREFECT_API_URL", None)
    s.env.pop("STRATA_EPHEMERAL", None)
    profile = tmp_path / "chromium"
    try:
        proc = s("run", "seismic_survey", "--preset", "tiny", "--json")
        out = json.loads(proc.stdout)
        advertised = re.search(r"\(UI (http://[^\s,]+)", proc.stderr)
        assert advertised, proc.stderr[-2000:]
        ui = advertised.group(1)
        info = server.find(s.root / "prefect")  # the root's server, left running by the run
        assert info is not None and info.ui == ui and server.healthy(info.url)
        settings, api = _ui_api(ui)
        assert api == info.url, f"the UI at {ui} asks the API at {api}, its server is {info.url}"
        run = _get(f"{api}/flow_runs/{out['flow_run_id']}")
        tasks = _get(f"{api}/task_runs/filter", {"flow_runs": {"id": {"any_": [run["id"]]}}})
        assert {t["name"].rsplit("-", 1)[0] for t in tasks} >= {"velocity_model", "geometry", "survey"}

        for version in settings["available_uis"]:  # "Switch to V1/V2 UI": the runs page of each
            runs = f"{ui}{settings[f'{version}_base_url'].rstrip('/')}/runs"
            text = _page(runs, profile, run["name"], budget=60000 if version == "v1" else 15000)
            assert not re.search("Can't connect|Unable to connect", text), f"{runs}: {text[:1500]}"
            assert "seismic_survey" in text and run["name"] in text, \
                f"{version} runs page {runs} does not list the run {run['name']}: {text[:1500]}"

        assert "v2" in settings["available_uis"], settings  # the default UI: its flow-run page's tabs
        page = f"{ui}{settings['v2_base_url'].rstrip('/')}/runs/flow-run/{run['id']}"
        text = _page(f"{page}?tab=TaskRuns", profile, *(t["name"] for t in tasks))
        assert all(t["name"] in text for t in tasks), f"{page}?tab=TaskRuns: {text[:1500]}"
        assert re.search(rf"{len(tasks)} Task runs? \({len(tasks)} Completed\)", text), text[:1500]
        text = _page(f"{page}?tab=Artifacts", profile, "strata-seismic-survey")
        assert "strata-seismic-survey" in text and "strata run of seismic_survey" in text, \
            f"{page}?tab=Artifacts: {text[:1500]}"

    finally:
        s("server", "stop", "--root", str(s.root), check=False)
