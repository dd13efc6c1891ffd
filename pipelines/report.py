"""The HTML report of a run: parameters, plots of its outputs, steps and lineage (from the catalog)."""

from __future__ import annotations

import html
import json
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["write_report", "save_plot", "cached_plot"]


def save_plot(catalog: Any, key: str, out: Path) -> Path:
    """Plot a dataset by its kind into ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tasks.plots import plot_dataset

    rec = catalog.get(key)
    with catalog.open(key, dask=False) as ds:
        fig = plot_dataset(ds.load(), rec.kind)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def cached_plot(catalog: Any, key: str) -> Path:
    """The PNG of a dataset, rendered once per (dataset key, plotting code): a dataset never changes
    under its key, so a rerun's report reuses the plots of the datasets it reused."""
    from tasks.plots import code_version

    version = code_version()[:8]
    path = catalog.storage.cache_dir() / "reports" / "plots" / f"{key}-{version}.png"
    if not path.exists():
        tmp = path.with_name(f".{os.getpid()}-{path.name}")  # the suffix tells matplotlib the format
        save_plot(catalog, key, tmp)
        os.replace(tmp, path)
    return path


def _place(src: Path, dst: Path) -> None:
    """``dst`` with the content of ``src``: a hard link where the filesystem allows, else a copy."""
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _metric_table(ds: Any, dim: str) -> str:
    """A dataset of metrics per ``dim`` (e.g. iteration) with standard errors ``<m>_se``: one row per metric,
    one column per entry of ``dim``, cells ``value ± se`` and, where the paired change from the previous
    entry is stored (``<m>_diff``, ``<m>_diff_se``), ``(Δ change ± se)``."""
    labels = [str(v) for v in ds[dim].values]
    rows = []
    for name in sorted(map(str, ds.data_vars)):
        if ds[name].dims != (dim,) or ds[name].dtype.kind not in "biuf" or name.endswith(("_se", "_diff")):
            continue
        cells = []
        for i in range(ds.sizes[dim]):
            cell = f"{float(ds[name].values[i]):.4g}"
            if f"{name}_se" in ds:
                cell += f" ± {float(ds[f'{name}_se'].values[i]):.2g}"
            at = ds[dim].values[i]
            if f"{name}_diff" in ds and "change" in ds.coords and at in ds["change"].values:
                d = float(ds[f"{name}_diff"].sel(change=at))
                se = float(ds[f"{name}_diff_se"].sel(change=at))
                cell += f" (Δ {d:+.3g} ± {se:.2g})"
            cells.append(html.escape(cell))
        rows.append([html.escape(name), *cells])
    return _table(["metric", *[f"{dim} {v}" for v in labels]], rows)


def _small_tables(catalog: Any, outputs: dict[str, Any]) -> str:
    """Small outputs (at most 4 MiB) with variables over one dim of at most 50 entries (e.g. metrics per
    iteration), as HTML tables of the variables over that dim: metrics with standard errors one row per
    metric, anything else one row per entry."""
    parts = []
    for name, ref in outputs.items():
        if ref.kind == "claims":  # a table of its own (:func:`_claims_table`)
            continue
        with catalog.open(ref.key, dask=False) as ds:
            lead = Counter(v.dims[0] for v in ds.data_vars.values() if v.ndim == 1 and v.dtype.kind in "biuf")
            if not lead or ds.nbytes > 2**22:
                continue
            dim = lead.most_common(1)[0][0]  # the dim most variables run along (iteration, not change)
            if ds.sizes[dim] > 50:
                continue
            ds = ds.load()
        if any(str(n).endswith("_se") for n in ds.data_vars):
            body = _metric_table(ds, dim)
        else:
            names = [n for n, v in ds.data_vars.items() if v.dims == (dim,) and v.dtype.kind in "biuf"]
            rows = [[str(ds[dim].values[i])] + [f"{float(ds[n].values[i]):.4g}" for n in names]
                    for i in range(ds.sizes[dim])]
            body = _table([dim, *names], rows)
        parts.append(f"<h3>{html.escape(name)} ({html.escape(ref.kind)})</h3>" + body)
    return "".join(parts)


def _lookup(config: Any, path: str) -> str:
    node: Any = config
    for part in path.split("."):
        node = getattr(node, part, None) if not isinstance(node, dict) else node.get(part)
        if node is None:
            return "—"
    if isinstance(node, tuple | list):
        return " × ".join(map(str, node)) if all(isinstance(v, int | float) for v in node) else str(list(node))
    return str(node)


