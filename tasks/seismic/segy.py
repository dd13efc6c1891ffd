"""SEG-Y in and out: pure functions between SEG-Y files and xarray datasets.

``read_segy(path)`` reads any valid SEG-Y rev 0/1 file (and the fixed-length subset of rev 2):
sample formats IBM float, IEEE float, 1/2/4-byte integers (and the rev 2 codes 6, 7, 9–12, 15,
16), either byte order (detected from the binary header, never assumed), with or without
extended textual headers, pre- or post-stack, sample counts up to 65535 (the 2-byte field is
read unsigned) and, when that field is 0 in a rev 2 file, rev 2's 4-byte extended count.
Format 4 (fixed point with gain, obsolete) is rejected with an InputError.

``write_segy(ds, path)`` writes a shot-record dataset ``(shot, receiver, time)`` or a dataset
returned by ``read_segy`` ``(trace, time)``; export → import is exact.

``probe_segy(path)`` validates a file from its headers and size only (cheap) and raises
``strata_errors.InputError`` with one line saying what is wrong and where.

How it is built: the headers are parsed with ``struct`` and the traces are decoded with numpy,
block by block, from a structured dtype (240-byte header words + samples). segyio is the
reference implementation in the tests and the benchmark, not the reader: it does not detect
byte order, it cannot decode formats 7 and 15, its ``attributes()`` makes one pass over the file
per header word, and its text-header reader always EBCDIC-decodes (mangling ASCII headers).

Dataset read by ``read_segy``::

    data(trace, time)     samples; dtype by format, every value exact:
                          ibm32, ieee32 → float32; ieee64 → float64; int8/16/32/64, uint8/16/32/64
                          → the same integer dtype; int24 → int32, uint24 → uint32.
                          (IBM values outside float32's range become ±inf or subnormals/0.)
    time(time)            seconds (float64) = (delay + i × interval) / 1e6 with the interval in
                          µs from the binary header (else the first trace header) and the delay
                          from the first trace's DelayRecordingTime × ScalarTraceHeader (ms).
    trace(trace)          0 … n-1
    <word>(trace)         int32, one coordinate per word of TRACE_WORDS: raw header values,
                          no scalar applied (SourceX with SourceGroupScalar -100 is centimetres:
                          applying it is the caller's business)
    attrs                 segy_text_header (str, 40 lines of 80 characters joined by "\\n"),
                          segy_text_encoding ("ebcdic" | "ascii"),
                          segy_extended_text_headers (list of str, same layout and encoding),
                          segy_binary_header ({name: int}, names as segyio's BinField; rev 2
                          words only for rev 2 files), segy_format ("ibm32", "ieee32", "int32",
                          "int16", "int8", …), segy_endian ("big" | "little"),
                          segy_revision ("1.0", …).
                          All JSON-serializable (zarr attrs).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from strata_errors import InputError

__all__ = [
    "TRACE_WORDS",
    "BINARY_WORDS",
    "FORMATS",
    "read_segy",
    "write_segy",
    "probe_segy",
    "decode_ibm32",
    "encode_text_header",
]

TEXT_BYTES = 3200
BINARY_BYTES = 400
FILE_HEADER_BYTES = TEXT_BYTES + BINARY_BYTES
TRACE_HEADER_BYTES = 240
BYTE_ORDER_CONSTANT = 0x01020304  # rev 2, bytes 3297-3300
DEFAULT_INTERVAL_US = 4000  # segyio's fallback when no header gives a sample interval

# format code -> (name, bytes per sample, on-disk numpy kind or None for custom decoding,
#                 numpy dtype returned by read_segy)
FORMATS: dict[int, tuple[str, int, str | None, str]] = {
    1: ("ibm32", 4, None, "float32"),
    2: ("int32", 4, "i4", "int32"),
    3: ("int16", 2, "i2", "int16"),
    5: ("ieee32", 4, "f4", "float32"),
    6: ("ieee64", 8, "f8", "float64"),
    7: ("int24", 3, None, "int32"),
    8: ("int8", 1, "i1", "int8"),
    9: ("int64", 8, "i8", "int64"),
    10: ("uint32", 4, "u4", "uint32"),
    11: ("uint16", 2, "u2", "uint16"),
    12: ("uint64", 8, "u8", "uint64"),
    15: ("uint24", 3, None, "uint32"),
    16: ("uint8", 1, "u1", "uint8"),
}
FORMAT_CODES = {name: code for code, (name, *_rest) in FORMATS.items()}
REV1_FORMAT_CODES = {1, 2, 3, 5, 8}  # 4 (fixed point with gain, obsolete) is rejected
WRITABLE_FORMATS = {"ieee32", "ieee64", "int8", "int16", "int32", "int64",
                    "uint8", "uint16", "uint32", "uint64"}

# Standard trace-header words kept as coordinates: name (segyio TraceField) -> (1-based byte,
# numpy kind: i4 signed 4-byte, i2 signed 2-byte, u2 unsigned 2-byte).
TRACE_WORDS: dict[str, tuple[int, str]] = {
    "TRACE_SEQUENCE_LINE": (1, "i4"),
    "TRACE_SEQUENCE_FILE": (5, "i4"),
    "FieldRecord": (9, "i4"),
    "TraceNumber": (13, "i4"),
    "EnergySourcePoint": (17, "i4"),
    "CDP": (21, "i4"),
    "CDP_TRACE": (25, "i4"),
    "TraceIdentificationCode": (29, "i2"),
    "offset": (37, "i4"),
    "ReceiverGroupElevation": (41, "i4"),
    "SourceSurfaceElevation": (45, "i4"),
    "SourceDepth": (49, "i4"),
    "ElevationScalar": (69, "i2"),
    "SourceGroupScalar": (71, "i2"),
    "SourceX": (73, "i4"),
    "SourceY": (77, "i4"),
    "GroupX": (81, "i4"),
    "GroupY": (85, "i4"),
    "CoordinateUnits": (89, "i2"),
    "DelayRecordingTime": (109, "i2"),
    "TRACE_SAMPLE_COUNT": (115, "u2"),
    "TRACE_SAMPLE_INTERVAL": (117, "u2"),
    "CDP_X": (181, "i4"),
    "CDP_Y": (185, "i4"),
    "INLINE_3D": (189, "i4"),
    "CROSSLINE_3D": (193, "i4"),
    "ShotPoint": (197, "i4"),
    "ShotPointScalar": (201, "i2"),
    "ScalarTraceHeader": (215, "i2"),
}

_TRACE_WORD_DOC = {
    "TRACE_SEQUENCE_LINE": "trace sequence number within line",
    "TRACE_SEQUENCE_FILE": "trace sequence number within file",
    "FieldRecord": "original field record number",
    "TraceNumber": "trace number within the field record",
    "EnergySourcePoint": "energy source point number",
    "CDP": "ensemble (CDP) number",
    "CDP_TRACE": "trace number within the ensemble",
    "TraceIdentificationCode": "trace identification code",
    "offset": "source-receiver offset",
    "ReceiverGroupElevation": "receiver group elevation (× ElevationScalar)",
    "SourceSurfaceElevation": "surface elevation at source (× ElevationScalar)",
    "SourceDepth": "source depth below surface (× ElevationScalar)",
    "ElevationScalar": "scalar for elevations and depths",
    "SourceGroupScalar": "scalar for coordinates",
    "SourceX": "source x (× SourceGroupScalar)",
    "SourceY": "source y (× SourceGroupScalar)",
    "GroupX": "receiver group x (× SourceGroupScalar)",
    "GroupY": "receiver group y (× SourceGroupScalar)",
    "CoordinateUnits": "coordinate units code",
    "DelayRecordingTime": "delay recording time, ms (× ScalarTraceHeader)",
    "TRACE_SAMPLE_COUNT": "number of samples in this trace",
    "TRACE_SAMPLE_INTERVAL": "sample interval, µs",
    "CDP_X": "ensemble x (× SourceGroupScalar)",
    "CDP_Y": "ensemble y (× SourceGroupScalar)",
    "INLINE_3D": "inline number",
    "CROSSLINE_3D": "crossline number",
    "ShotPoint": "shot point number",
    "ShotPointScalar": "scalar for the shot point number",
    "ScalarTraceHeader": "scalar for times in bytes 95-114",
}

# Binary header words kept in attrs["segy_binary_header"]: name (segyio BinField) ->
# (1-based byte in the file, struct kind). Rev 2 words only for files of revision >= 2.
BINARY_WORDS: dict[str, tuple[int, str]] = {
    "JobID": (3201, "i"),
    "LineNumber": (3205, "i"),
    "ReelNumber": (3209, "i"),
    "Traces": (3213, "h"),
    "AuxTraces": (3215, "h"),
    "Interval": (3217, "H"),
    "IntervalOriginal": (3219, "H"),
    "Samples": (3221, "H"),
    "SamplesOriginal": (3223, "H"),
    "Format": (3225, "h"),
    "EnsembleFold": (3227, "h"),
    "SortingCode": (3229, "h"),
    "VerticalSum": (3231, "h"),
    "SweepFrequencyStart": (3233, "h"),
    "SweepFrequencyEnd": (3235, "h"),
    "SweepLength": (3237, "h"),
    "Sweep": (3239, "h"),
    "SweepChannel": (3241, "h"),
    "SweepTaperStart": (3243, "h"),
    "SweepTaperEnd": (3245, "h"),
    "Taper": (3247, "h"),
    "CorrelatedTraces": (3249, "h"),
    "BinaryGainRecovery": (3251, "h"),
    "AmplitudeRecovery": (3253, "h"),
    "MeasurementSystem": (3255, "h"),
    "ImpulseSignalPolarity": (3257, "h"),
    "VibratoryPolarity": (3259, "h"),
    "SEGYRevision": (3501, "B"),
    "SEGYRevisionMinor": (3502, "B"),
    "TraceFlag": (3503, "h"),
    "ExtendedHeaders": (3505, "h"),
}
REV2_BINARY_WORDS: dict[str, tuple[int, str]] = {
    "ExtTraces": (3261, "i"),
    "ExtAuxTraces": (3265, "i"),
    "ExtSamples": (3269, "i"),
    "ExtSamplesOriginal": (3289, "i"),
    "ExtEnsembleFold": (3293, "i"),
    "MaxAdditionalTraceHeaders": (3507, "i"),
    "TimeBasis": (3511, "h"),
    "NumberOfTraces": (3513, "Q"),
    "FirstTraceOffset": (3521, "Q"),
}

_ENDIAN_CHAR = {"big": ">", "little": "<"}
_BLOCK_BYTES = 1 << 22  # read/decode this much at a time: stays in cache, bounded memory
_END_TEXT = "((SEG: EndText))"


# ---------------------------------------------------------------------------------------------
# probing


def _name(path: str | os.PathLike) -> str:
    return repr(os.fspath(path))


def _unpack(buf: bytes, byte: int, kind: str, endian: str) -> int:
    """A binary-header word at its 1-based file byte ``byte``."""
    fmt = ("" if kind in "bB" else _ENDIAN_CHAR[endian]) + kind
    return struct.unpack_from(fmt, buf, byte - 1 - TEXT_BYTES)[0]


def _detect_endian(binary: bytes, name: str) -> str:
    """Byte order from the binary header: the rev 2 byte-order constant when set, else the
    format code, which is valid (1–16) in exactly one order."""
    marker = struct.unpack_from(">I", binary, 3297 - 1 - TEXT_BYTES)[0]
    if marker == BYTE_ORDER_CONSTANT:
        order = ["big"]
    elif marker == 0x04030201:
        order = ["little"]
    else:
        order = ["big", "little"]
    valid = [e for e in order if _unpack(binary, 3225, "h", e) in FORMATS or
             _unpack(binary, 3225, "h", e) == 4]
    if valid:  # codes are < 256, so a code valid one way is >= 256, invalid, the other way
        return valid[0]
    raw = struct.unpack_from(">H", binary, 3225 - 1 - TEXT_BYTES)[0]
    where = "in both byte orders" if len(order) == 2 else f"in {order[0]}-endian order"
    raise InputError(
        f"{name} is not SEG-Y (binary header format code 0x{raw:04x} invalid {where})")


def _text_encoding(block: bytes) -> str:
    """"ebcdic" or "ascii": whichever decoding gives more letters, digits and spaces."""
    def score(text: str) -> int:
        return sum(1 for c in text if c.isalnum() or c == " ")
    if score(block.decode("latin-1")) > score(block.decode("cp037")):
        return "ascii"
    return "ebcdic"


def _codec(encoding: str) -> str:
    return "cp037" if encoding == "ebcdic" else "latin-1"  # both bijective over all 256 bytes


def _decode_text(block: bytes, encoding: str) -> str:
    text = block.decode(_codec(encoding))
    return "\n".join(text[i:i + 80] for i in range(0, TEXT_BYTES, 80))


def encode_text_header(text: str, encoding: str = "ebcdic") -> bytes:
    """3200 bytes from a text header: 40 lines of 80 characters joined by newlines (as
    ``read_segy`` gives them) are restored exactly; other text is laid out line by line,
    each line cut or padded with spaces to 80 characters, up to 40 lines."""
    lines = text.split("\n")
    if len(lines) == 40 and all(len(line) == 80 for line in lines):
        flat = "".join(lines)
    else:
        lines = [line.rstrip("\r") for line in lines][:40]
        flat = "".join(line[:80].ljust(80) for line in lines).ljust(TEXT_BYTES)
    try:
        out = flat.encode(_codec(encoding))
    except UnicodeEncodeError as err:
        raise InputError(f"text header character {flat[err.start]!r} has no "
                         f"{encoding.upper()} code") from None
    return out


def _probe(path: str | os.PathLike) -> dict[str, Any]:
    """Everything ``probe_segy`` reports, plus the raw header blocks for ``read_segy``."""
    name = _name(path)
    try:
        size = os.stat(path).st_size
        with open(path, "rb") as fh:
            head = fh.read(FILE_HEADER_BYTES)
    except IsADirectoryError:
        raise InputError(f"{name} is a directory, not a SEG-Y file") from None
    except FileNotFoundError:
        raise InputError(f"{name} does not exist") from None
    except OSError as err:
        raise InputError(f"{name} cannot be read: {err.strerror}") from None
    if size < FILE_HEADER_BYTES:
        raise InputError(f"{name} is not SEG-Y: {size} bytes, shorter than the 3600-byte "
                         "textual + binary file header")
    text, binary = head[:TEXT_BYTES], head[TEXT_BYTES:]
    endian = _detect_endian(binary, name)
    code = _unpack(binary, 3225, "h", endian)
    if code == 4:
        raise InputError(f"{name}: sample format 4 (4-byte fixed point with gain, obsolete) is "
                         "not supported")
    fmt, bps = FORMATS[code][0], FORMATS[code][1]

    words = {k: _unpack(binary, b, t, endian) for k, (b, t) in BINARY_WORDS.items()}
    major, minor = words["SEGYRevision"], words["SEGYRevisionMinor"]
    if endian == "little" and major == 0 and minor in (1, 2):
        # a rev 0/1 style 16-bit revision word written little-endian (as segyio does)
        major, minor = minor, 0
        words["SEGYRevision"], words["SEGYRevisionMinor"] = major, minor
    if major >= 2:
        words.update({k: _unpack(binary, b, t, endian) for k, (b, t) in
                      REV2_BINARY_WORDS.items()})
        if words["MaxAdditionalTraceHeaders"] > 0:
            raise InputError(f"{name}: SEG-Y rev 2 additional trace headers "
                             f"({words['MaxAdditionalTraceHeaders']}) are not supported")

    # extended textual headers
    n_ext = words["ExtendedHeaders"]
    if major == 0 and n_ext < 0:
        n_ext = 0  # unassigned in rev 0; a positive count is tried, then 0 (below)
    if n_ext == -1:
        n_ext = _count_variable_ext_headers(path, size)
    elif n_ext < -1:
        raise InputError(f"{name}: invalid extended textual header count {n_ext} "
                         "(binary header bytes 3505-3506)")
    trace0 = FILE_HEADER_BYTES + TEXT_BYTES * n_ext
    if major >= 2 and words.get("FirstTraceOffset", 0) > 0:
        trace0 = int(words["FirstTraceOffset"])
    ns_bin = words["Samples"]
    if ns_bin == 0 and major >= 2 and words.get("ExtSamples", 0) > 0:
        ns_bin = words["ExtSamples"]
    result = _fit_traces(path, size, trace0, ns_bin, bps, endian, words, name)
    if not result["ok"] and major == 0 and n_ext > 0:
        # bytes 3505-3506 are unassigned in rev 0 and may hold anything
        retry = _fit_traces(path, size, FILE_HEADER_BYTES, ns_bin, bps, endian, words, name)
        if retry["ok"]:
            result, n_ext = retry, 0
    if not result["ok"]:
        raise InputError(result["error"])

    interval = words["Interval"] or result["tr_interval"]
    encoding = _text_encoding(text)
    return {
        "traces": result["traces"],
        "samples": result["samples"],
        "format": fmt,
        "format_code": code,
        "endian": endian,
        "ext_headers": n_ext,
        "revision": f"{major}.{minor}",
        "sample_interval_us": interval,
        "bytes_per_sample": bps,
        "trace_bytes": TRACE_HEADER_BYTES + bps * result["samples"],
        "data_offset": result["trace0"],
        "file_bytes": size,
        "text_encoding": encoding,
        "_text": text,
        "_binary_words": words,
    }


def _count_variable_ext_headers(path: str | os.PathLike, size: int) -> int:
    """Rev 2's "-1": extended headers continue until one holds ((SEG: EndText))."""
    with open(path, "rb") as fh:
        fh.seek(FILE_HEADER_BYTES)
        n = 0
        while FILE_HEADER_BYTES + TEXT_BYTES * (n + 1) <= size:
            block = fh.read(TEXT_BYTES)
            n += 1
            if _END_TEXT in block.decode("latin-1") or _END_TEXT in block.decode("cp037"):
                return n
    raise InputError(f"{_name(path)}: extended textual headers (count -1) have no "
                     f"{_END_TEXT} stanza")


