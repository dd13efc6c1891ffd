"""SEG-Y in and out: every format × byte order, exact round trips, and bad files.

Files are built in tmp_path, either by segyio (the reference implementation) or by hand from
bytes (for what segyio cannot write: rev 2 markers, 3-byte samples, variable extended
headers, ASCII text headers, broken files).
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
import segyio
import xarray as xr

from strata_errors import InputError
from tasks.seismic.segy import (
    TRACE_WORDS,
    decode_ibm32,
    probe_segy,
    read_segy,
    write_segy,
)

E = {"big": ">", "little": "<"}

# ---------------------------------------------------------------------------------------------
# helpers


def ibm_words(values) -> np.ndarray:
    """Independent IBM encoder (exact for values with ≤ 21-bit mantissas): value → uint32."""
    out = []
    for v in values:
        if v == 0:
            out.append(0)
            continue
        sign = 0x80000000 if v < 0 else 0
        a, exp = abs(float(v)), 64
        while a >= 1.0:
            a /= 16.0
            exp += 1
        while a < 1.0 / 16.0:
            a *= 16.0
            exp -= 1
        frac = a * 2**24
        assert frac == int(frac), v
        out.append(sign | exp << 24 | int(frac))
    return np.array(out, dtype=np.uint32)


def ibm_reference(word: int) -> float:
    """Textbook IBM decode in Python floats: (-1)^s × 0.f × 16^(e-64)."""
    s = -1.0 if word >> 31 else 1.0
    return s * (word & 0xFFFFFF) / 2**24 * 16.0 ** (((word >> 24) & 0x7F) - 64)


def hand_segy(path, samples: np.ndarray, code: int, endian: str, *, ns: int, interval=1000,
              text: bytes | None = None, ext: list[bytes] = (), ext_count=None,
              bin_words: dict | None = None, revision=(1, 0)) -> None:
    """Write a SEG-Y file from raw sample bytes: ``samples`` (n, bytes per trace) uint8."""
    e = E[endian]
    n = samples.shape[0]
    binary = bytearray(400)

    def put(byte, fmt, value, buf=binary, base=3201):
        struct.pack_into(("" if fmt in "bB" else e) + fmt, buf, byte - base, value)

    put(3217, "H", interval)
    put(3221, "H", ns)
    put(3225, "h", code)
    put(3501, "B", revision[0])
    put(3502, "B", revision[1])
    put(3505, "h", len(ext) if ext_count is None else ext_count)
    for (byte, fmt), value in (bin_words or {}).items():
        put(byte, fmt, value)
    header = (text if text is not None else b"\x40" * 3200) + bytes(binary) + b"".join(ext)
    traces = bytearray()
    for i in range(n):
        th = bytearray(240)
        put(9, "i", i + 1, th, 1)
        put(13, "i", 10 + i, th, 1)
        put(73, "i", -1000 * i, th, 1)
        put(115, "H", ns, th, 1)
        put(117, "H", interval, th, 1)
        traces += th + samples[i].tobytes()
    with open(path, "wb") as fh:
        fh.write(header + bytes(traces))


def as_bytes(values: np.ndarray, kind: str, endian: str) -> np.ndarray:
    """(n, ns) values → (n, ns × size) uint8 in file order."""
    raw = np.ascontiguousarray(values.astype(E[endian] + kind if kind[-1] != "1" else kind))
    return raw.view(np.uint8).reshape(values.shape[0], -1)


def shot_records(nshot=3, nrec=5, nt=50, dt=0.002, y=False, rec_dims=("shot", "receiver"),
                 t0=0.0) -> xr.Dataset:
    rng = np.random.default_rng(7)
    data = rng.standard_normal((nshot, nrec, nt)).astype(np.float32)
    data[0, 0, :3] = [0.0, -0.0, 1e-40]  # zero, negative zero, a subnormal
    m = {"units": "m"}
    src_x = np.array([10.0, 260.18, 510.37])[:nshot]  # cm-level coordinates
    rec_x = np.round(np.linspace(0.0, 1234.56, nrec), 2)
    rec_x = rec_x if rec_dims == ("receiver",) else rec_x[None, :] + 0.01 * np.arange(nshot)[
        :, None]
    coords = {
        "time": ("time", t0 + np.arange(nt) * dt, {"units": "s"}),
        "src_x": ("shot", src_x, m),
        "src_z": ("shot", np.full(nshot, 12.5), m),
        "rec_x": (rec_dims, rec_x, m),
        "rec_z": (rec_dims, np.full(rec_x.shape, 200.0), m),
    }
    if y:
        coords["src_y"] = ("shot", np.array([5.0, -7.25, 100.0])[:nshot], m)
        coords["rec_y"] = (rec_dims, np.full(rec_x.shape, 33.33), m)
    return xr.Dataset({"data": (("shot", "receiver", "time"), data)}, coords=coords)


def segyio_file(path, values: np.ndarray, code: int, endian="big", ext_headers=0, **spec_kw):
    spec = segyio.spec()
    spec.samples = np.arange(values.shape[1])
    spec.format = code
    spec.tracecount = values.shape[0]
    spec.endian = endian
    spec.ext_headers = ext_headers
    for k, v in spec_kw.items():
        setattr(spec, k, v)
    with segyio.create(str(path), spec) as f:
        f.trace = values
        for i in range(values.shape[0]):
            f.header[i] = {segyio.TraceField.FieldRecord: 100 + i // 2,
                           segyio.TraceField.TraceNumber: i % 2 + 1,
                           segyio.TraceField.SourceX: 123456 * i - 7,
                           segyio.TraceField.GroupY: -i,
                           segyio.TraceField.SourceGroupScalar: -100,
                           segyio.TraceField.TRACE_SAMPLE_INTERVAL: 2000}
        f.bin.update({segyio.BinField.Interval: 2000, segyio.BinField.JobID: 42})


def check_against_segyio(path, ds, endian):
    with segyio.open(str(path), ignore_geometry=True, endian=endian) as f:
        np.testing.assert_array_equal(ds.data.values, f.trace.raw[:])
        assert ds.data.dtype == f.dtype
        for word, (byte, _) in TRACE_WORDS.items():
            np.testing.assert_array_equal(ds[word].values, f.attributes(byte)[:], err_msg=word)
        assert ds.sizes["time"] == len(f.samples)
        np.testing.assert_allclose(ds.time.values * 1e3, f.samples)


# ---------------------------------------------------------------------------------------------
# decoding


def test_ibm_known_encodings():
    words = np.array([0x41100000, 0xC276A000, 0x00000000, 0x80000000, 0x42640000, 0xC1100000,
                      0x3F800000, 0x42001000, 0x7FFFFFFF, 0xFFFFFFFF, 0x00100000, 0x60FFFFFF],
                     dtype=np.uint32)
    expected = np.array([1.0, -118.625, 0.0, -0.0, 100.0, -1.0, 0.03125, 0.0625, np.inf,
                         -np.inf, 0.0, ibm_reference(0x60FFFFFF)], dtype=np.float32)
    got = decode_ibm32(words)
    np.testing.assert_array_equal(got, expected)
    assert np.signbit(got[3])
    for endian in ("big", "little"):
        raw = words.astype(E[endian] + "u4").view(np.uint8).reshape(-1, 4)
        np.testing.assert_array_equal(decode_ibm32(raw, endian), expected)
    # the independent encoder agrees with the known encodings
    assert ibm_words([1.0, -118.625, 100.0, 0.0625])[:2].tolist() == [0x41100000, 0xC276A000]


def test_ibm_random_words_match_textbook_formula():
    rng = np.random.default_rng(3)
    exps = rng.integers(64 - 20, 64 + 20, 2000)  # within float32 range
    words = (rng.integers(0, 2, 2000) << 31 | exps << 24 | rng.integers(0, 2**24, 2000))
    words = words.astype(np.uint32)
    expected = np.array([ibm_reference(int(w)) for w in words], dtype=np.float32)
    np.testing.assert_array_equal(decode_ibm32(words), expected)


REV1 = {1: "ibm32", 2: "int32", 3: "int16", 5: "ieee32", 8: "int8"}


@pytest.mark.parametrize("endian", ["big", "little"])
@pytest.mark.parametrize("code", sorted(REV1))
def test_segyio_written_files_read_like_segyio(tmp_path, code, endian):
    rng = np.random.default_rng(code)
    n, ns = 6, 11
    if code in (1, 5):
        values = (rng.standard_normal((n, ns)) * 1000).astype(np.float32)
    else:
        info = np.iinfo({2: np.int32, 3: np.int16, 8: np.int8}[code])
        values = rng.integers(info.min, info.max, (n, ns), endpoint=True).astype(info.dtype)
    path = tmp_path / f"f{code}{endian}.sgy"
    segyio_file(path, values, code, endian)
    ds = read_segy(path)
    assert ds.attrs["segy_format"] == REV1[code]
    assert ds.attrs["segy_endian"] == endian
    assert ds.data.dims == ("trace", "time")
    check_against_segyio(path, ds, endian)
    if code == 5:
        np.testing.assert_array_equal(ds.data.values, values)
    if code in (2, 3, 8):
        np.testing.assert_array_equal(ds.data.values, values)
        assert ds.data.dtype == values.dtype
    assert ds.time.attrs["units"] == "s"
    np.testing.assert_allclose(ds.time.values, np.arange(ns) * 0.002)
    assert ds.attrs["segy_binary_header"]["JobID"] == 42
    assert list(ds.FieldRecord.values) == [100, 100, 101, 101, 102, 102]


HAND = {  # code -> (kind on disk, values)
    1: ("u4", None),
    2: ("i4", np.array([[0, 1, -1, 2**31 - 1, -(2**31)]])),
    3: ("i2", np.array([[0, 1, -1, 32767, -32768]])),
    5: ("f4", np.array([[0.0, 1.5, -2.25, 3.4e38, -1e-45]], np.float32)),
    6: ("f8", np.array([[0.0, 1.5, -2.25, 1e300, np.pi]])),
    8: ("i1", np.array([[0, 1, -1, 127, -128]])),
    9: ("i8", np.array([[0, 1, -1, 2**63 - 1, -(2**63)]])),
    10: ("u4", np.array([[0, 1, 2**31, 2**32 - 1, 7]], np.uint64)),
    11: ("u2", np.array([[0, 1, 32768, 65535, 7]])),
    12: ("u8", np.array([[0, 1, 2**63, 2**64 - 1, 7]], np.uint64)),
    16: ("u1", np.array([[0, 1, 128, 255, 7]])),
}


@pytest.mark.parametrize("endian", ["big", "little"])
@pytest.mark.parametrize("code", [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16])
def test_hand_made_formats_both_orders(tmp_path, code, endian):
    path = tmp_path / "f.sgy"
    if code == 1:
        expected = np.array([[1.0, -118.625, 0.0, 100.0, 0.0625]], np.float32)
        raw = as_bytes(ibm_words(expected[0])[None, :], "u4", endian)
    elif code in (7, 15):
        expected = (np.array([[0, 1, -1, 2**23 - 1, -(2**23)]]) if code == 7 else
                    np.array([[0, 1, 2**23, 2**24 - 1, 7]]))
        u = expected.astype(np.int64) & 0xFFFFFF
        b = np.stack([(u >> 16) & 255, (u >> 8) & 255, u & 255], axis=-1).astype(np.uint8)
        raw = (b if endian == "big" else b[..., ::-1]).reshape(1, -1)
    else:
        kind, expected = HAND[code]
        raw = as_bytes(expected, kind, endian)
    raw = np.repeat(raw, 3, axis=0)
    marker = {(3297, "I"): 0x01020304} if code not in REV1 else {}
    hand_segy(path, raw, code, endian, ns=5, bin_words=marker,
              revision=(2, 0) if code not in REV1 else (1, 0))
    info = probe_segy(path)
    assert (info["traces"], info["samples"], info["endian"]) == (3, 5, endian)
    ds = read_segy(path)
    got = ds.data.values
    np.testing.assert_array_equal(got, np.repeat(expected, 3, axis=0).astype(got.dtype))
    assert got.dtype == {1: np.float32, 5: np.float32, 6: np.float64, 7: np.int32,
                         15: np.uint32}.get(code, np.dtype(HAND.get(code, ("i4",))[0]))
    assert list(ds.TraceNumber.values) == [10, 11, 12]
    assert list(ds.SourceX.values) == [0, -1000, -2000]
    np.testing.assert_allclose(ds.time.values, np.arange(5) * 1e-3)


def test_format_code_alone_decides_byte_order(tmp_path):
    """Little-endian file without the rev 2 marker: only the format code tells."""
    path = tmp_path / "le.sgy"
    hand_segy(path, as_bytes(np.array([[1.0, 2.0]], np.float32), "f4", "little"), 5, "little",
              ns=2)
    assert read_segy(path).attrs["segy_endian"] == "little"
    assert read_segy(path).data.values.tolist() == [[1.0, 2.0]]


@pytest.mark.parametrize("endian", ["big", "little"])
def test_sample_count_above_32767(tmp_path, endian):
    ns = 40000
    values = (np.arange(2 * ns) % 251 - 125).astype(np.int8).reshape(2, ns)
    path = tmp_path / "long.sgy"
    hand_segy(path, values.view(np.uint8), 8, endian, ns=ns, interval=250)
    ds = read_segy(path)
    assert ds.sizes == {"trace": 2, "time": ns}
    np.testing.assert_array_equal(ds.data.values, values)
    assert ds.TRACE_SAMPLE_COUNT.values.tolist() == [ns, ns]
    assert ds.attrs["segy_binary_header"]["Samples"] == ns
    assert ds.time.values[-1] == pytest.approx((ns - 1) * 250e-6)
    # and it survives a round trip (the 2-byte fields are written unsigned)
    write_segy(ds, tmp_path / "again.sgy")
    again = read_segy(tmp_path / "again.sgy")
    np.testing.assert_array_equal(again.data.values, values)
    assert again.TRACE_SAMPLE_COUNT.values.tolist() == [ns, ns]


def test_segyio_agrees_on_65535_samples(tmp_path):
    ns = 65535
    values = np.arange(ns, dtype=np.float32)[None, :]
    path = tmp_path / "max.sgy"
    segyio_file(path, values, 5)
    ds = read_segy(path)
    assert ds.sizes["time"] == ns
    check_against_segyio(path, ds, "big")


def ebcdic_block(*lines: str) -> bytes:
    return "".join(line.ljust(80) for line in lines).ljust(3200).encode("cp037")


def test_extended_text_headers(tmp_path):
    values = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    ext = [ebcdic_block("C first extended"), ebcdic_block("C second", "((SEG: EndText))")]
    for count in (2, -1):  # declared, or variable (terminated by the EndText stanza)
        path = tmp_path / f"ext{count}.sgy"
        hand_segy(path, as_bytes(values, "f4", "big"), 5, "big", ns=3, ext=ext,
                  ext_count=count)
        info = probe_segy(path)
        assert info["ext_headers"] == 2 and info["data_offset"] == 3600 + 2 * 3200
        ds = read_segy(path)
        np.testing.assert_array_equal(ds.data.values, values)
        headers = ds.attrs["segy_extended_text_headers"]
        assert len(headers) == 2 and headers[0].startswith("C first extended")
        assert headers[1].split("\n")[1].startswith("((SEG: EndText))")


def test_extended_headers_written_by_segyio(tmp_path):
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = tmp_path / "ext.sgy"
    segyio_file(path, values, 1, "little", ext_headers=2)
    ds = read_segy(path)
    assert probe_segy(path)["ext_headers"] == 2
    check_against_segyio(path, ds, "little")
    assert len(ds.attrs["segy_extended_text_headers"]) == 2


def test_rev0_junk_in_extended_header_word_is_ignored(tmp_path):
    path = tmp_path / "rev0.sgy"
    hand_segy(path, as_bytes(np.ones((2, 4), np.float32), "f4", "big"), 5, "big", ns=4,
              ext_count=7, revision=(0, 0))
    assert probe_segy(path)["ext_headers"] == 0
    assert read_segy(path).data.values.sum() == 8


def test_ascii_text_header_and_rev2_trace_count(tmp_path):
    text = "".join(f"C{i:2d} ascii line {i}".ljust(80) for i in range(1, 41)).encode()
    path = tmp_path / "ascii.sgy"
    hand_segy(path, as_bytes(np.ones((2, 3), np.int16), "i2", "little"), 3, "little", ns=3,
              text=text, revision=(2, 0),
              bin_words={(3297, "I"): 0x01020304, (3513, "Q"): 2})
    ds = read_segy(path)
    assert ds.attrs["segy_text_encoding"] == "ascii"
    assert ds.attrs["segy_text_header"].split("\n")[1].startswith("C 2 ascii line 2")
    assert ds.attrs["segy_revision"] == "2.0"
    assert ds.attrs["segy_binary_header"]["NumberOfTraces"] == 2
    out = tmp_path / "out.sgy"
    write_segy(ds, out)
    assert open(out, "rb").read(3200) == text  # text header bytes kept exactly


def test_post_stack_cube(tmp_path):
    ilines, xlines, ns = [10, 11, 12], [20, 21, 22, 23], 9
    spec = segyio.spec()
    spec.ilines, spec.xlines, spec.samples = ilines, xlines, np.arange(ns)
    spec.sorting, spec.format = 2, 1
    cube = np.random.default_rng(0).standard_normal((3, 4, ns)).astype(np.float32)
    path = tmp_path / "cube.sgy"
    with segyio.create(str(path), spec) as f:
        tr = 0
        for i, il in enumerate(ilines):
            for j, xl in enumerate(xlines):
                f.header[tr] = {segyio.TraceField.INLINE_3D: il,
                                segyio.TraceField.CROSSLINE_3D: xl,
                                segyio.TraceField.CDP_X: 1000 + j,
                                segyio.TraceField.CDP_Y: 2000 + i}
                f.trace[tr] = cube[i, j]
                tr += 1
    ds = read_segy(path)
    check_against_segyio(path, ds, "big")
    assert ds.INLINE_3D.values.tolist() == [il for il in ilines for _ in xlines]
    assert ds.CROSSLINE_3D.values.tolist() == xlines * 3
    with segyio.open(str(path)) as f:  # segyio's own cube view, IBM-decoded
        np.testing.assert_array_equal(ds.data.values.reshape(3, 4, ns), segyio.tools.cube(f))


# ---------------------------------------------------------------------------------------------
# export → import


@pytest.mark.parametrize("y,rec_dims", [(False, ("shot", "receiver")), (True, ("receiver",))])
def test_export_import_exact(tmp_path, y, rec_dims):
    ds = shot_records(y=y, rec_dims=rec_dims)
    path = tmp_path / "shots.sgy"
    write_segy(ds, path)
    back = read_segy(path)
    nshot, nrec, nt = ds.data.shape
    assert back.sizes == {"trace": nshot * nrec, "time": nt}
    got = back.data.values
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32),
                                  ds.data.values.reshape(-1, nt).view(np.uint32))  # bitwise
    np.testing.assert_array_equal(back.time.values, np.arange(nt) * 2000 / 1e6)
    assert back.attrs["segy_format"] == "ieee32" and back.attrs["segy_endian"] == "big"
    assert back.attrs["segy_binary_header"]["Format"] == 5

    shot = np.repeat(np.arange(nshot), nrec)
    rec = np.tile(np.arange(nrec), nshot)
    rec_x = ds.rec_x.broadcast_like(ds.data.isel(time=0)).transpose("shot", "receiver")
    rec_x = rec_x.values.reshape(-1)
    assert back.FieldRecord.values.tolist() == (shot + 1).tolist()
    assert back.TraceNumber.values.tolist() == (rec + 1).tolist()
    assert back.TRACE_SEQUENCE_FILE.values.tolist() == list(range(1, nshot * nrec + 1))
    assert set(back.SourceGroupScalar.values) == {-100}
    assert set(back.ElevationScalar.values) == {-100}
    np.testing.assert_array_equal(back.SourceX.values, np.rint(ds.src_x.values[shot] * 100))
    np.testing.assert_array_equal(back.GroupX.values, np.rint(rec_x * 100))
    np.testing.assert_array_equal(back.SourceX.values / 100, ds.src_x.values[shot])
    np.testing.assert_array_equal(back.SourceDepth.values, 1250)
    np.testing.assert_array_equal(back.ReceiverGroupElevation.values, -20000)
    assert set(back.TRACE_SAMPLE_INTERVAL.values) == {2000}
    assert set(back.TRACE_SAMPLE_COUNT.values) == {nt}
    if y:
        np.testing.assert_array_equal(back.SourceY.values / 100, ds.src_y.values[shot])
        np.testing.assert_array_equal(back.GroupY.values, 3333)
        dist = np.hypot(rec_x - ds.src_x.values[shot], 33.33 - ds.src_y.values[shot])
        np.testing.assert_array_equal(back.offset.values, np.rint(dist))
    else:
        np.testing.assert_array_equal(back.offset.values, np.rint(rec_x - ds.src_x.values[shot]))
    # the independent reader sees the same file
    check_against_segyio(path, back, "big")
    with segyio.open(str(path), ignore_geometry=True) as f:
        assert f.bin[segyio.BinField.Format] == 5
        assert f.bin[segyio.BinField.Interval] == 2000
        assert f.bin[segyio.BinField.Samples] == nt
        assert segyio.tools.wrap(f.text[0]).startswith("C 1 Strata shot records")


def test_export_start_time_and_float32_time(tmp_path):
    ds = shot_records(t0=0.0125, dt=0.0005)
    ds = ds.assign_coords(time=ds.time.astype(np.float32))
    write_segy(ds, tmp_path / "t.sgy")
    back = read_segy(tmp_path / "t.sgy")
    assert set(back.DelayRecordingTime.values) == {125}
    assert set(back.ScalarTraceHeader.values) == {-10}
    np.testing.assert_allclose(back.time.values, ds.time.values, rtol=1e-7)
    assert back.time.values[0] == 0.0125


@pytest.mark.parametrize("code", [1, 3])
def test_import_export_import_exact(tmp_path, code):
    """A read dataset written back reads back identically; a second write is byte-equal."""
    rng = np.random.default_rng(1)
    values = ((rng.standard_normal((4, 16)) * 3000).astype(np.int16) if code == 3 else
              rng.standard_normal((4, 16)).astype(np.float32))
    src = tmp_path / "src.sgy"
    segyio_file(src, values, code, "little", ext_headers=1)
    first = read_segy(src)
    write_segy(first, tmp_path / "a.sgy")
    second = read_segy(tmp_path / "a.sgy")
    np.testing.assert_array_equal(second.data.values, first.data.values)
    assert second.data.dtype == first.data.dtype
    for word in TRACE_WORDS:
        np.testing.assert_array_equal(second[word].values, first[word].values, err_msg=word)
    np.testing.assert_array_equal(second.time.values, first.time.values)
    for key in ("segy_text_header", "segy_text_encoding", "segy_extended_text_headers"):
        assert second.attrs[key] == first.attrs[key]
    b1, b2 = first.attrs["segy_binary_header"], second.attrs["segy_binary_header"]
    changed = {k for k in b1 if b1[k] != b2[k]}
    assert changed <= {"Format", "SEGYRevision", "TraceFlag"}  # ibm32 → ieee32; rev 0 → 1
    assert second.attrs["segy_format"] == ("ieee32" if code == 1 else "int16")
    write_segy(second, tmp_path / "b.sgy")
    assert (tmp_path / "a.sgy").read_bytes() == (tmp_path / "b.sgy").read_bytes()


def test_export_little_endian_and_integer_formats(tmp_path):
    ds = shot_records()
    write_segy(ds, tmp_path / "le.sgy", endian="little")
    back = read_segy(tmp_path / "le.sgy")
    assert back.attrs["segy_endian"] == "little"
    np.testing.assert_array_equal(back.data.values, ds.data.values.reshape(15, -1))
    ints = ds.copy(data={"data": (ds.data * 100).round().astype(np.int32)})
    write_segy(ints, tmp_path / "i16.sgy", format="int16")
    back = read_segy(tmp_path / "i16.sgy")
    assert back.attrs["segy_format"] == "int16" and back.data.dtype == np.int16
    np.testing.assert_array_equal(back.data.values, ints.data.values.reshape(15, -1))


def test_export_float64_as_ieee64_when_asked(tmp_path):
    ds = shot_records()
    ds64 = ds.copy(data={"data": ds.data.astype(np.float64) / 3})
    write_segy(ds64, tmp_path / "f64.sgy", format="ieee64")
    back = read_segy(tmp_path / "f64.sgy")
    assert back.attrs["segy_format"] == "ieee64" and back.attrs["segy_revision"] == "2.0"
    np.testing.assert_array_equal(back.data.values, ds64.data.values.reshape(15, -1))
    write_segy(ds64, tmp_path / "f32.sgy")  # default: IEEE float32, as the issue asks
    assert read_segy(tmp_path / "f32.sgy").data.dtype == np.float32


def test_attrs_survive_zarr(tmp_path):
    src = tmp_path / "src.sgy"
    segyio_file(src, np.arange(12, dtype=np.float32).reshape(3, 4), 1, "little", ext_headers=1)
    ds = read_segy(src)
    ds.to_zarr(tmp_path / "ds.zarr", mode="w", consolidated=False)
    back = xr.open_zarr(tmp_path / "ds.zarr", consolidated=False)
    assert back.attrs == ds.attrs
    write_segy(back, tmp_path / "a.sgy")  # lazy (dask) input writes the same bytes
    write_segy(ds, tmp_path / "b.sgy")
    assert (tmp_path / "a.sgy").read_bytes() == (tmp_path / "b.sgy").read_bytes()


@pytest.mark.parametrize("change,message", [
    (lambda ds: ds.assign_coords(time=ds.time ** 2), "not uniformly increasing"),
    (lambda ds: ds.assign_coords(time=ds.time * 1.00001), "whole number of microseconds"),
    (lambda ds: ds.drop_vars("src_x"), "no src_x"),
    (lambda ds: ds.rename({"receiver": "channel"}), "expected (shot, receiver, time)"),
    (lambda ds: ds.assign_coords(src_x=ds.src_x * 1e9), "does not fit"),
])
def test_export_errors(tmp_path, change, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        write_segy(change(shot_records()), tmp_path / "x.sgy")


def test_export_rejects_lossy_integer_format(tmp_path):
    with pytest.raises(InputError, match="not integers"):
        write_segy(shot_records(), tmp_path / "x.sgy", format="int16")
    assert not (tmp_path / "x.sgy").exists()  # no half-written file left behind


# ---------------------------------------------------------------------------------------------
# bad files


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.sgy"
    hand_segy(path, as_bytes(np.ones((10, 500), np.float32), "f4", "big"), 5, "big", ns=500)
    return path


def one_line_error(path, match):
    with pytest.raises(InputError, match=match) as err:
        read_segy(path)
    with pytest.raises(InputError):
        probe_segy(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_probe_good_file(good):
    info = probe_segy(good)
    assert info["traces"] == 10 and info["samples"] == 500 and info["format"] == "ieee32"
    assert info["endian"] == "big" and info["ext_headers"] == 0
    assert info["file_bytes"] == 3600 + 10 * (240 + 4 * 500)


def test_truncated_file(good, tmp_path):
    data = good.read_bytes()
    cut = tmp_path / "cut.sgy"
    cut.write_bytes(data[:-100])
    msg = one_line_error(cut, "truncated")
    assert "25900 bytes" in msg and "3600 + n × (240 + 4×500)" in msg
    cut.write_bytes(data[:3700])
    one_line_error(cut, "truncated: 3700 bytes, shorter than one trace")
    cut.write_bytes(data[:2000])
    one_line_error(cut, "not SEG-Y: 2000 bytes")


def test_truncated_with_declared_trace_count(tmp_path):
    path = tmp_path / "rev2.sgy"
    hand_segy(path, as_bytes(np.ones((9, 500), np.float32), "f4", "big"), 5, "big", ns=500,
              revision=(2, 0), bin_words={(3513, "Q"): 10})
    one_line_error(path, r"is truncated: 23760 bytes, headers say 3600 \+ 10 × "
                         r"\(240 \+ 4×500\) = 26000")


def test_zero_traces(good, tmp_path):
    empty = tmp_path / "none.sgy"
    empty.write_bytes(good.read_bytes()[:3600])
    one_line_error(empty, "zero traces")


def test_size_disagrees_with_headers(good, tmp_path):
    data = bytearray(good.read_bytes())
    struct.pack_into(">H", data, 3220, 400)  # binary header: 400 samples; traces hold 500
    bad = tmp_path / "bad.sgy"
    bad.write_bytes(bytes(data))
    msg = one_line_error(bad, "size disagrees with its headers")
    assert "first trace header says 500 samples" in msg
    bad.write_bytes(good.read_bytes() + b"\0" * 7)  # trailing bytes
    one_line_error(bad, "size disagrees with its headers: 26007 bytes")


def test_not_segy(tmp_path):
    rnd = tmp_path / "random.bin"
    rnd.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, np.uint8).tobytes())
    one_line_error(rnd, r"not SEG-Y \(binary header format code 0x[0-9a-f]{4} invalid in "
                        "both byte orders")
    txt = tmp_path / "notes.txt"
    txt.write_text("this is a plain text file, not seismic data\n" * 200)
    one_line_error(txt, "not SEG-Y")
    empty = tmp_path / "empty.sgy"
    empty.write_bytes(b"")
    one_line_error(empty, "not SEG-Y: 0 bytes")
    with pytest.raises(InputError, match="does not exist"):
        read_segy(tmp_path / "missing.sgy")
    fixed_gain = tmp_path / "fmt4.sgy"
    hand_segy(fixed_gain, np.zeros((1, 8), np.uint8), 4, "big", ns=2)
    one_line_error(fixed_gain, "format 4")
