"""`strata catalog du | rm | gc`: one error line when a removal would orphan datasets, dry runs change nothing."""

from __future__ import annotations

import json
import shutil

import numpy as np
import xarray as xr

from data_catalog import Catalog, make_key
from tests.conftest import Strata


def _put(cat, step, inputs=()):
    key = make_key(step, "1", {}, list(inputs))
    cat.claim(key, "t", "thing", step, "1")
    ds = xr.Dataset({"v": ("x", np.arange(4.0))})
    return cat.write(key, "thing", ds, {"step": step, "version": "1", "params": {}, "inputs": list(inputs),
                                        "code": {}, "study": "demo"})


def test_du_rm_gc_commands(strata_offline):
    cat = Catalog(strata_offline.root)
    a = _put(cat, "a")
    b = _put(cat, "b", [a.key])
    cat.close()
    du = strata_offline.json("catalog", "du")
    assert du["by_kind"]["thing"] > 0 and du["by_study"] == {"demo": du["by_kind"]["thing"]}
    proc = strata_offline("catalog", "rm", a.key[:8], check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "depend on it" in proc.stderr
    dry = strata_offline.json("catalog", "rm", a.key, "--with-dependents", "--dry-run")
    assert [r["key"] for r in dry["removed"]] == [b.key, a.key]
    assert len(strata_offline.json("catalog", "list")) == 2  # a dry run removes nothing
    assert "removed" in strata_offline("catalog", "rm", b.key).stdout
    assert [r["key"] for r in strata_offline.json("catalog", "list")] == [a.key]
    assert strata_offline("catalog", "gc").stdout.strip() == "nothing to collect"


def test_a_root_of_another_format_is_refused_in_one_line(strata_offline):
    cat = Catalog(strata_offline.root)
    _put(cat, "a")
    cat.close()
    marker = strata_offline.root / "strata-root.json"
    assert json.loads(marker.read_text()) == {"format": 1, "root": str(strata_offline.root.resolve())}  # first dataset
    assert strata_offline("catalog", "list").returncode == 0
    for fmt, says in ((99, "upgrade strata to open it"), (0, "`strata catalog reindex` migrates it")):
        marker.write_text(f'{{"format": {fmt}}}\n')
        proc = strata_offline("catalog", "list", check=False)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and says in proc.stderr, proc.stderr
    assert strata_offline("catalog", "reindex").returncode == 0  # what the message says to run
    assert strata_offline.json("catalog", "list")[0]["step"] == "a" and '"format": 1' in marker.read_text()


def test_a_copied_root_is_refused_until_reindexed_and_never_touches_the_original(strata_offline, tmp_path):
    """The index holds the datasets' paths: a copy used as is would read, and remove, the original's datasets."""
    cat = Catalog(strata_offline.root)
    a = _put(cat, "a")
    cat.close()
    copy = Strata(tmp_path / "copy", None)
    shutil.copytree(strata_offline.root, copy.root)
    for args in (["catalog", "list"], ["catalog", "rm", a.key], ["catalog", "gc"]):
        proc = copy(*args, check=False)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert "(moved or copied): `strata catalog reindex --root" in proc.stderr
    assert copy("catalog", "reindex").returncode == 0
    assert copy("catalog", "rm", a.key).returncode == 0 and copy.json("catalog", "list") == []
    assert [r["key"] for r in strata_offline.json("catalog", "list")] == [a.key]  # the original keeps it
    assert strata_offline("catalog", "verify").returncode == 0


def test_plot_and_segy_export_refuse_targets_they_cannot_write(strata_offline, tmp_path):
    cat = Catalog(strata_offline.root)
    a = _put(cat, "a")
    cat.close()
    for args, says in ((["plot", a.key, "-o", str(tmp_path / "missing" / "x.png")], "folder"),
                       (["plot", a.key, "-o", str(tmp_path)], "is a directory"),
                       (["segy", "export", a.key, str(tmp_path / "missing" / "x.sgy")], "")):
        proc = strata_offline(*args, check=False)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and proc.stderr.startswith("error:"), args
        assert says in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "missing").exists()  # nothing created on the way


def test_gc_older_than_lists_then_removes_unreferenced_outputs(strata_offline):
    """`gc --older-than 7d`: a failed run's datasets of ten days ago go (with --dry-run: are listed only); what the
    newest completed run of its configuration made stays, and so does what was made today."""
    from datetime import UTC, datetime, timedelta

    from data_catalog import owner_id

    old = (datetime.now(UTC) - timedelta(days=10)).isoformat(timespec="seconds")
    cat = Catalog(strata_offline.root)

    def made(step, run, inputs=(), created=old):
        key = make_key(step, "1", {}, list(inputs))
        assert cat.claim(key, owner_id(run), "thing", step, "1") is None
        return cat.write(key, "thing", xr.Dataset({"v": ("x", np.arange(4.0))}),
                         {"step": step, "version": "1", "params": {}, "inputs": list(inputs), "code": {},
                          "study": "demo", "flow_run_id": run, "created": created})

    cat.index.put_run("ok", study="demo", preset="tiny", overrides=[], started=old, status="COMPLETE")
    a = made("a", "ok")
    cat.index.put_run("failed", study="demo", preset="tiny", overrides=["x=1"], started=old, status="FAIL")
    b = made("b", "failed", [a.key])
    c = made("c", "failed", [b.key])
    today = made("today", "failed", created=datetime.now(UTC).isoformat(timespec="seconds"))
    cat.close()

    bad = strata_offline("catalog", "gc", "--older-than", "a week", check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--older-than 'a week'" in bad.stderr
    assert strata_offline("catalog", "gc").stdout.strip() == "nothing to collect"  # without --older-than
    dry = strata_offline.json("catalog", "gc", "--older-than", "7d", "--dry-run")
    assert dry["dry_run"] and dry["removed"] == [] and [r["key"] for r in dry["unreferenced"]] == [c.key, b.key]
    assert len(strata_offline.json("catalog", "list")) == 4  # a dry run removes nothing
    out = strata_offline("catalog", "gc", "--older-than", "7d").stdout
    assert out.splitlines()[-1] == "2 unreferenced dataset(s) removed" and c.key in out and b.key in out
    assert {r["key"] for r in strata_offline.json("catalog", "list")} == {a.key, today.key}
    assert not (strata_offline.root / "datasets" / "thing" / f"{b.key}.zarr").exists()
    assert strata_offline("catalog", "verify").returncode == 0
    assert today.key in strata_offline("catalog", "gc", "--older-than", "0s").stdout  # any age: only a stays
    assert [r["key"] for r in strata_offline.json("catalog", "list")] == [a.key]