def _paper_table(loaded: Any) -> str:
    """The paper's set-up (the study file's ``paper`` section) beside this run's: each row names an item, the
    paper's value and either a config field (dotted path, looked up in this run's config) or a text."""
    paper = getattr(loaded, "paper", None)
    if not paper:
        return ""
    rows = []
    for row in paper.get("setup", []):
        ours = str(row.get("preset", "—"))
        ours = _lookup(loaded.config, ours) if row.get("field", True) and "." in ours and " " not in ours else ours
        rows.append([html.escape(str(row.get("item", ""))), html.escape(str(row.get("paper", ""))), html.escape(ours)])
    return (f"<h2>The paper's set-up and this run's</h2><p>{html.escape(str(paper.get('source', '')))}</p>"
            + _table(["", "paper", f"this run (preset {html.escape(loaded.preset or '-')})"], rows))


def _claims_table(catalog: Any, outputs: dict[str, Any]) -> str:
    """The run's claims (output ``claims``): one row per claim with its value, comparison and verdict."""
    if "claims" not in outputs:
        return ""
    from tasks.claims import VERDICT_COLOURS as colour
    from tasks.claims import rows, summary_line

    with catalog.open(outputs["claims"].key, dask=False) as ds:
        ds = ds.load()
    body = [[html.escape(r["id"]), html.escape(r["statement"]), html.escape(r["value"]), html.escape(r["comparison"]),
             f"<span style='background:{colour[r['verdict']]};padding:0 4px'>{r['verdict']}</span>",
             html.escape(r["paper"] or "—"), html.escape(r["source"]), html.escape(r["note"])] for r in rows(ds)]
    return (f"<h2>The paper's claims on this run</h2><p>{html.escape(summary_line(ds))}</p>"
            + _table(["claim", "statement", "value ± SE", "comparison", "verdict", "paper's value", "source",
                      "note"], body))


def write_report(catalog: Any, result: Any, loaded: Any, seconds: float) -> Path:
    """Write ``<root>/reports/<flow_run_id>/index.html`` (+ one PNG per output) and return its path."""
    out_dir = catalog.storage.cache_dir() / "reports" / result.flow_run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = []
    for name, ref in result.outputs.items():
        png = out_dir / f"{name}.png"
        _place(cached_plot(catalog, ref.key), png)
        with catalog.open(ref.key, dask=False) as ds:
            note = ds.attrs.get("note")
        note = f"<br>{html.escape(str(note))}" if isinstance(note, str) and note else ""
        figures.append(f"<figure><img src='{png.name}' alt='{html.escape(name)}'>"
                       f"<figcaption>{html.escape(name)}: {ref.kind} <code>{ref.key}</code>{note}</figcaption>"
                       "</figure>")
    params = json.dumps(loaded.config.model_dump(mode="json"), indent=2)
    tables = _small_tables(catalog, result.outputs)
    steps = [[html.escape(s.step), html.escape(s.label or ""), f"<code>{s.key}</code>", s.kind,
              s.status, f"{s.seconds:.2f}"] for s in result.steps]
    lineage_rows = []
    for s in result.steps:
        rec = catalog.get(s.key)
        inputs = ", ".join(f"<code>{k[:10]}</code>" for k in (rec.inputs if rec else []))
        code = rec.code if rec else {}
        lineage_rows.append([f"<code>{s.key}</code>", html.escape(s.step), inputs or "—",
                             html.escape(str(code.get("version"))), html.escape(str(code.get("git_sha"))[:10]),
                             "dirty" if code.get("dirty") else "clean"])
    t = result.timings
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(result.study)} report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px}} img{{max-width:100%}}
figure{{margin:1em 0}}</style></head><body>
<h1>{html.escape(result.study)} — preset {html.escape(loaded.preset or '-')}</h1>
<p>{html.escape(loaded.description)}</p>
<p>flow run <code>{result.flow_run_id}</code>; data root <code>{html.escape(catalog.root)}</code>;
overrides: <code>{html.escape(' '.join(loaded.overrides) or 'none')}</code>; {seconds:.1f} s in all
(Prefect start-up {t.get('prefect_startup_s', 0):.1f} s, steps {t.get('steps_s', 0):.1f} s).</p>
{_claims_table(catalog, result.outputs)}
{_paper_table(loaded)}
<h2>Plots</h2>{''.join(figures)}
{'<h2>Tables</h2>' + tables if tables else ''}
<h2>Parameters</h2><pre>{html.escape(params)}</pre>
<h2>Steps</h2>{_table(['step', 'label', 'key', 'kind', 'status', 'seconds'], steps)}
<h2>Lineage</h2>{_table(['dataset', 'step', 'inputs', 'code version', 'git', 'tree'], lineage_rows)}
</body></html>"""
    path = out_dir / "index.html"
    path.write_text(doc)
    (out_dir / "run.json").write_text(json.dumps({"timings": t, "seconds": seconds}, indent=2))
    return path
