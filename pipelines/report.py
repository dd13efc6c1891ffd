"""The HTML report of a run: parameters, plots of its outputs, steps and lineage (from the catalog)."""

from __future__ import annotations

import html
import json
import os
import shutil
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
    from flows.code import module_source_hash

    version = (module_source_hash("tasks.plots") or "0")[:8]
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


def _small_tables(catalog: Any, outputs: dict[str, Any]) -> str:
    """Outputs whose variables are all 1-D over one dim of at most 50 entries (e.g. metrics per
    iteration), as HTML tables: one row per entry, one column per variable."""
    parts = []
    for name, ref in outputs.items():
        with catalog.open(ref.key, dask=False) as ds:
            dims = {v.dims for v in ds.data_vars.values()}
            if len(dims) != 1 or len(next(iter(dims))) != 1 or ds.sizes[next(iter(dims))[0]] > 50:
                continue
            dim = next(iter(dims))[0]
            ds = ds.load()
        names = list(ds.data_vars)
        rows = [[str(ds[dim].values[i])] + [f"{float(ds[n].values[i]):.4g}" for n in names]
                for i in range(ds.sizes[dim])]
        parts.append(f"<h3>{html.escape(name)} ({html.escape(ref.kind)})</h3>"
                     + _table([dim, *names], rows))
    return "".join(parts)


def write_report(catalog: Any, result: Any, loaded: Any, seconds: float) -> Path:
    """Write ``<root>/reports/<flow_run_id>/index.html`` (+ one PNG per output) and return its path."""
    out_dir = catalog.storage.cache_dir() / "reports" / result.flow_run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = []
    for name, ref in result.outputs.items():
        png = out_dir / f"{name}.png"
        _place(cached_plot(catalog, ref.key), png)
        figures.append(f"<figure><img src='{png.name}' alt='{html.escape(name)}'>"
                       f"<figcaption>{html.escape(name)}: {ref.kind} <code>{ref.key}</code></figcaption></figure>")
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
