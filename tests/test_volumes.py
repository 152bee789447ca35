"""Series -> volumes on small synthetic DICOM files written with pydicom."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from gynmri.io.choice import choose_volume
from gynmri.io.dicom import discover
from gynmri.io.volumes import build_volumes
from gynmri.preprocessing.harmonize import SeriesError

MR = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
_uids = itertools.count(1)


def _base(sop_class: str, series_uid: str, rows: int, cols: int) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.Modality, ds.SeriesInstanceUID = sop_class, "MR", series_uid
    ds.SeriesNumber, ds.SeriesDescription = 1, "test"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, 1
    ds.PhotometricInterpretation, ds.BitsAllocated, ds.BitsStored = "MONOCHROME2", 16, 16
    ds.HighBit, ds.PixelRepresentation = 15, 0
    return ds


def write_slice(
    folder: Path, value: int, ipp, series_uid: str, *, instance: int, iop=(1, 0, 0, 0, 1, 0), **tags
) -> Path:
    """Write a 4x3 slice filled with ``value``; extra keyword tags go into the header."""
    ds = _base(MR, series_uid, 4, 3)
    ds.ImagePositionPatient, ds.ImageOrientationPatient = list(ipp), list(iop)
    ds.PixelSpacing, ds.SliceThickness, ds.InstanceNumber = [0.5, 0.7], 2.0, instance
    for key, val in tags.items():
        setattr(ds, key, val)
    ds.PixelData = np.full((4, 3), value, np.uint16).tobytes()
    path = folder / f"f{next(_uids):04d}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def series_of(folder: Path):
    records, series = discover(folder)
    assert len(series) == 1, [r.reason for r in records]
    return series[0]


def plane_values(image: sitk.Image) -> list[float]:
    return [float(v) for v in sitk.GetArrayFromImage(image)[:, 0, 0]]


def test_slices_ordered_along_normal_not_instance_number(tmp_path):
    uid = generate_uid()
    # Sagittal slices, normal = row x column = (0,1,0) x (0,0,-1) = (-1,0,0): x descends.
    # Written in scrambled order and numbering.
    iop = (0, 1, 0, 0, 0, -1)
    for instance, x in zip([3, 1, 5, 2, 4], [10.0, -10.0, 0.0, 5.0, -5.0], strict=True):
        write_slice(tmp_path, int(x + 100), (x, -20, 30), uid, instance=instance, iop=iop)
    volumes, warnings = build_volumes(series_of(tmp_path))
    assert warnings == [] and len(volumes) == 1 and volumes[0].label == ""
    image = volumes[0].image
    assert plane_values(image) == [110, 105, 100, 95, 90]
    assert image.GetOrigin() == (10.0, -20.0, 30.0)
    assert np.allclose(image.GetSpacing(), (0.7, 0.5, 5.0))
    assert np.allclose(np.array(image.GetDirection()).reshape(3, 3)[:, 2], (-1, 0, 0))
    assert len(volumes[0].files) == 5


def test_rescale_applied(tmp_path):
    uid = generate_uid()
    for k in range(2):
        write_slice(
            tmp_path, 10, (0, 0, k), uid, instance=k + 1, RescaleSlope=2.5, RescaleIntercept=-3
        )
    (volume,), _ = build_volumes(series_of(tmp_path))
    assert sitk.GetArrayFromImage(volume.image).dtype == np.float32
    assert plane_values(volume.image) == pytest.approx([22.0, 22.0])


def test_two_bvalues_give_two_volumes(tmp_path):
    uid = generate_uid()
    for instance, (b, z) in enumerate(itertools.product([0, 1000], [0.0, 4.0, 8.0]), 1):
        write_slice(tmp_path, b + int(z), (0, 0, z), uid, instance=instance, DiffusionBValue=b)
    volumes, _ = build_volumes(series_of(tmp_path))
    assert [v.label for v in volumes] == ["b=0", "b=1000"]
    assert [v.bvalue for v in volumes] == [0.0, 1000.0]
    assert plane_values(volumes[1].image) == [1000, 1004, 1008]
    assert choose_volume(volumes, "highest").bvalue == 1000
    assert choose_volume(volumes, 0).bvalue == 0
    with pytest.raises(SeriesError, match="b-value 500"):
        choose_volume(volumes, "500")


@pytest.mark.parametrize("key", ["AcquisitionNumber", "TemporalPositionIdentifier"])
def test_repeats_split_by_acquisition_or_temporal_index(tmp_path, key):
    uid = generate_uid()
    instances = iter([6, 2, 5, 1, 4, 3])  # numbering says nothing about the volume
    for t, z in itertools.product([1, 2], [0.0, 3.0, 6.0]):
        write_slice(tmp_path, 10 * t + int(z), (0, 0, z), uid, instance=next(instances), **{key: t})
    volumes, _ = build_volumes(series_of(tmp_path))
    assert [v.label for v in volumes] == ["volume 1", "volume 2"]
    assert [plane_values(v.image) for v in volumes] == [[10, 13, 16], [20, 23, 26]]
    assert choose_volume(volumes, "highest") is volumes[0]


def test_slightly_uneven_spacing_warns(tmp_path):
    uid = generate_uid()
    for k, z in enumerate([0.0, 5.0, 10.0, 16.0, 21.0]):
        write_slice(tmp_path, k, (0, 0, z), uid, instance=k + 1)
    (volume,), warnings = build_volumes(series_of(tmp_path))
    assert warnings == ["uneven slice spacing 5.0-6.0 mm"]
    assert volume.image.GetSpacing()[2] == pytest.approx(5.25)


def test_missing_slice_is_an_error(tmp_path):
    uid = generate_uid()
    for k, z in enumerate([0.0, 5.0, 15.0, 20.0]):
        write_slice(tmp_path, k, (0, 0, z), uid, instance=k + 1)
    with pytest.raises(SeriesError, match="uneven slice spacing 5.0-10.0 mm"):
        build_volumes(series_of(tmp_path))


def test_gantry_tilt_reported(tmp_path):
    uid = generate_uid()
    shear = np.tan(np.radians(12.0))
    for k in range(4):
        write_slice(tmp_path, k, (0, 5 * k * shear, 5 * k), uid, instance=k + 1)
    volumes, warnings = build_volumes(series_of(tmp_path))
    assert warnings == ["gantry tilt 12.0 deg (stacked along the normal)"]
    assert volumes[0].image.GetSpacing()[2] == pytest.approx(5.0)


def test_mixed_orientations_and_missing_geometry(tmp_path):
    uid = generate_uid()
    write_slice(tmp_path, 1, (0, 0, 0), uid, instance=1)
    write_slice(tmp_path, 2, (0, 0, 5), uid, instance=2, iop=(0, 1, 0, 0, 0, -1))
    with pytest.raises(SeriesError, match="mixed orientations"):
        build_volumes(series_of(tmp_path))
    other = tmp_path / "other"
    other.mkdir()
    path = write_slice(other, 1, (0, 0, 0), generate_uid(), instance=1)
    ds = pydicom.dcmread(path)
    del ds.ImagePositionPatient
    ds.save_as(path)
    with pytest.raises(SeriesError, match="no geometry"):
        build_volumes(series_of(other))


def test_truncated_pixels_name_file_and_syntax(tmp_path):
    uid = generate_uid()
    path = write_slice(tmp_path, 1, (0, 0, 0), uid, instance=1)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(SeriesError, match=rf"{path.name}: pixel data unreadable \(Explicit VR"):
        build_volumes(series_of(tmp_path))


def _item(**kw) -> Dataset:
    ds = Dataset()
    for key, val in kw.items():
        setattr(ds, key, val)
    return ds


def test_enhanced_multiframe(tmp_path):
    """3 positions x 2 b-values in one enhanced MR object, frames in scrambled order."""
    ds = _base(ENHANCED_MR, generate_uid(), 4, 3)
    ds.NumberOfFrames = 6
    ds.SharedFunctionalGroupsSequence = Sequence(
        [
            _item(
                PixelMeasuresSequence=Sequence([_item(PixelSpacing=[0.5, 0.7], SliceThickness=2)]),
                PlaneOrientationSequence=Sequence(
                    [_item(ImageOrientationPatient=[1, 0, 0, 0, 0, -1])]
                ),
                PixelValueTransformationSequence=Sequence(
                    [_item(RescaleSlope=2, RescaleIntercept=-1)]
                ),
            )
        ]
    )
    frames = [(b, y) for b in (1000, 0) for y in (6.0, 0.0, 3.0)]
    per_frame, pixels = [], []
    for k, (b, y) in enumerate(frames):
        per_frame.append(
            _item(
                PlanePositionSequence=Sequence([_item(ImagePositionPatient=[0, y, 0])]),
                FrameContentSequence=Sequence([_item(InStackPositionNumber=k + 1)]),
                MRDiffusionSequence=Sequence([_item(DiffusionBValue=b)]),
            )
        )
        pixels.append(np.full((4, 3), b // 10 + int(y), np.uint16))
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.PixelData = np.stack(pixels).tobytes()
    ds.save_as(tmp_path / "enhanced.dcm", enforce_file_format=True)
    series = series_of(tmp_path)
    assert series.bvalues == [0.0, 1000.0] and series.plane == "coronal"
    volumes, warnings = build_volumes(series)
    assert warnings == []
    assert sorted(v.label for v in volumes) == ["b=0", "b=1000"]
    high = choose_volume(volumes, "highest")
    # Coronal: normal = row x column = (1,0,0) x (0,0,-1) = (0,1,0); slices at y = 0, 3, 6.
    assert plane_values(high.image) == [2 * (100 + y) - 1 for y in (0, 3, 6)]
    assert high.image.GetOrigin() == (0.0, 0.0, 0.0)
    assert np.allclose(high.image.GetSpacing(), (0.7, 0.5, 3.0))
