"""SEG-Y read-and-decode throughput: read_segy vs segyio (goal: ratio >= 0.8).

Usage: .venv/bin/python tests/benchmarks/bench_segy.py [--mb 200] [--repeat 5]

For an IEEE and an IBM file of about ``--mb`` MB (written by segyio in a temp dir, page cache
warm), times
  ours:   read_segy(path) — samples, the TRACE_WORDS header words as coordinates, text and
          binary headers, the xarray Dataset;
  segyio: segyio.open(ignore_geometry=True), f.trace.raw[:] and f.attributes(word)[:] for
          the same header words;
and prints MB/s of payload (sample bytes + header-word bytes) and the ratio segyio time / our
time (>= 1: we are faster). For transparency it also times segyio's trace.raw[:] alone.
Median of ``--repeat`` runs after one warm-up; results are freed between runs.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import segyio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tasks.seismic.segy import TRACE_WORDS, read_segy  # noqa: E402

NS = 1000


def make_file(path: Path, code: int, n: int) -> None:
    spec = segyio.spec()
    spec.samples = np.arange(NS)
    spec.format = code
    spec.tracecount = n
    rng = np.random.default_rng(0)
    with segyio.create(str(path), spec) as f:
        step = 4096
        for i in range(0, n, step):
            k = min(step, n - i)
            block = rng.standard_normal((k, NS)).astype(np.float32)
            for j in range(k):
                f.trace[i + j] = block[j]
        for i in range(n):
            f.header[i] = {9: i // 240 + 1, 13: i % 240 + 1, 71: -100, 73: 100 * i,
                           81: 50 * i, 115: NS, 117: 2000}
        f.bin.update({segyio.BinField.Interval: 2000})


def ours(path: Path) -> None:
    ds = read_segy(path)
    assert ds.sizes["time"] == NS
    del ds


def segyio_same_words(path: Path) -> None:
    with segyio.open(str(path), ignore_geometry=True) as f:
        data = f.trace.raw[:]
        words = {w: f.attributes(byte)[:] for w, (byte, _) in TRACE_WORDS.items()}
    del data, words


def segyio_samples_only(path: Path) -> None:
    with segyio.open(str(path), ignore_geometry=True) as f:
        data = f.trace.raw[:]
    del data


def timed(fn, path: Path, repeat: int) -> float:
    fn(path)  # warm-up (page cache, first allocation)
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn(path)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=200.0)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n = int(args.mb * 1e6 / (240 + 4 * NS))
    word_bytes = sum(2 if kind.endswith("2") else 4 for _, kind in TRACE_WORDS.values())
    payload = n * (NS * 4 + word_bytes) / 1e6
    print(f"{n} traces × {NS} samples, {len(TRACE_WORDS)} header words; payload "
          f"{payload:.1f} MB (samples + header words) per file")
    with tempfile.TemporaryDirectory() as tmp:
        for code, name in ((5, "IEEE"), (1, "IBM")):
            path = Path(tmp) / f"{name}.sgy"
            make_file(path, code, n)
            with segyio.open(str(path), ignore_geometry=True) as f:  # same numbers
                assert np.array_equal(f.trace.raw[:1000], read_segy(path).data.values[:1000])
            t_ours = timed(ours, path, args.repeat)
            t_ref = timed(segyio_same_words, path, args.repeat)
            t_raw = timed(segyio_samples_only, path, args.repeat)
            print(f"{name:4s} ({path.stat().st_size / 1e6:.0f} MB file): "
                  f"read_segy {payload / t_ours:7.0f} MB/s ({t_ours:.3f} s) | "
                  f"segyio raw+attributes {payload / t_ref:6.0f} MB/s ({t_ref:.3f} s) | "
                  f"ratio {t_ref / t_ours:5.2f} (goal >= 0.8) | "
                  f"segyio trace.raw[:] alone {t_raw:.3f} s")
            path.unlink()


if __name__ == "__main__":
    main()
