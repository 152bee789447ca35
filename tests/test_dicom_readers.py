"""The dicomsdl reader (io.fastread) gives what pydicom gives, or hands the file to pydicom.

For every file of three corpora (dcm_qa_nih, pydicom's bundled test files, a synthetic cohort)
and for crafted files with odd values, the header as read by dicomsdl must agree with pydicom's
on everything the pipeline uses: each tag of _HEADER_TAGS through the helpers, b-values, the
Siemens CSA fields, the transfer syntax, the Pixel Data offset, and then the discovered series,
the decoded pixels and the built volumes. A file dicomsdl cannot read like pydicom must still be
read (by pydicom), never lost.
"""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from conftest import copy_pydicom_test_files, pydicom_test_files
from pydicom.dataelem import RawDataElement
from pydicom.multival import MultiValue
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless

from gynmri.io import dicom, fastread
from gynmri.io.dicom import (
    _FAST_TAGS,
    _HEADER_TAGS,
    bvalue,
    csa_image,
    discover,
    floats,
    get,
    list_files,
    number,
    read_header,
)
from gynmri.io.volumes import SeriesError, build_volumes, decode
from gynmri.synth import SynthSpec, plan_cohort, write_patient

DATA = Path(__file__).resolve().parents[2] / "shared/data/dcm_qa_nih"
TEST_FILES = pydicom_test_files()
FLOATS = {"ImagePositionPatient": 3, "ImageOrientationPatient": 6, "PixelSpacing": 2}


# pydicom warns about the odd values of the test files and crafted files: they are the point.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _pydicom_header(path: Path):
    try:
        return dicom._read_pydicom(path)
    except Exception:
        return None, None


def _plain(value):
    """Return a pydicom value as plain Python types (MultiValue -> list, IS -> int, ...)."""
    if isinstance(value, MultiValue | list):
        return [_plain(v) for v in value]
    if isinstance(value, pydicom.DataElement):
        return _plain(value.value)
    for kind in (bool, int, float, str, bytes):
        if isinstance(value, kind):
            return kind(value)
    return value


def _same(a, b) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def assert_headers_agree(path: Path, fast, offset, slow, slow_offset) -> None:
    """Assert that the dicomsdl header of ``path`` reads like pydicom's everywhere used."""
    name = path.name
    for key in _HEADER_TAGS:
        what = f"{name} {key}"
        assert (key in fast) == (key in slow), what
        assert _same(_plain(get(fast, key)), _plain(get(slow, key))), what
        assert _same(number(fast, key), number(slow, key)), what
        if key in FLOATS:
            a, b = floats(fast, key, FLOATS[key]), floats(slow, key, FLOATS[key])
            assert (a is None) == (b is None) and (a is None or np.array_equal(a, b)), what
    assert _same(bvalue(fast), bvalue(slow)), name
    assert csa_image(fast) == csa_image(slow), name  # mosaic tiles, slice normal, B_value
    syntax = fast.file_meta.get("TransferSyntaxUID")
    assert str(syntax) == str(slow.file_meta.get("TransferSyntaxUID")), name
    assert offset is None or offset == slow_offset, name
    for attribute in ("Rows", "Columns", "SOPInstanceUID", "ImagePositionPatient"):
        assert _same(_plain(getattr(fast, attribute, None)), _plain(getattr(slow, attribute, None)))


def check_corpus(files: list[Path]) -> list[Path]:
    """Compare both readers on every file; return the files the fast reader took."""
    taken = []
    for path in files:
        fast = fastread.read(path, _FAST_TAGS)
        slow, slow_offset = _pydicom_header(path)
        if fast is None:
            continue
        assert slow is not None, f"{path.name}: dicomsdl read what pydicom cannot"
        assert_headers_agree(path, *fast, slow, slow_offset)
        taken.append(path)
    return taken


