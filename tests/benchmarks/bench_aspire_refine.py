"""Does ASPIRE's second iteration refine on seismic imaging? ``aspire_seismic`` run through ``strata run`` on one
data root, with cross-fitting (the preset's ``aspire.cross_fit``) and then without (``cross_fit = 1``): the
second run reuses the surveys, the first gradients and the first CNF (their keys do not depend on the
folds) and recomputes only the estimates, the second gradients and the second CNF.

Prints per run the metric table per iteration (value ± SE over the held-out cases), iteration 2 − iteration 1
paired over cases for rmse and nll (the claim: better by more than 2 paired SE), the baselines
(``rmse_linear`` at iteration 1 is the ridge regression on [s¹, x̂⁰], at iteration 2 on [s², x̂¹]: what the
second gradient adds to a linear predictor), and the ablation cross_fit F vs 1 (coverage_90, nll at
iteration 2), with the wall time of each run.

Usage: .venv/bin/python tests/benchmarks/bench_aspire_refine.py [--preset medium] [--workers 2]
       [--root DIR] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from data_catalog import Catalog  # noqa: E402

ROWS = ("rmse", "rmse_linear", "rmse_prior_mean", "nll", "coverage_50", "coverage_90", "mean_std", "ssim")


def run(root: Path, preset: str, workers: int, sets: list[str]) -> tuple[dict, float]:
    strata = REPO / ".venv" / "bin" / "strata"
    args = [str(strata), "run", "aspire_seismic", "--preset", preset, "--root", str(root), "--json"]
    args += ["--workers", str(workers)] if workers > 1 else []
    for s in sets:
        args += ["--set", s]
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"strata run failed ({' '.join(args)}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout), time.perf_counter() - t0


def report(cat: Catalog, out: dict, title: str, seconds: float) -> dict:
    m = cat.open(out["outputs"]["metrics"]).load()
    its = m.iteration.values.tolist()
    print(f"\n## {title}: {seconds / 60:.1f} min, {len(out['computed'])} datasets computed, "
          f"{len(out['reused'])} reused ({m.attrs.get('cases')} held-out cases, {m.attrs.get('draws')} draws)")
    print(f"{'metric':18s}" + "".join(f"{'iteration ' + str(k):>22s}" for k in its))
    for name in ROWS:
        if name in m:
            cells = [f"{float(m[name].sel(iteration=k)):.4g} ± {float(m[name + '_se'].sel(iteration=k)):.2g}"
                     for k in its]
            print(f"{name:18s}" + "".join(f"{c:>22s}" for c in cells))
    if "coverage_90_nominal" in m:
        print(f"{'(calibrated cov90)':18s}" + "".join(f"{float(m.coverage_90_nominal.sel(iteration=k)):>22.3f}"
                                                     for k in its))
    result = {"metrics": m}
    if len(its) > 1:
        for name in ("rmse", "nll"):
            d, se = float(m[name + "_diff"].sel(change=its[1])), float(m[name + "_diff_se"].sel(change=its[1]))
            verdict = "better" if d < -2 * se else ("worse" if d > 2 * se else "no clear change")
            print(f"iteration {its[1]} - {its[0]} {name}: {d:+.4g} ± {se:.2g} (paired): {verdict} by the 2-SE rule")
            result[name] = (d, se)
        last = m.sel(iteration=its[-1])
        print(f"last iteration: rmse / rmse_prior_mean = {float(last.rmse / last.rmse_prior_mean):.3f}, "
              f"rmse / rmse_linear = {float(last.rmse / last.rmse_linear):.3f}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--root", type=Path, default=None, help="data root (default: a fresh temporary folder)")
    ap.add_argument("--set", dest="sets", action="append", default=[])
    args = ap.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="bench-aspire-refine-"))
    print(f"aspire_seismic preset {args.preset}, {args.workers} workers, root {root}")
    out, secs = run(root, args.preset, args.workers, args.sets)
    cat = Catalog(root)
    try:
        crossed = report(cat, out, "with the preset's cross-fitting", secs)
        out1, secs1 = run(root, args.preset, args.workers, [*args.sets, "aspire.cross_fit=1"])
        plain = report(cat, out1, "cross_fit = 1 (estimates from the CNF that saw the sample)", secs1)
        a, b = crossed["metrics"], plain["metrics"]
        k = int(a.iteration.values[-1])
        print(f"\n## ablation at iteration {k}: cross-fitted vs cross_fit = 1")
        for name in ("coverage_90", "nll", "rmse"):
            print(f"{name:12s} {float(a[name].sel(iteration=k)):.4g} ± {float(a[name + '_se'].sel(iteration=k)):.2g}"
                  f"   vs   {float(b[name].sel(iteration=k)):.4g} ± {float(b[name + '_se'].sel(iteration=k)):.2g}")
    finally:
        cat.close()
    subprocess.run([str(REPO / ".venv" / "bin" / "strata"), "server", "stop", "--root", str(root)],
                   capture_output=True)


if __name__ == "__main__":
    main()
