"""Compiled DICOM header reading (dicomsdl) that gives the values pydicom would give.

dicomsdl parses the structure of a file; the raw bytes of the wanted elements are then converted
as pydicom converts them (same VR rules, same values as int/float/str/bytes or lists of them).
Wherever pydicom's result could differ (no preamble; a syntax other than implicit or explicit VR
little endian; a data set not encoded as its syntax says; functional-group sequences; non-ASCII
or oddly padded text; malformed numbers; odd lengths...) ``read`` returns None and the caller
reads the file with pydicom: the fast reader only takes files it reads exactly as pydicom would.

dicomsdl crashes the process (no exception) on a Pixel Data element that runs past the end of the
file or holds broken fragments, also when decoding compressed frames. So it never parses the
Pixel Data of a file nor decodes pixels, and files with a truncated or a nested (icon) Pixel Data
element, or deflated data, are left to pydicom.
"""

from __future__ import annotations

import struct
from functools import cache, lru_cache
from pathlib import Path

import dicomsdl
from pydicom.datadict import dictionary_VR, keyword_dict, private_dictionary_VR, tag_for_keyword
from pydicom.uid import UID

dicomsdl.set_loglevel(dicomsdl.LogLevel.DISABLE)  # failures are handled: pydicom reads the file

_TRANSFER_SYNTAX = 0x00020010
_PIXEL_DATA = b"\xe0\x7f\x10\x00"
_SEQUENCE_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
# Explicit VRs with a 4-byte length (and 2 reserved bytes before it).
_LONG_VRS = {vr.encode() for vr in "OB OD OF OL OV OW SQ SV UC UN UR UT UV".split()}
# dicomsdl's VR codes as ints: comparing or hashing its enum objects costs ~1 us each.
_VR_NAMES = {int(v): k for k, v in dicomsdl.VR.type.__members__.items()}
_NO_VALUE, _SEQUENCE = int(dicomsdl.VR.NONE), int(dicomsdl.VR.SQ)


class Header:
    """Header elements of one file, accessed as on a pydicom Dataset: ``get``, ``in``, attributes.

    Keys are keywords, (group, element) tuples or int tags; values are those pydicom gives, as
    plain str/int/float/bytes or a list of them for multi-valued elements.
    """

    __slots__ = ("_values", "file_meta")

    def __init__(self, values: dict[int, object], file_meta: Header | None = None):
        self._values = values
        self.file_meta = file_meta

    def get(self, key, default=None):
        """Return the value of an element, or ``default`` when it was not read."""
        tag = keyword_dict.get(key)  # a keyword, the usual key (None for a tag given as numbers)
        return self._values.get(_tag(key) if tag is None else tag, default)

    def __contains__(self, key) -> bool:
        return _tag(key) in self._values

    def __getattr__(self, name: str):
        if not name.startswith("_"):
            tag = _keyword_tag(name)
            if tag in self._values:
                return self._values[tag]
        raise AttributeError(f"'Header' has no element {name!r}")

    def __repr__(self) -> str:
        return f"Header({len(self._values)} elements)"


@cache
def _keyword_tag(keyword: str) -> int | None:
    return tag_for_keyword(keyword)


def _tag(key) -> int | None:
    if isinstance(key, str):
        return _keyword_tag(key)
    if isinstance(key, tuple):
        return (key[0] << 16) | key[1]
    return int(key)


@cache
def _standard_vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


@lru_cache(maxsize=1024)  # creators come from files: keep it bounded
def _private_vr(tag: int, creator: str) -> str:
    try:
        return private_dictionary_VR(tag, creator)
    except KeyError:
        return "UN"


def _vr(tag: int, written: str | None, length: int, values: dict[int, object]) -> str | None:
    """Return the VR pydicom uses for an element (``written``: explicit VR, None if implicit)."""
    if written is not None and written != "UN":
        return written
    group, element = tag >> 16, tag & 0xFFFF
    if group % 2 == 0:  # standard: the dictionary (pydicom replaces a short explicit UN too)
        if written == "UN" and length >= 0xFFFF:
            return "UN"
        return _standard_vr(tag) if element else None
    if element < 0x100:  # private creator
        return "LO" if element >= 0x10 else "UN"
    # A private element: pydicom knows its VR only if its creator was read.
    creator = values.get((group << 16) | (element >> 8))
    return _private_vr(tag, creator) if isinstance(creator, str) and creator else "UN"


