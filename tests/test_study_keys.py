"""Every study's keys, pinned: the key of each step that a run of each study and preset plans, against
``tests/data/study_keys.json`` (recorded at issue 28's base commit, before the layer around the studies was
redesigned). A key is the cache: a refactor that changes one makes every user's root compute again, so a change
must be on purpose. Then rewrite the file and say which keys changed and why in the commit:

    STRATA_WRITE_KEYS=1 .venv/bin/python -m pytest tests/test_study_keys.py

Planning is cheap (no science, an empty root): every preset of every study in a few seconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from data_catalog import Catalog
from flows.plan import plan_study
from pipelines.config import load_study
from pipelines.registry import STUDIES, load_flow, models
from studies import study_file

PINNED = Path(__file__).parent / "data" / "study_keys.json"


def planned_keys(tmp_path: Path) -> dict[str, dict[str, dict]]:
    """{study: {preset: {"steps": [[step, key], …], "outputs": {name: key}}}}."""
    out: dict[str, dict[str, dict]] = {}
    for name in sorted(STUDIES):
        for preset in yaml.safe_load((study_file(name)).read_text()).get("presets") or {}:
            loaded = load_study(name, preset, [], models())
            cat = Catalog(tmp_path / f"{name}-{preset}")
            try:
                steps, outputs = plan_study(load_flow(name), loaded.config, cat)
            finally:
                cat.close()
            out.setdefault(name, {})[preset] = {"steps": [[s.step, s.key] for s in steps],
                                                       "outputs": {k: r.key for k, r in outputs.items()}}
    return out


def test_every_study_plans_the_pinned_keys(tmp_path):
    now = planned_keys(tmp_path)
    if os.environ.get("STRATA_WRITE_KEYS"):
        PINNED.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"wrote {PINNED}")
    pinned = json.loads(PINNED.read_text())
    assert sorted(now) == sorted(pinned), "studies added or removed: rewrite the pinned keys"
    changed = [f"{study} {preset}: {step} {old} -> {new}"
               for study in pinned for preset in pinned[study]
               for (step, old), (_, new) in zip(pinned[study][preset]["steps"],
                                                now[study].get(preset, {"steps": []})["steps"], strict=False)
               if old != new]
    assert not changed, "keys changed (a user's root computes again):\n" + "\n".join(changed[:20])
    assert now == pinned  # and nothing added, removed or reordered