def pixels_by_pydicom(path: Path) -> np.ndarray:
    ds = pydicom.dcmread(path, force=True)
    pixels = ds.pixel_array
    return pixels[None] if int(ds.get("NumberOfFrames") or 1) == 1 else pixels


def check_pixels(folder: Path) -> int:
    """Assert fast-read files decode exactly as pydicom decodes them; return how many did."""
    records, _ = discover(folder, modalities=None)
    count = 0
    for rec in records:
        if rec.reader != "dicomsdl" or rec.status != "pending":
            continue
        try:
            expected = pixels_by_pydicom(rec.path)
        except Exception:
            with pytest.raises(SeriesError):
                decode(rec)
            continue
        pixels = decode(rec)
        assert pixels.dtype == expected.dtype, rec.path.name
        assert np.array_equal(pixels, expected), rec.path.name
        count += 1
    return count


def outcome(folder: Path, modalities=("MR",)) -> tuple[list, list]:
    """Return the manifest and, per series, its facts and built volumes (or error)."""
    records, series = discover(folder, modalities)
    manifest = [(r.path, r.status, r.reason, r.series_uid, r.pixel_offset) for r in records]
    built = []
    for s in series:
        facts = {k: v for k, v in vars(s).items() if k not in ("files", "orientation")}
        facts["orientation"] = None if s.orientation is None else s.orientation.tolist()
        facts["files"] = [f.path for f in s.files]
        try:
            volumes, warns = build_volumes(s)
            result = [
                (
                    v.label,
                    v.bvalue,
                    [f.path for f in v.files],
                    v.image.GetOrigin(),
                    v.image.GetSpacing(),
                    v.image.GetDirection(),
                    sitk.GetArrayFromImage(v.image).tobytes(),
                )
                for v in volumes
            ]
        except SeriesError as err:
            result, warns = str(err), []
        built.append((facts, result, warns))
    return manifest, built


def assert_same_outcome(folder: Path, monkeypatch, modalities=("MR",)) -> None:
    fast = outcome(folder, modalities)
    with monkeypatch.context() as m:
        m.setattr(fastread, "read", lambda path, tags: None)
        slow = outcome(folder, modalities)
    # Pixel offsets: the fast reader may not find one where pydicom does (pixels then come
    # through pydicom), never a different one.
    for a, b in zip(fast[0], slow[0], strict=True):
        assert a[:4] == b[:4] and a[4] in (None, b[4]), a[0]
    assert len(fast[1]) == len(slow[1])
    for (facts_a, result_a, warns_a), (facts_b, result_b, warns_b) in zip(
        fast[1], slow[1], strict=True
    ):
        assert facts_a == facts_b
        assert result_a == result_b and warns_a == warns_b, facts_a["description"]


# --- dcm_qa_nih: real GE and Siemens (mosaic) files ---------------------------------------------

needs_nih = pytest.mark.skipif(
    not (DATA / "In").is_dir(), reason=f"dcm_qa_nih not found at {DATA} (real-data tests skipped)"
)


@needs_nih
def test_dcm_qa_nih_headers_agree_and_all_read_fast():
    files = sorted(p for p in (DATA / "In").rglob("*") if p.is_file())
    dicom_files = [p for p in files if p.suffix == ".dcm"]
    assert len(dicom_files) == 608
    assert check_corpus(files) == dicom_files


@needs_nih
def test_dcm_qa_nih_series_pixels_and_volumes_agree(monkeypatch):
    for folder in sorted({p.parent for p in (DATA / "In").rglob("*.dcm")}):
        assert_same_outcome(folder, monkeypatch)
        assert check_pixels(folder) == len(list(folder.glob("*.dcm")))


# --- pydicom's bundled test files: many syntaxes, vendors and oddities ---------------------------