# Converters mirror pydicom's (pydicom.values) for the VRs of the header tags, with default
# settings; they raise ValueError where pydicom's result could differ (the file then goes to
# pydicom). Values come out as str/int/float/bytes, or a list of them when multi-valued.


def _split(text: str):
    parts = text.split("\\")
    return parts[0] if len(parts) == 1 else parts


def _string(raw: bytes):
    """CS, UI, TM: pydicom decodes them as Latin-1 and strips trailing spaces and NULs."""
    return _split(raw.decode("latin-1").rstrip(" \x00"))


def _text(raw: bytes):
    """LO, SH: decoded with the character set, then each value right-stripped."""
    # Printable ASCII (no ESC) decodes alike in every character set pydicom knows.
    text = raw.decode("ascii").rstrip(" \x00")
    if not text.isprintable() or " \\" in text:
        raise ValueError("characters or padding that pydicom may read otherwise")
    return _split(text)


def _long_text(raw: bytes):
    """LT: one value (backslashes are text), trailing spaces and NULs stripped."""
    text = raw.decode("ascii").rstrip(" \x00")
    if not text.isprintable():
        raise ValueError("characters that pydicom may read otherwise")
    return text


def _decimal(raw: bytes):
    """DS: DSfloat(value) is float(value) (an unparsable value raises: pydicom decides)."""
    values = [float(v) for v in raw.decode("ascii").rstrip(" \x00").split("\\")]
    return values[0] if len(values) == 1 else values


def _integer(raw: bytes):
    """IS: IS(value) is int(value) for integer text (pydicom also takes '3.0': it decides)."""
    values = [int(v) for v in raw.decode("ascii").rstrip(" \x00").split("\\")]
    return values[0] if len(values) == 1 else values


def _numbers(code: str):
    size = struct.calcsize(code)

    def convert(raw: bytes):
        count, rest = divmod(len(raw), size)
        if rest:
            raise ValueError("length not a multiple of the value size")
        values = struct.unpack(f"<{count}{code}", raw)
        return values[0] if count == 1 else list(values)

    return convert


_CONVERT = {
    **dict.fromkeys(("CS", "UI", "TM"), _string),
    **dict.fromkeys(("LO", "SH"), _text),
    "LT": _long_text,
    "DS": _decimal,
    "IS": _integer,
    **{vr: _numbers(code) for vr, code in zip("US SS UL SL FL FD".split(), "HhLlfd", strict=True)},
    **dict.fromkeys(("OB", "OW", "UN"), bytes),
}
_EMPTY_TEXT = {"CS", "UI", "TM", "LO", "SH", "LT"}  # empty value '' (else None), as pydicom


def _value(vr: str | None, raw: bytes):
    """Return pydicom's value of an element from its raw bytes; ValueError when unsure."""
    if raw:
        return _CONVERT[vr](raw)  # KeyError (other VRs, SQ, None) also sends the file to pydicom
    if vr not in _CONVERT:
        raise ValueError(f"VR {vr} not converted here")
    return "" if vr in _EMPTY_TEXT else None


def _pixel_offset(values: dict[int, object], data: bytes, pos: int, implicit: bool) -> int | None:
    """Return ``pos`` when a native Pixel Data element of the expected size starts there (as
    pydicom reports it), else None: the pixels then come through pydicom."""
    try:
        size = int(values[0x00280010]) * int(values[0x00280011])  # Rows, Columns
        size *= int(values.get(0x00280008) or 1) * int(values.get(0x00280002) or 1)
        bits = int(values[0x00280100])
    except (KeyError, TypeError, ValueError):
        return None
    size = size * bits // 8
    head = 8 if implicit else 12
    length = int.from_bytes(data[pos + head - 4 : pos + head], "little")
    return pos if bits % 8 == 0 and length == size + size % 2 else None


def _file_meta(data: bytes) -> tuple[int, bytes] | None:
    """Return where the data set starts and the raw Transfer Syntax UID, from the file meta
    (explicit VR little endian after the preamble); None when its group length is not right."""
    pos, syntax, group_length = 132, None, None
    while data[pos : pos + 2] == b"\x02\x00":
        if data[pos + 4 : pos + 6] in _LONG_VRS:
            head, length = 12, int.from_bytes(data[pos + 8 : pos + 12], "little")
        else:
            head, length = 8, int.from_bytes(data[pos + 6 : pos + 8], "little")
        value = data[pos + head : pos + head + length]
        if data[pos + 2 : pos + 4] == b"\x00\x00":
            group_length = (pos + head + length + int.from_bytes(value, "little"), length)
        elif data[pos + 2 : pos + 4] == b"\x10\x00":
            syntax = value
        pos += head + length
    if syntax is None or group_length != (pos, 4):
        return None
    return pos, syntax