def _fit_traces(path, size, trace0, ns_bin, bps, endian, words, name) -> dict[str, Any]:
    """Check that the file size is the headers plus a whole number of traces."""
    out: dict[str, Any] = {"ok": False, "trace0": trace0, "tr_interval": 0}
    n_ext = (trace0 - FILE_HEADER_BYTES) // TEXT_BYTES
    if size < trace0:
        out["error"] = (f"file {name} is truncated: {size} bytes, headers say 3600 + "
                        f"{n_ext} × 3200 = {trace0} bytes before the first trace")
        return out
    tr_ns = 0
    if size >= trace0 + TRACE_HEADER_BYTES:
        with open(path, "rb") as fh:
            fh.seek(trace0)
            th = fh.read(TRACE_HEADER_BYTES)
        e = _ENDIAN_CHAR[endian]
        tr_ns = struct.unpack_from(e + "H", th, 114)[0]
        out["tr_interval"] = struct.unpack_from(e + "H", th, 116)[0]
    ns = ns_bin or tr_ns
    if size == trace0:
        out["error"] = f"{name} has zero traces ({size} bytes: file headers only)"
        return out
    if ns == 0:
        out["error"] = (f"{name}: sample count is 0 in the binary header (bytes 3221-3222) "
                        "and in the first trace header (bytes 115-116)")
        return out
    trace_bytes = TRACE_HEADER_BYTES + bps * ns
    n, rem = divmod(size - trace0, trace_bytes)
    layout = f"{trace0} + n × (240 + {bps}×{ns})"
    declared = int(words.get("NumberOfTraces", 0) or 0)
    if declared:
        expected = trace0 + declared * trace_bytes
        if size != expected:
            what = "is truncated" if size < expected else "size disagrees with its headers"
            out["error"] = (f"file {name} {what}: {size} bytes, headers say {trace0} + "
                            f"{declared} × (240 + {bps}×{ns}) = {expected}")
            return out
    if rem:
        hint = (f"; the first trace header says {tr_ns} samples"
                if tr_ns and tr_ns != ns else "")
        if n == 0:
            out["error"] = (f"file {name} is truncated: {size} bytes, shorter than one trace "
                            f"({layout} = {trace0 + trace_bytes} for n = 1){hint}")
        else:
            out["error"] = (f"file {name} is truncated or its size disagrees with its headers:"
                            f" {size} bytes, but {layout} is {trace0 + n * trace_bytes} for "
                            f"n = {n} and {trace0 + (n + 1) * trace_bytes} for n = {n + 1}"
                            f"{hint}")
        return out
    out.update(ok=True, traces=int(n), samples=int(ns))
    return out