needs_test_files = pytest.mark.skipif(
    not TEST_FILES.is_dir(), reason=f"pydicom's test files not found at {TEST_FILES}"
)
# Files the fast reader must take (explicit and implicit VR little endian, encapsulated syntaxes).
FAST_TEST_FILES = [
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_padded.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "CT_small.dcm",
    "JPEG2000.dcm",
    "dicomdirtests/77654033/CT2/17106",
]
# Files it must leave to pydicom: big endian, deflated, no file meta, functional groups,
# a data set encoded otherwise than its syntax says, a truncated Pixel Data element.
PYDICOM_TEST_FILES = [
    "MR_small_bigendian.dcm",
    "ExplVR_BigEnd.dcm",
    "image_dfl.dcm",
    "no_meta.dcm",
    "ExplVR_LitEndNoMeta.dcm",
    "liver_1frame.dcm",
    "SC_rgb_jpeg.dcm",
    "MR_truncated.dcm",
]


@pytest.fixture(scope="module")
def test_files(tmp_path_factory) -> Path:
    return copy_pydicom_test_files(tmp_path_factory, "pydicom")


@needs_test_files
def test_pydicom_test_files_headers_agree(test_files):
    taken = {p.relative_to(test_files).as_posix() for p in check_corpus(list_files(test_files))}
    assert set(FAST_TEST_FILES) <= taken
    assert not set(PYDICOM_TEST_FILES) & taken
    for name in PYDICOM_TEST_FILES:  # still read, by pydicom
        rec = read_header(test_files / name, modalities=None)
        assert rec.reader == "pydicom" or rec.reason == "not DICOM", name


@needs_test_files
def test_pydicom_test_files_series_pixels_and_volumes_agree(test_files, monkeypatch):
    assert_same_outcome(test_files, monkeypatch, modalities=None)
    assert check_pixels(test_files) >= 20


# --- a synthetic cohort: one patient per center (Siemens, GE, Philips conventions) --------------


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    spec = SynthSpec({"myoma": 1, "sarcoma": 2}, centers=3, seed=11)
    for _, row in plan_cohort(spec).groupby("center").head(1).iterrows():
        write_patient(spec, row, out / "dicom", out / "masks")
    return out / "dicom"


def test_synthetic_cohort_headers_agree_and_all_read_fast(synthetic):
    files = list_files(synthetic)  # with the odd non-DICOM file (Thumbs.db, ...)
    dicom_files = [p for p in files if _pydicom_header(p)[0] is not None]
    assert len(dicom_files) > 100
    assert check_corpus(files) == dicom_files


def test_synthetic_cohort_series_pixels_and_volumes_agree(synthetic, monkeypatch):
    for patient in sorted(synthetic.iterdir()):
        assert_same_outcome(patient, monkeypatch)
        assert check_pixels(patient) == sum(1 for p in list_files(patient) if p.suffix != ".db")


# --- crafted odd values: the fast reader agrees with pydicom or hands the file over -------------


def _base(implicit: bool, charset: str | None) -> bytes:
    """Return MR_small.dcm written in the wanted encoding and character set."""
    ds = pydicom.dcmread(TEST_FILES / "MR_small.dcm")
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    if charset:
        ds.SpecificCharacterSet = charset
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _craft(tmp_path: Path, elements, *, implicit=False, charset=None) -> Path:
    """Write MR_small.dcm with raw ``elements`` [(tag, VR, bytes)] written as they are."""
    # Re-read, so that pydicom writes the raw elements as given (same encoding, same charset).
    ds = pydicom.dcmread(io.BytesIO(_base(implicit, charset)))
    for tag, vr, raw in elements:
        raw += b" " if len(raw) % 2 and vr not in ("OB", "UN") else b"\x00" * (len(raw) % 2)
        ds[tag] = RawDataElement(
            Tag(tag), None if implicit else vr, len(raw), raw, 0, implicit, True
        )
    path = tmp_path / f"crafted{len(list(tmp_path.iterdir()))}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


