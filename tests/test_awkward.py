"""Discovery and volume building never crash on awkward files: pydicom's bundled test files.

Every bundled file (on disk only; nothing is fetched) is copied into one cohort folder. Each
must end up either in a series that builds or with a reason, and the compressed transfer
syntaxes must decode through the installed pylibjpeg plugins.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
import SimpleITK as sitk
from conftest import copy_pydicom_test_files, pydicom_test_files

from gynmri.io.dicom import discover, list_files
from gynmri.io.volumes import build_volumes, decode
from gynmri.preprocessing.harmonize import SeriesError

TEST_FILES = pydicom_test_files()

SYNTAXES = {  # syntax family -> transfer syntax UIDs
    "JPEG baseline": {"1.2.840.10008.1.2.4.50"},
    "JPEG lossless": {"1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"},
    "JPEG-LS": {"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"},
    "JPEG 2000": {"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"},
    "RLE": {"1.2.840.10008.1.2.5"},
}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    return copy_pydicom_test_files(tmp_path_factory, "awkward")


def outcome(folder: Path, modalities):
    """Return the manifest as {file: outcome}, building every discovered series."""
    records, series = discover(folder, modalities)
    built = {}
    for s in series:
        try:
            volumes, _ = build_volumes(s)
            assert volumes and all(v.image.GetNumberOfPixels() > 0 for v in volumes)
            reason = "built"
        except SeriesError as err:
            reason = str(err)
        assert reason, s.uid
        built.update({id(f): reason for f in s.files})
    return records, {
        r.path: r.reason if r.status == "excluded" else built.get(id(r)) for r in records
    }


@pytest.mark.parametrize("modalities", [("MR",), None], ids=["MR only", "all modalities"])
def test_every_file_is_accounted_for(cohort, modalities):
    records, manifest = outcome(cohort, modalities)
    assert (
        len(records) == len(list_files(cohort)) == sum(1 for p in cohort.rglob("*") if p.is_file())
    )
    missing = [p.name for p, reason in manifest.items() if not reason]
    assert missing == []
    reasons = set(manifest.values())
    assert "not DICOM" in reasons
    assert any(r.startswith("not an image") for r in reasons)
    if modalities:
        assert any(r.startswith("not MR") for r in reasons)
        assert manifest[cohort / "MR_small.dcm"] == "built"
        # Same SOPInstanceUID as MR_small.dcm, re-encoded: kept once.
        assert manifest[cohort / "MR_small_RLE.dcm"].startswith("duplicate instance")
        # Tri-plane localizers and radial scans in dicomdirtests/98892003.
        assert "mixed orientations in one series" in reasons


def test_truncated_pixel_data_names_file_and_syntax(tmp_path):
    shutil.copy(TEST_FILES / "MR_truncated.dcm", tmp_path)
    _, (series,) = discover(tmp_path)
    with pytest.raises(
        SeriesError,
        match=r"MR_truncated.dcm: pixel data unreadable "
        r"\(Explicit VR Little Endian",
    ):
        build_volumes(series)


@pytest.mark.parametrize("family", list(SYNTAXES))
def test_compressed_syntaxes_decode(cohort, family):
    records, _ = discover(cohort, modalities=None)
    decoded = []
    for rec in records:
        if (
            rec.header is None
            or str(rec.header.file_meta.get("TransferSyntaxUID")) not in SYNTAXES[family]
        ):
            continue
        try:
            pixels = decode(rec)
        except SeriesError:
            continue
        assert pixels.shape[1:3] == (rec.header.Rows, rec.header.Columns)
        decoded.append(rec.path.name)
    assert decoded, f"no {family} file decoded"


@pytest.mark.parametrize(
    "name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"]
)
def test_compressed_mr_builds_like_uncompressed(tmp_path, name):
    for n in ("MR_small.dcm", name):
        (tmp_path / n.removesuffix(".dcm")).mkdir()
        shutil.copy(TEST_FILES / n, tmp_path / n.removesuffix(".dcm") / n)
    _, (plain,) = discover(tmp_path / "MR_small")
    _, (packed,) = discover(tmp_path / name.removesuffix(".dcm"))
    a = sitk.GetArrayFromImage(build_volumes(plain)[0][0].image)
    b = sitk.GetArrayFromImage(build_volumes(packed)[0][0].image)
    assert (a == b).all()


@pytest.mark.parametrize("name", ["MR_small.dcm", "MR_small_implicit.dcm", "CT_small.dcm"])
def test_native_fast_path_matches_pydicom(tmp_path, name):
    shutil.copy(TEST_FILES / name, tmp_path)
    (rec,), _ = discover(tmp_path, modalities=None)
    assert rec.pixel_offset is not None
    fast = decode(rec)
    assert fast.dtype == pydicom.dcmread(TEST_FILES / name).pixel_array.dtype
    assert (fast[0] == pydicom.dcmread(TEST_FILES / name).pixel_array).all()
