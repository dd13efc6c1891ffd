"""`strata catalog du | rm | gc`: one error line when a removal would orphan datasets, dry runs change nothing."""

from __future__ import annotations

import numpy as np
import xarray as xr

from data_catalog import Catalog, make_key


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
    assert marker.read_text().strip() == '{"format": 1}'  # written with the first dataset
    assert strata_offline("catalog", "list").returncode == 0
    for fmt, says in ((99, "upgrade strata to open it"), (0, "`strata catalog reindex` migrates it")):
        marker.write_text(f'{{"format": {fmt}}}\n')
        proc = strata_offline("catalog", "list", check=False)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and says in proc.stderr, proc.stderr
    assert strata_offline("catalog", "reindex").returncode == 0  # what the message says to run
    assert strata_offline.json("catalog", "list")[0]["step"] == "a" and '"format": 1' in marker.read_text()


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