DS_IS = [b"", b"  ", b"2.5", b" 2.5 ", b"abc", b"1,5", b"nan", b"1e400", b"-2.07e-013", b"3.0"]
TEXT = [b"", b" lead", b"a\\b", b"a \\b", b"x\x00", b"Tr\xe4 T2", b"\x1b$B", b"tab\there"]
CRAFTED = (
    [("SliceThickness", "DS", v) for v in DS_IS]
    + [("PixelSpacing", "DS", v) for v in (b"0.5\\0.5", b"0.5\\", b"0.5\\x", b"0,5\\0,5")]
    + [("InstanceNumber", "IS", v) for v in DS_IS + [b"+12", b"1_2", b"99999999999"]]
    + [("EchoNumbers", "IS", v) for v in (b"", b"2")]
    + [("Rows", "US", v) for v in (b"", b"\x40\x00", b"\x40\x00\x40\x00")]
    + [("SeriesDescription", "LO", v) for v in TEXT]
    + [("ImageType", "CS", v) for v in (*TEXT, b" A \\ B ", b"ORIGINAL\\\\MOSAIC")]
    + [("AcquisitionTime", "TM", v) for v in (b"101010.5", b"10:10:10", b"")]
    + [("SeriesInstanceUID", "UI", v) for v in (b"1.2.3\x00", b"1.2.3 ", b"")]
    + [("DiffusionBValue", "FD", v) for v in (b"", b"\x00" * 4, b"\x00\x00\x00\x00\x00@\x8f@")]
    + [("DiffusionBValue", "UN", b"\x00\x00\x00\x00\x00@\x8f@")]  # explicit UN, known tag
    + [("SliceThickness", "UN", b"3.0 ")]
    + [("Modality", "UN", b"MR")]
    + [((0x0043, 0x1039), "IS", b"1000\\8\\0\\0"), ((0x0019, 0x100C), "IS", b"800")]
    + [((0x2001, 0x1003), "FL", b"\x00\x00\x7a\x44"), ((0x2001, 0x1003), "UN", b"\x00\x00zD")]
    + [((0x0029, 0x0010), "LO", b"SIEMENS CSA HEADER"), ((0x0029, 0x1010), "OB", b"SV10junk")]
)


@needs_test_files
@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
@pytest.mark.parametrize("charset", [None, "ISO_IR 100", "ISO_IR 192", "ISO 2022 IR 87"])
def test_crafted_values_agree_or_fall_back(tmp_path, implicit, charset):
    taken = 0
    for tag, vr, raw in CRAFTED:
        if implicit and vr == "UN":
            continue  # an implicit file has no written VR
        path = _craft(tmp_path, [(tag, vr, raw)], implicit=implicit, charset=charset)
        taken += len(check_corpus([path]))
        rec = read_header(path, modalities=None)
        assert rec.reader in ("dicomsdl", "pydicom"), (tag, vr, raw)
    assert taken > len(CRAFTED) // 2  # the fast reader takes the ordinary values


@needs_test_files
def test_private_tags_with_their_creators_agree(tmp_path):
    creators = [((0x0029, 0x0010), "LO", b"SIEMENS CSA HEADER")]
    for implicit in (False, True):
        for raw in (b"SV10junk", b""):
            elements = [*creators, ((0x0029, 0x1010), "OB", raw), ((0x0043, 0x1039), "IS", b"5")]
            assert check_corpus([_craft(tmp_path, elements, implicit=implicit)])


# --- fall back: the fast reader rejects or fails, pydicom reads the file ------------------------


@needs_test_files
def test_no_preamble_file_is_read_by_pydicom(tmp_path):
    ds = pydicom.dcmread(TEST_FILES / "MR_small.dcm")
    del ds.file_meta
    ds.preamble = None
    path = tmp_path / "old_export"  # no preamble, no file meta, implicit VR
    ds.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=False)
    assert path.read_bytes()[128:132] != b"DICM"
    assert fastread.read(path, _FAST_TAGS) is None
    rec = read_header(path)
    assert rec.status == "pending" and rec.reader == "pydicom"
    assert rec.header.SOPInstanceUID == ds.SOPInstanceUID