def _raw(data: bytes, element) -> bytes:
    """Return an element's value bytes as in the file (toBytes() strips text, pydicom not)."""
    offset = element.offset()
    return data[offset : offset + element.length()]


def _pixel_data(data: bytes, start: int, implicit: bool) -> tuple[bool, int | None]:
    """Return whether dicomsdl may parse the file, and where its Pixel Data element starts.

    dicomsdl crashes (no exception) on a Pixel Data element that runs past the end of the file or
    holds broken fragments, and it parses those nested in the header (icon images) too. Files
    with more than one Pixel Data element, or a truncated one, are left to pydicom. The search
    jumps over each element's value, so it reads the header, not the pixels.
    """
    found = []
    pos = data.find(_PIXEL_DATA, start)
    while pos != -1:
        head = 8 if implicit else 12
        if not implicit and data[pos + 4 : pos + 6] not in (b"OB", b"OW"):
            pos = data.find(_PIXEL_DATA, pos + 4)  # the bytes of some other value
            continue
        found.append(pos)
        length = int.from_bytes(data[pos + head - 4 : pos + head], "little")
        if length == 0xFFFFFFFF:  # encapsulated: up to its sequence delimiter
            end = data.find(_SEQUENCE_END, pos + head)
            if end == -1:
                return False, None
            pos = data.find(_PIXEL_DATA, end + 8)
        elif pos + head + length > len(data):
            return False, None
        else:
            pos = data.find(_PIXEL_DATA, pos + head + length)
    if len(found) > 1:
        return False, None
    return True, found[0] if found else None


@lru_cache(maxsize=64)
def _syntax(raw: bytes) -> UID | None:
    """Return the transfer syntax if its data set is little endian and not deflated, else None."""
    try:
        uid = UID(_value("UI", raw))
    except (TypeError, ValueError):
        return None
    ok = uid.is_transfer_syntax and uid.is_little_endian and not uid.is_deflated
    return uid if ok else None


def read(path: Path, tags: list[int]) -> tuple[Header, int | None] | None:
    """Return a file's header (``tags`` only) and Pixel Data offset, or None: read with pydicom.

    ``tags`` must be sorted (private creators before their elements).
    """
    data = path.read_bytes()
    if data[128:132] != b"DICM":
        return None  # no preamble: pydicom's forced read decides what it is
    meta = _file_meta(data)
    if meta is None:
        return None
    start, raw_syntax = meta
    uid = _syntax(raw_syntax)
    if uid is None:
        return None  # dicomsdl never sees deflated or big endian data
    # pydicom reads the data set as its first element is encoded, whatever the syntax says.
    first_vr = data[start + 4 : start + 6]
    implicit = not (len(first_vr) == 2 and all(0x40 < c < 0x5B for c in first_vr))
    if implicit != uid.is_implicit_VR:
        return None
    safe, pixels = _pixel_data(data, start, implicit)
    if not safe:
        return None
    try:
        # Parse only up to the last wanted tag: never the Pixel Data itself.
        ds = dicomsdl.open_memory(data, False, tags[-1])
        if _raw(data, ds.getDataElement(_TRANSFER_SYNTAX)) != raw_syntax:
            return None  # dicomsdl read another file meta than pydicom would
        values: dict[int, object] = {}
        for tag in tags:
            element = ds.getDataElement(tag)
            code = int(element.vr())
            if code == _NO_VALUE:
                continue
            if code == _SEQUENCE:
                return None  # functional groups: pydicom's data model
            offset = element.offset()
            raw = data[offset : offset + element.length()]  # as in the file: toBytes() strips
            vr = None if implicit else _VR_NAMES.get(code, "?")
            if vr is None or vr == "UN":
                vr = _vr(tag, vr, len(raw), values)
            values[tag] = _value(vr, raw)
    except Exception:  # dicomsdl could not parse it, or a value pydicom might read otherwise
        return None
    offset = None if pixels is None else _pixel_offset(values, data, pixels, implicit)
    return Header(values, Header({_TRANSFER_SYNTAX: uid})), offset