def probe_segy(path: str | os.PathLike) -> dict[str, Any]:
    """Validate a SEG-Y file from its headers and size, without reading the traces.

    Returns ``{"traces", "samples", "format", "format_code", "endian", "ext_headers",
    "revision", "sample_interval_us", "bytes_per_sample", "trace_bytes", "data_offset",
    "file_bytes", "text_encoding"}``. Raises ``InputError`` (one line: what and where) for a
    file that is missing, not SEG-Y, truncated, has zero traces or a size that disagrees with
    its headers.
    """
    info = _probe(path)
    return {k: v for k, v in info.items() if not k.startswith("_")}


# ---------------------------------------------------------------------------------------------
# reading

_IBM_SCALE = np.where(np.arange(256) >= 128, -1.0, 1.0) * np.ldexp(
    1.0, 4 * ((np.arange(256) & 127) - 64) - 24)


def decode_ibm32(raw: np.ndarray, endian: str = "big", out: np.ndarray | None = None
                 ) -> np.ndarray:
    """IBM System/360 single-precision floats → float32, exactly where float32 can hold them.

    ``raw``: uint8 array whose last axis is the 4 bytes of each value in file order (or a
    uint32 array of the words in native order, then ``endian`` is ignored). Value =
    (-1)^sign × 0.fraction₁₆ × 16^(exponent-64), computed exactly in float64 and rounded once
    to float32: zero, unnormalized fractions and every value in float32's range are exact;
    larger magnitudes give ±inf, smaller ones subnormals or ±0.
    """
    if raw.dtype == np.uint8:
        top = raw[..., 0] if endian == "big" else raw[..., 3]
        words = raw.view(_ENDIAN_CHAR[endian] + "u4")[..., 0].astype(np.uint32)
    else:
        words = raw.astype(np.uint32)
        top = (words >> 24).astype(np.uint8)
    scale = _IBM_SCALE[top]
    words &= 0x00FFFFFF
    np.multiply(words, scale, out=scale)
    if out is None:
        out = np.empty(scale.shape, np.float32)
    with np.errstate(over="ignore", under="ignore"):
        out[...] = scale
    return out