@needs_test_files
def test_file_the_fast_reader_fails_on_is_read_by_pydicom(tmp_path, monkeypatch):
    shutil.copy(TEST_FILES / "MR_small.dcm", tmp_path)
    (rec,), _ = discover(tmp_path)
    assert rec.reader == "dicomsdl" and isinstance(rec.header, fastread.Header)

    def fail(*args, **kwargs):
        raise RuntimeError("dicomsdl failed")

    monkeypatch.setattr(fastread.dicomsdl, "open_memory", fail)
    (rec,), (series,) = discover(tmp_path)
    assert rec.reader == "pydicom" and isinstance(rec.header, pydicom.Dataset)
    assert build_volumes(series)[0][0].image.GetSize() == (64, 64, 1)


CRASH_CHECK = """
import sys
from pathlib import Path
from gynmri.io.dicom import discover
for folder in sys.argv[1:]:
    discover(Path(folder), modalities=None)
"""


@needs_test_files
def test_truncated_or_nested_pixel_data_never_crash_the_process(tmp_path):
    """dicomsdl segfaults on a Pixel Data element running past the end of the file (top level or
    in an icon image): such files must never reach it. Run in a child process, which a crash
    would kill."""
    for name in ("MR_small.dcm", "examples_overlay.dcm", "MR_small_jp2klossless.dcm"):
        data = (TEST_FILES / name).read_bytes()
        folder = tmp_path / name
        folder.mkdir()
        for cut in range(1000, len(data), max(1, len(data) // 150)):
            (folder / f"cut{cut}.dcm").write_bytes(data[:cut])
    folders = [str(f) for f in tmp_path.iterdir()]
    run = subprocess.run([sys.executable, "-c", CRASH_CHECK, *folders], capture_output=True)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    cut = tmp_path / "examples_overlay.dcm" / "cut10000.dcm"  # in the icon's Pixel Data
    cut.write_bytes((TEST_FILES / "examples_overlay.dcm").read_bytes()[:10000])
    assert fastread.read(cut, _FAST_TAGS) is None


def test_non_dicom_file_is_not_dicom(tmp_path):
    (tmp_path / "notes.txt").write_text("hello " * 100)
    (tmp_path / "fake.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 64)
    (tmp_path / "empty").write_bytes(b"")
    records, series = discover(tmp_path)
    assert series == []
    reasons = {r.path.name: r.reason for r in records}
    assert reasons["notes.txt"] == "not DICOM" and reasons["empty"] == "not DICOM"
    assert reasons["fake.dcm"]  # excluded with a reason, whatever it is


@needs_test_files
def test_compressed_pixels_decode_as_pydicom(tmp_path):
    """Encapsulated syntaxes: headers read fast, pixels decoded by pydicom, as before."""
    ds = pydicom.dcmread(TEST_FILES / "MR_small.dcm")
    ds.compress(RLELossless, encoding_plugin="pydicom")
    ds.save_as(tmp_path / "rle.dcm", enforce_file_format=True)
    (rec,), _ = discover(tmp_path)
    assert rec.reader == "dicomsdl"
    assert np.array_equal(decode(rec)[0], pydicom.dcmread(TEST_FILES / "MR_small.dcm").pixel_array)


def test_header_access_like_pydicom():
    header = fastread.Header({0x00280010: 64, 0x00431039: [1000, 8, 0, 0]})
    assert header.Rows == 64 and header.get("Rows") == 64 and header.get((0x0028, 0x0010)) == 64
    assert "Rows" in header and (0x0043, 0x1039) in header and Tag(0x00431039) in header
    assert "Columns" not in header and header.get("Columns") is None
    assert bvalue(header) == 1000.0
    with pytest.raises(AttributeError):
        _ = header.Columns
