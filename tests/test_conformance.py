"""Series -> volume reconstruction agrees with dcm2niix on real scanner files (dcm_qa_nih).

dcm_qa_nih holds GE 2-D EPI (15 slices x 10 volumes, one file per slice) and Siemens mosaics
(5 tiles per file, 2 files) with dcm2niix's NIfTI as reference. For each series and volume we
compare:

- shape (x, y, z) and number of volumes (the reference's 4th axis);
- geometry: our LPS affine -> RAS (first two rows negated) is matched to the reference affine
  through an index map T = inv(ours) @ ref, which must be a signed permutation with integer
  offsets (dcm2niix flips the row axis to make a NIfTI-conventional image); with T rounded,
  ours @ T must equal the reference affine within 1e-3 (i.e. every voxel center has the same
  world coordinates), and the voxel spacings must agree within 1e-3 mm;
- voxel values at the matched voxels: equal (correlation > 0.999 accepted if scaling differs).
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from gynmri.io.dicom import discover
from gynmri.io.volumes import build_volumes

DATA = Path(__file__).resolve().parents[2] / "shared/data/dcm_qa_nih"
VENDOR_FOLDERS = {"GE": "20180918GE", "Siemens": "20180918Si"}

pytestmark = pytest.mark.skipif(
    not (DATA / "Ref").is_dir(),
    reason=f"dcm_qa_nih not found at {DATA} (real-data conformance test skipped)",
)


def references() -> list[Path]:
    return sorted((DATA / "Ref").glob("*.nii")) if (DATA / "Ref").is_dir() else []


def ras_affine(image: sitk.Image) -> np.ndarray:
    """Return the voxel index (x, y, z) -> RAS world affine of a SimpleITK (LPS) image."""
    direction = np.array(image.GetDirection()).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction * np.array(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine


@pytest.fixture(scope="module")
def built():
    out = {}
    for vendor, folder in VENDOR_FOLDERS.items():
        for series_dir in sorted((DATA / "In" / folder).glob("mr_*")):
            records, series = discover(series_dir)
            assert len(series) == 1, series_dir
            assert all(r.status == "pending" or r.reason == "not DICOM" for r in records)
            out[vendor, series[0].number] = build_volumes(series[0])
    return out


def test_every_input_series_has_a_reference(built):
    assert len(built) == 8
    assert len(references()) == 8


@pytest.mark.parametrize("ref_path", references(), ids=lambda p: p.stem)
def test_matches_dcm2niix(built, ref_path: Path):
    meta = json.loads(ref_path.with_suffix(".json").read_text())
    vendor = "GE" if meta["Manufacturer"].upper().startswith("GE") else "Siemens"
    volumes, warnings = built[vendor, int(meta["SeriesNumber"])]
    assert warnings == []
    ref = nib.load(ref_path)
    data = np.asarray(ref.dataobj)
    data = data[..., None] if data.ndim == 3 else data
    assert len(volumes) == data.shape[3]
    ref_shape = data.shape[:3]
    for t, volume in enumerate(volumes):
        image = volume.image
        ours = ras_affine(image)
        index_map = np.linalg.inv(ours) @ ref.affine  # reference index -> our index
        rounded = np.round(index_map)
        assert np.allclose(index_map, rounded, atol=1e-3), index_map
        perm = np.abs(rounded[:3, :3])
        assert np.array_equal(perm @ perm.T, np.eye(3)), "not a signed permutation"
        assert np.allclose(ours @ rounded, ref.affine, atol=1e-3)
        our_size = np.array(image.GetSize())
        assert sorted(perm @ our_size) == sorted(ref_shape)
        assert np.allclose(
            perm @ np.array(image.GetSpacing()), ref.header.get_zooms()[:3], atol=1e-3
        )
        idx = np.indices(ref_shape).reshape(3, -1)
        ours_idx = (rounded[:3, :3] @ idx + rounded[:3, 3:]).astype(int)
        assert ours_idx.min() >= 0 and np.all(ours_idx.max(axis=1) < our_size)
        xyz = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
        values = xyz[ours_idx[0], ours_idx[1], ours_idx[2]].reshape(ref_shape)
        expected = data[..., t].astype(np.float32)
        if not np.array_equal(values, expected):
            corr = np.corrcoef(values.ravel(), expected.ravel())[0, 1]
            assert corr > 0.999, f"volume {t}: correlation {corr:.5f}"
        assert len(volume.files) == (1 if vendor == "Siemens" else ref_shape[2])
