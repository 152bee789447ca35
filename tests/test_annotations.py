"""Annotations: NIfTI masks, DICOM SEG and slice-range tables give masks on the series grid."""

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from gynmri.io.annotations import AnnotationError, AnnotationIndex
from gynmri.io.cases import CasesError, read_slice_ranges
from gynmri.io.choice import choose_volume
from gynmri.io.dicom import discover
from gynmri.io.volumes import build_volumes
from gynmri.synth import SynthSpec, plan_cohort, write_patient

SPEC = SynthSpec({"myoma": 1, "sarcoma": 1}, centers=1, seed=9)


@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    out = tmp_path_factory.mktemp("ann")
    row = plan_cohort(SPEC).iloc[0]
    write_patient(SPEC, row, out / "dicom", out / "masks")
    _, series = discover(out / "dicom" / row.patient_dir)
    t2 = next(s for s in series if s.plane == "axial" and "t2" in s.description.lower())
    volume = choose_volume(build_volumes(t2)[0], "highest")
    nifti = out / "masks" / row.patient_dir / f"{t2.uid}.nii.gz"
    return out, t2, volume, sitk.GetArrayFromImage(sitk.ReadImage(str(nifti)))


def _seg(series, mask: np.ndarray, out: Path) -> Path:
    """Write a DICOM SEG (highdicom) of ``mask`` (z sorted along the normal) over ``series``."""
    normal = np.cross(series.orientation[:3], series.orientation[3:])
    sources = sorted(
        (pydicom.dcmread(f.path) for f in series.files),
        key=lambda d: float(np.dot(normal, [float(v) for v in d.ImagePositionPatient])),
    )
    desc = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="tumour",
        segmented_property_category=hd.sr.CodedConcept(
            "49755003", "SCT", "Morphologically Altered Structure"
        ),
        segmented_property_type=hd.sr.CodedConcept("108369006", "SCT", "Neoplasm"),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
    )
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=mask.astype(bool),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[desc],
        series_instance_uid=hd.UID(),
        series_number=99,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="gynmri",
        manufacturer_model_name="test",
        software_versions="0",
        device_serial_number="0",
    )
    out.mkdir(parents=True, exist_ok=True)
    seg.save_as(out / "tumour_seg.dcm")
    return out / "tumour_seg.dcm"


def test_nifti_mask_is_found_and_checked(patient):
    out, t2, volume, truth = patient
    index = AnnotationIndex(next((out / "masks").glob("*/*")))
    assert index.source(t2) == "mask"
    mask = index.mask_for(t2, volume.image, volume.files)
    assert np.array_equal(sitk.GetArrayFromImage(mask), truth) and truth.sum() > 0


def test_dicom_seg_gives_the_same_mask(patient, tmp_path):
    out, t2, volume, truth = patient
    _seg(t2, truth, tmp_path / "seg")
    index = AnnotationIndex(tmp_path / "seg")
    assert index.source(t2) == "seg"
    mask = index.mask_for(t2, volume.image, volume.files)
    assert np.array_equal(sitk.GetArrayFromImage(mask), truth)


def test_slice_range_marks_whole_slices(patient, tmp_path):
    out, t2, volume, truth = patient
    by_number = {int(f.header.InstanceNumber): f for f in volume.files}
    first, last = sorted(by_number)[3], sorted(by_number)[6]
    index = AnnotationIndex(
        tmp_path / "none", ranges=[{"series": str(t2.number), "first": first, "last": last}]
    )
    assert index.source(t2) == "slice range"
    mask = sitk.GetArrayFromImage(index.mask_for(t2, volume.image, volume.files))
    assert mask.sum() == 4 * mask.shape[1] * mask.shape[2]
    bad = AnnotationIndex(tmp_path / "none", ranges=[{"series": t2.uid, "first": 900, "last": 901}])
    with pytest.raises(AnnotationError, match="900-901"):
        bad.mask_for(t2, volume.image, volume.files)


def test_mask_on_another_grid_names_mask_and_series(patient, tmp_path):
    out, t2, volume, truth = patient
    img = sitk.GetImageFromArray(truth[:-1])  # one slice short
    img.SetSpacing(volume.image.GetSpacing())
    sitk.WriteImage(img, str(tmp_path / f"{t2.uid}.nii.gz"))
    with pytest.raises(AnnotationError, match=rf"series {t2.number} .*mask {t2.uid}.nii.gz.*size"):
        AnnotationIndex(tmp_path).mask_for(t2, volume.image, volume.files)


def test_slice_range_table_is_validated(tmp_path):
    path = tmp_path / "ranges.tsv"
    path.write_text("patient_dir\tseries\tfirst\tlast\nc/p1\t2\t5\t9\nc/p1\t3\t4\t6\n")
    assert read_slice_ranges(path)["c/p1"][1] == {"series": "3", "first": 4, "last": 6}
    path.write_text("patient_dir\tseries\tfirst\tlast\nc/p1\t2\t9\t5\n")
    with pytest.raises(CasesError, match="row 2: first 9 > last 5"):
        read_slice_ranges(path)
    assert read_slice_ranges(None) == {}