def _record_dtype(ns: int, code: int, endian: str) -> np.dtype:
    e = _ENDIAN_CHAR[endian]
    names, formats, offsets = [], [], []
    for word, (byte, kind) in TRACE_WORDS.items():
        names.append(word)
        formats.append(e + kind)
        offsets.append(byte - 1)
    name, bps, kind, _ = FORMATS[code]
    names.append("data")
    if kind is None:  # ibm32, int24, uint24: raw bytes
        formats.append(("u1", (ns, bps)))
    else:
        formats.append((e + kind if bps > 1 else kind, (ns,)))
    offsets.append(TRACE_HEADER_BYTES)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                     "itemsize": TRACE_HEADER_BYTES + bps * ns})


def _decode_block(data: np.ndarray, code: int, endian: str, out: np.ndarray) -> None:
    name = FORMATS[code][0]
    if name == "ibm32":
        # decode in slices of ~64k values: the float64 temporaries stay in cache
        step = max(1, (1 << 16) // max(1, data.shape[1]))
        for i in range(0, data.shape[0], step):
            decode_ibm32(data[i:i + step], endian, out=out[i:i + step])
    elif name in ("int24", "uint24"):
        b = data.astype(np.uint32)
        hi, lo = (0, 2) if endian == "big" else (2, 0)
        v = (b[..., hi] << 16) | (b[..., 1] << 8) | b[..., lo]
        if name == "int24":
            out[...] = (v ^ 0x800000).astype(np.int32) - 0x800000
        else:
            out[...] = v
    else:
        out[...] = data


def read_segy(path: str | os.PathLike) -> xr.Dataset:
    """Read a SEG-Y file into ``data(trace, time)`` with header words as coordinates.

    See the module docstring for the layout. Raises ``InputError`` for a file that is not
    valid SEG-Y (as ``probe_segy``).
    """
    info = _probe(path)
    n, ns, code, endian = info["traces"], info["samples"], info["format_code"], info["endian"]
    rec = _record_dtype(ns, code, endian)
    out_dtype = np.dtype(FORMATS[code][3])
    data = np.empty((n, ns), out_dtype)
    heads = {w: np.empty(n, np.int32) for w in TRACE_WORDS}

    per_block = max(1, _BLOCK_BYTES // rec.itemsize)
    buf = bytearray(min(n, per_block) * rec.itemsize)
    view = memoryview(buf)
    with open(path, "rb") as fh:
        fh.seek(info["data_offset"])
        for start in range(0, n, per_block):
            k = min(per_block, n - start)
            nbytes = k * rec.itemsize
            got = fh.readinto(view[:nbytes])
            while got < nbytes:  # short reads (pipes, network filesystems)
                more = fh.readinto(view[got:nbytes])
                if not more:
                    raise InputError(f"file {_name(path)} is truncated: shrank while reading")
                got += more
            recs = np.frombuffer(buf, dtype=rec, count=k)
            _decode_block(recs["data"], code, endian, data[start:start + k])
            for w, arr in heads.items():
                arr[start:start + k] = recs[w]
            del recs

    words = info["_binary_words"]
    interval = info["sample_interval_us"]
    time_attrs = {"units": "s", "long_name": "two-way time", "standard_name": "time"}
    if not interval:
        interval = DEFAULT_INTERVAL_US
        time_attrs["comment"] = (f"no sample interval in the headers: {interval} µs assumed")
    delay = int(heads["DelayRecordingTime"][0])
    scalar = int(heads["ScalarTraceHeader"][0])
    delay_us = delay * 1000 * (scalar if scalar > 0 else 1) / (-scalar if scalar < 0 else 1)
    time = (delay_us + np.arange(ns, dtype=np.float64) * interval) / 1e6

    coords: dict[str, Any] = {
        "trace": ("trace", np.arange(n, dtype=np.int64), {"long_name": "trace index in file"}),
        "time": ("time", time, time_attrs),
    }
    for w, (byte, kind) in TRACE_WORDS.items():
        size = 2 if kind.endswith("2") else 4
        coords[w] = ("trace", heads[w], {
            "long_name": _TRACE_WORD_DOC[w],
            "segy_bytes": f"{byte}-{byte + size - 1}"})
    enc = info["text_encoding"]
    ext: list[str] = []
    if info["ext_headers"]:
        with open(path, "rb") as fh:
            fh.seek(FILE_HEADER_BYTES)
            for _ in range(info["ext_headers"]):
                ext.append(_decode_text(fh.read(TEXT_BYTES), enc))
    attrs = {
        "segy_text_header": _decode_text(info["_text"], enc),
        "segy_text_encoding": enc,
        "segy_extended_text_headers": ext,
        "segy_binary_header": {k: int(v) for k, v in words.items()},
        "segy_format": info["format"],
        "segy_endian": endian,
        "segy_revision": info["revision"],
    }
    var = xr.Variable(("trace", "time"), data, {"long_name": "amplitude"})
    return xr.Dataset({"data": var}, coords=coords, attrs=attrs)


# ---------------------------------------------------------------------------------------------
# writing


def _time_axis(ds: xr.Dataset, nt: int) -> tuple[int, float]:
    """(sample interval in µs, start time in ms) from the dataset's time coordinate."""
    if "time" not in ds.coords:
        raise InputError("dataset has no time coordinate")
    raw = np.asarray(ds["time"].values)
    eps = float(np.finfo(raw.dtype).eps) if raw.dtype.kind == "f" else 0.0
    t = raw.astype(np.float64)
    units = str(ds["time"].attrs.get("units", "s")).strip().lower()
    factor = {"s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
              "ms": 1e-3, "millisecond": 1e-3, "milliseconds": 1e-3}.get(units)
    if factor is None:
        raise InputError(f"time coordinate units {units!r} are not seconds or milliseconds")
    t = t * factor
    if nt < 2:
        raise InputError(f"dataset has {nt} time samples: SEG-Y needs a sample interval")
    step = float(t[-1] - t[0]) / (nt - 1)
    # uniform to the precision the coordinate's dtype can hold
    tol = 1e-6 * abs(step) + 4 * eps * float(np.max(np.abs(t)))
    if not step > 0 or not np.all(np.abs(np.diff(t) - step) <= tol):
        raise InputError("time coordinate is not uniformly increasing")
    dt_us = round(step * 1e6)
    if abs(step * 1e6 - dt_us) > 1e-6 * dt_us + tol * 1e6 or not 1 <= dt_us <= 65535:
        raise InputError(f"sample interval {step!r} s is not a whole number of microseconds "
                         "in 1-65535 (SEG-Y binary header bytes 3217-3218)")
    return dt_us, float(t[0]) * 1e3


def _delay_words(t0_ms: float) -> tuple[int, int]:
    """(DelayRecordingTime, ScalarTraceHeader) encoding t0 exactly, or InputError."""
    for scalar in (1, -10, -100, -1000, -10000):
        value = t0_ms * (-scalar if scalar < 0 else 1)
        if abs(value - round(value)) <= 1e-6 * max(1.0, abs(value)) and \
                -32768 <= round(value) <= 32767:
            return int(round(value)), (0 if scalar == 1 else scalar)
    raise InputError(f"start time {t0_ms!r} ms cannot be written as a SEG-Y delay "
                     "(bytes 109-110 with scalar 215-216)")


def _scaled(values: np.ndarray, scalar: int, what: str) -> np.ndarray:
    """Physical values → integer header words for a SEG-Y scalar (negative: divisor)."""
    factor = float(-scalar) if scalar < 0 else 1.0 / scalar
    x = np.asarray(values, dtype=np.float64) * factor
    if not np.all(np.isfinite(x)):
        raise InputError(f"{what} has non-finite values")
    r = np.rint(x)
    if np.any(np.abs(r) > 2**31 - 1):
        raise InputError(f"{what} does not fit a 4-byte header word with scalar {scalar}")
    return r.astype(np.int32)


def _pick_format(ds_format: str | None, dtype: np.dtype) -> str:
    if ds_format is not None:
        if ds_format not in WRITABLE_FORMATS:
            raise InputError(f"cannot write SEG-Y format {ds_format!r}; choose one of "
                             f"{', '.join(sorted(WRITABLE_FORMATS))}")
        return ds_format
    if dtype.kind == "f":
        return "ieee32"
    if dtype.kind in "iu" and dtype.name in WRITABLE_FORMATS:
        return dtype.name
    raise InputError(f"cannot write samples of dtype {dtype} to SEG-Y")


def _check_cast(block: np.ndarray, target: np.dtype, fmt: str) -> None:
    if target.kind in "iu":
        if block.dtype.kind == "f" and not np.array_equal(block, np.trunc(block)):
            raise InputError(f"samples are not integers: cannot write format {fmt}")
        info = np.iinfo(target)
        if block.size and (block.min() < info.min or block.max() > info.max):
            raise InputError(f"samples do not fit format {fmt}")


def _binary_header(words: Mapping[str, int], endian: str, rev2: bool) -> bytes:
    buf = bytearray(BINARY_BYTES)
    table = dict(BINARY_WORDS)
    if rev2:
        table.update(REV2_BINARY_WORDS)
    for k, (byte, kind) in table.items():
        v = int(words.get(k, 0))
        fmt = ("" if kind in "bB" else _ENDIAN_CHAR[endian]) + kind
        try:
            struct.pack_into(fmt, buf, byte - 1 - TEXT_BYTES, v)
        except struct.error:
            raise InputError(f"binary header word {k}={v} does not fit bytes "
                             f"{byte}-{byte + struct.calcsize(fmt) - 1}") from None
    if rev2 or endian == "little":
        struct.pack_into(_ENDIAN_CHAR[endian] + "I", buf, 3297 - 1 - TEXT_BYTES,
                         BYTE_ORDER_CONSTANT)
    return bytes(buf)


def _default_text(lines: list[str], revision: int = 1) -> str:
    body = [f"C{i + 1:2d} {line}"[:80] for i, line in enumerate(lines)]
    body += [f"C{i + 1:2d}" for i in range(len(body), 38)]
    body += [f"C39 SEG Y REV{revision}", "C40 END TEXTUAL HEADER"]
    return "\n".join(line.ljust(80) for line in body)


def write_segy(ds: xr.Dataset, path: str | os.PathLike, *, format: str | None = None,
               endian: str = "big", coordinate_scalar: int = -100,
               text_header: str | None = None) -> None:
    """Write shot records ``data(shot, receiver, time)`` or a ``read_segy`` dataset to SEG-Y.

    Shot records: coordinates ``src_x`` (shot) and ``rec_x`` ((shot, receiver) or (receiver))
    in metres are required; ``src_y``, ``rec_y``, ``src_z``, ``rec_z`` (depths, positive down)
    are optional (0 when absent); ``time`` in seconds, uniform, a whole number of µs apart.
    Traces go shot by shot; per trace: TRACE_SEQUENCE_LINE/FILE = 1…n, FieldRecord = shot + 1,
    TraceNumber = receiver + 1, TraceIdentificationCode = 1, SourceX/Y, GroupX/Y with
    SourceGroupScalar = ``coordinate_scalar`` (-100: centimetres, exact for cm-level
    coordinates), SourceDepth = src_z and ReceiverGroupElevation = -rec_z with ElevationScalar
    = ``coordinate_scalar``, offset = rec_x - src_x in whole metres (2D; horizontal distance
    in 3D; offset carries no scalar in SEG-Y), CoordinateUnits = 1 (length), sample count and
    interval (µs), and the start time as DelayRecordingTime (ms, with ScalarTraceHeader).

    ``read_segy`` datasets: every word of TRACE_WORDS is written from its coordinate (absent
    words are 0, sequence numbers 1…n; sample count and interval words are kept where they are
    0 or agree with the data, else set from it; the delay words are kept when they agree with
    ``time[0]``, else set from it), the text, extended text and binary headers from the attrs
    (with the format, sample count, interval, header count and revision of what is written):
    export → import is exact, and writing the re-imported dataset gives the same bytes.

    ``format``: default "ieee32" (format 5) for float samples, the matching integer format for
    integer samples; also "ieee64" and any integer format of the same or wider range (values
    are checked to fit). Files are SEG-Y rev 1 (rev 2.0 for the rev 2 codes),
    big-endian unless ``endian="little"`` (then the rev 2 byte-order constant is set).
    """
    if endian not in _ENDIAN_CHAR:
        raise InputError(f"endian must be 'big' or 'little', not {endian!r}")
    if not isinstance(coordinate_scalar, int) or coordinate_scalar == 0 or \
            not -32768 <= coordinate_scalar <= 32767:
        raise InputError(f"coordinate_scalar must be a non-zero 2-byte integer, "
                         f"not {coordinate_scalar!r}")
    if "data" not in ds.data_vars:
        raise InputError("dataset has no 'data' variable")
    da = ds["data"]
    dims = set(da.dims)
    if dims == {"trace", "time"}:
        da = da.transpose("trace", "time")
        n, nt = da.shape
        kind = "trace"
    elif dims == {"shot", "receiver", "time"}:
        da = da.transpose("shot", "receiver", "time")
        nshot, nrec, nt = da.shape
        n = nshot * nrec
        kind = "shot"
    else:
        raise InputError(f"'data' has dims {da.dims}: expected (shot, receiver, time) or "
                         "(trace, time)")
    if n == 0:
        raise InputError("dataset has zero traces")
    if nt > 65535:
        raise InputError(f"{nt} samples per trace: SEG-Y rev 1 holds at most 65535")
    dt_us, t0_ms = _time_axis(ds, nt)
    fmt = _pick_format(format, np.dtype(da.dtype))
    code = FORMAT_CODES[fmt]
    rev2 = code not in REV1_FORMAT_CODES
    target = np.dtype(FORMATS[code][3])

    heads: dict[str, np.ndarray] = {w: np.zeros(n, np.int64) for w in TRACE_WORDS}
    delay, delay_scalar = _delay_words(t0_ms)
    if kind == "shot":
        heads.update(_shot_headers(ds, nshot, nrec, coordinate_scalar))
        heads["DelayRecordingTime"][:] = delay
        heads["ScalarTraceHeader"][:] = delay_scalar
        words: dict[str, int] = {"Traces": min(nrec, 32767), "SortingCode": 1,
                                 "MeasurementSystem": 1}
        text = text_header if text_header is not None else _default_text([
            "Strata shot records",
            f"{nshot} shots x {nrec} receivers x {nt} samples, interval {dt_us} us",
            f"samples: format {code} ({fmt}), {endian}-endian",
            f"x, y in metres scaled by bytes 71-72 ({coordinate_scalar}); source depth",
            "(bytes 49-52) and minus receiver depth (bytes 41-44) scaled by bytes 69-70",
            "offset in whole metres; field record = shot + 1, trace = receiver + 1",
        ], revision=2 if rev2 else 1)
        encoding, ext = "ebcdic", []
    else:
        words = {k: int(v) for k, v in dict(ds.attrs.get("segy_binary_header", {})).items()
                 if k in BINARY_WORDS or (rev2 and k in REV2_BINARY_WORDS)}
        for w in TRACE_WORDS:
            if w in ds.coords:
                c = ds[w]
                if c.dims != ("trace",):
                    raise InputError(f"coordinate {w} has dims {c.dims}, expected ('trace',)")
                v = np.asarray(c.values)
                if v.dtype.kind not in "iu" and not np.array_equal(v, np.trunc(v)):
                    raise InputError(f"trace header word {w} has non-integer values")
                heads[w] = v.astype(np.int64)
            elif w in ("TRACE_SEQUENCE_LINE", "TRACE_SEQUENCE_FILE"):
                heads[w] = np.arange(1, n + 1)
        d0 = int(heads["DelayRecordingTime"][0])
        s0 = int(heads["ScalarTraceHeader"][0])
        have_ms = d0 * (s0 if s0 > 0 else 1) / (-s0 if s0 < 0 else 1)
        if abs(have_ms - t0_ms) > 1e-9 * max(1.0, abs(t0_ms)):
            heads["DelayRecordingTime"][:] = delay
            heads["ScalarTraceHeader"][:] = delay_scalar
        encoding = str(ds.attrs.get("segy_text_encoding", "ebcdic"))
        if encoding not in ("ebcdic", "ascii"):
            raise InputError(f"segy_text_encoding must be 'ebcdic' or 'ascii', not {encoding!r}")
        default = _default_text(["written by Strata"], 2 if rev2 else 1)
        text = text_header if text_header is not None else str(
            ds.attrs.get("segy_text_header", default))
        ext = [str(x) for x in ds.attrs.get("segy_extended_text_headers", [])]
    for w, value in (("TRACE_SAMPLE_COUNT", nt), ("TRACE_SAMPLE_INTERVAL", dt_us)):
        # keep a read dataset's words where they agree with the data (or are unset: 0)
        if kind == "shot" or np.any((heads[w] != value) & (heads[w] != 0)):
            heads[w][:] = value

    words.update(Interval=dt_us, Samples=nt, Format=code, ExtendedHeaders=len(ext),
                 TraceFlag=1, SEGYRevision=2 if rev2 else 1, SEGYRevisionMinor=0)
    if rev2:
        words.update(NumberOfTraces=n, FirstTraceOffset=0, ExtSamples=0,
                     MaxAdditionalTraceHeaders=0)

    rec = _record_dtype(nt, code, endian)
    records_per_block = max(1, _BLOCK_BYTES // rec.itemsize)
    for w, arr in heads.items():
        info = np.iinfo(rec[w])
        if arr.min() < info.min or arr.max() > info.max:
            raise InputError(f"trace header word {w} has values outside {info.min}..{info.max}")

    header = encode_text_header(text, encoding) + _binary_header(words, endian, rev2)
    header += b"".join(encode_text_header(t, encoding) for t in ext)
    try:
        with open(path, "wb") as fh:
            fh.write(header)
            for start in range(0, n, records_per_block):
                k = min(records_per_block, n - start)
                if kind == "trace":
                    block = np.asarray(da[start:start + k].values)
                else:
                    block = _shot_block(da, nrec, start, k)
                _check_cast(block, target, fmt)
                recs = np.zeros(k, rec)
                recs["data"] = block
                for w, arr in heads.items():
                    recs[w] = arr[start:start + k]
                fh.write(recs.tobytes())
    except BaseException:
        Path(path).unlink(missing_ok=True)  # never leave half a file behind
        raise


def _shot_block(da: xr.DataArray, nrec: int, start: int, k: int) -> np.ndarray:
    """Traces start…start+k of a (shot, receiver, time) array, shot-major, as (k, time)."""
    s0, s1 = start // nrec, (start + k - 1) // nrec + 1
    block = np.asarray(da[s0:s1].values).reshape(-1, da.shape[-1])
    off = start - s0 * nrec
    return block[off:off + k]


def _shot_headers(ds: xr.Dataset, nshot: int, nrec: int, scalar: int
                  ) -> dict[str, np.ndarray]:
    def per_trace(name: str, required: bool) -> np.ndarray | None:
        if name not in ds.coords and name not in ds.data_vars:
            if required:
                raise InputError(f"shot records have no {name} coordinate")
            return None
        c = ds[name]
        units = str(c.attrs.get("units", "m")).strip().lower()
        if units not in ("m", "metre", "metres", "meter", "meters"):
            raise InputError(f"{name} units {units!r}: expected metres")
        if set(c.dims) == {"shot"}:
            v = np.repeat(np.asarray(c.values, np.float64), nrec)
        elif set(c.dims) == {"receiver"}:
            v = np.tile(np.asarray(c.values, np.float64), nshot)
        elif set(c.dims) == {"shot", "receiver"}:
            v = np.asarray(c.transpose("shot", "receiver").values, np.float64).reshape(-1)
        elif c.dims == ():
            v = np.full(nshot * nrec, float(c.values))
        else:
            raise InputError(f"coordinate {name} has dims {c.dims}: expected (shot), "
                             "(receiver) or (shot, receiver)")
        return v

    n = nshot * nrec
    zeros = np.zeros(n)
    sx = per_trace("src_x", True)
    gx = per_trace("rec_x", True)
    sy = per_trace("src_y", False)
    gy = per_trace("rec_y", False)
    sz = per_trace("src_z", False)
    gz = per_trace("rec_z", False)
    assert sx is not None and gx is not None
    if sy is None or gy is None:
        offset = gx - sx
        sy = zeros if sy is None else sy
        gy = zeros if gy is None else gy
    else:
        offset = np.hypot(gx - sx, gy - sy)
    out = {
        "TRACE_SEQUENCE_LINE": np.arange(1, n + 1),
        "TRACE_SEQUENCE_FILE": np.arange(1, n + 1),
        "FieldRecord": np.repeat(np.arange(1, nshot + 1), nrec),
        "TraceNumber": np.tile(np.arange(1, nrec + 1), nshot),
        "TraceIdentificationCode": np.ones(n, np.int64),
        "SourceGroupScalar": np.full(n, scalar),
        "ElevationScalar": np.full(n, scalar),
        "CoordinateUnits": np.ones(n, np.int64),
        "SourceX": _scaled(sx, scalar, "src_x"),
        "SourceY": _scaled(sy, scalar, "src_y"),
        "GroupX": _scaled(gx, scalar, "rec_x"),
        "GroupY": _scaled(gy, scalar, "rec_y"),
        "SourceDepth": _scaled(zeros if sz is None else sz, scalar, "src_z"),
        "ReceiverGroupElevation": _scaled(zeros if gz is None else -gz, scalar, "rec_z"),
        "offset": _scaled(offset, 1, "offset"),
    }
    return {k: np.asarray(v, np.int64) for k, v in out.items()}
