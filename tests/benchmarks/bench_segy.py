"""SEG-Y read-and-decode throughput: read_segy vs segyio (goal: ratio >= 0.8).

Usage: .venv/bin/python tests/benchmarks/bench_segy.py [--mb 200] [--repeat 5]

For an IEEE and an IBM file of about ``--mb`` MB (written by segyio in a temp dir, page cache
warm), times
  ours:   read_segy(path) — samples, the TRACE_WORDS header words as coordinates, text and
          binary headers, the xarray Dataset;
  segyio: segyio.open(ignore_geometry=True), f.trace.raw[:] and f.attributes(word)[:] for
          the same header words;
and prints MB/s of payload (sample bytes + header-word bytes) and the ratio segyio time / our
time (>= 1: we are faster). For transparency it also times segyio's trace.raw[:] alone, and,
separately (not in the ratio), the zarr write of the decoded dataset as ``segy import`` does it
(``Storage.write``: chunks + the fingerprint, overlapped).
Median of ``--repeat`` runs after one warm-up; results are freed between runs.
``measure()`` returns the figures (bench_survey.py prints them too).
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


def zarr_write(path: Path, repeat: int) -> float:
    """Seconds to write read_segy's dataset as ``segy import`` does (median; decode excluded)."""
    from data_catalog import Storage

    ds = read_segy(path)
    storage = Storage(path.parent)
    times = []
    for i in range(max(1, repeat)):
        uri = f"{storage.root}/zarr-{i}.zarr"
        t = time.perf_counter()
        storage.write(uri, ds, {"step": "segy_import"})
        times.append(time.perf_counter() - t)
        storage.delete(uri)
    return statistics.median(times)


def measure(mb: float = 200.0, repeat: int = 5, zarr_repeat: int = 2) -> list[dict]:
    """For an IEEE and an IBM file of about ``mb`` MB: seconds and MB/s of read_segy, of segyio
    (trace.raw[:] + attributes() of the same words), of trace.raw[:] alone, and of the zarr write."""
    n = int(mb * 1e6 / (240 + 4 * NS))
    word_bytes = sum(2 if kind.endswith("2") else 4 for _, kind in TRACE_WORDS.values())
    payload = n * (NS * 4 + word_bytes) / 1e6
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for code, name in ((5, "IEEE"), (1, "IBM")):
            path = Path(tmp) / f"{name}.sgy"
            make_file(path, code, n)
            with segyio.open(str(path), ignore_geometry=True) as f:  # same numbers
                assert np.array_equal(f.trace.raw[:1000], read_segy(path).data.values[:1000])
            t_ours = timed(ours, path, repeat)
            t_ref = timed(segyio_same_words, path, repeat)
            t_raw = timed(segyio_samples_only, path, repeat)
            t_zarr = zarr_write(path, zarr_repeat) if zarr_repeat else float("nan")
            out.append({"format": name, "traces": n, "samples": NS, "words": len(TRACE_WORDS),
                        "file_mb": path.stat().st_size / 1e6, "payload_mb": payload,
                        "ours_s": t_ours, "segyio_s": t_ref, "segyio_raw_s": t_raw, "zarr_write_s": t_zarr,
                        "ratio": t_ref / t_ours})
            path.unlink()
    return out


def report(results: list[dict], indent: str = "") -> None:
    for r in results:
        p = r["payload_mb"]
        print(f"{indent}{r['format']:4s} ({r['file_mb']:.0f} MB file, {r['traces']} traces x {r['samples']}): "
              f"read_segy {p / r['ours_s']:5.0f} MB/s ({r['ours_s']:.3f} s) | segyio raw+attributes "
              f"{p / r['segyio_s']:5.0f} MB/s ({r['segyio_s']:.3f} s) | ratio {r['ratio']:.2f} (goal >= 0.8)")
        print(f"{indent}     segyio trace.raw[:] alone {r['segyio_raw_s']:.3f} s; zarr write of the decoded "
              f"dataset (not in the ratio) {r['zarr_write_s']:.3f} s = {p / r['zarr_write_s']:.0f} MB/s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=200.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--zarr-repeat", type=int, default=2, help="zarr writes timed per format (0: skip)")
    args = ap.parse_args()
    results = measure(args.mb, args.repeat, args.zarr_repeat)
    r = results[0]
    print(f"{r['traces']} traces × {r['samples']} samples, {r['words']} header words; payload "
          f"{r['payload_mb']:.1f} MB (samples + header words) per file")
    report(results)


if __name__ == "__main__":
    main()
