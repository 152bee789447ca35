"""Frames of different kinds in one series (magnitude, phase, field maps, the scanner's trace),
the trace-weighted DWI read or computed, and United Imaging grids, on files written here the way
each vendor writes them."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid
from test_volumes import ENHANCED_MR, MR, _base, _item, plane_values, series_of

from gynmri.io.choice import TRACE_READ, TRACE_SINGLE, choose_volume
from gynmri.io.kinds import TRACE, image_kind
from gynmri.io.volumes import build_volumes, volume_kinds
from gynmri.preprocessing.harmonize import SeriesError
from gynmri.preprocessing.sequences import load_rules, name_series

ROOT = Path(__file__).resolve().parents[1]
_files = itertools.count(1)
ZS = (0.0, 4.0, 8.0)  # slice positions along z (axial)


def classic(folder: Path, value, z: float, uid: str, *, private=(), **tags) -> Path:
    """Write one 4x3 axial slice (``value``: a number or an array); ``private``: (group,
    creator, element, VR, value) tuples; keyword tags go into the header."""
    ds = _base(MR, uid, 4, 3)
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, z], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness = [0.5, 0.7], 2.0
    ds.InstanceNumber = next(_files)
    for key, val in tags.items():
        setattr(ds, key, val)
    for group, creator, element, vr, val in private:
        ds.private_block(group, creator, create=True).add_new(element, vr, val)
    ds.PixelData = np.broadcast_to(np.asarray(value, np.uint16), (4, 3)).copy().tobytes()
    path = folder / f"k{next(_files):05d}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def values_of(volume) -> np.ndarray:
    return sitk.GetArrayFromImage(volume.image)


# --- 2. trace-weighted diffusion ---------------------------------------------------------------


def _philips_directions(n: int) -> list[list[float]]:
    angles = np.linspace(0, np.pi, n, endpoint=False)
    return [[float(np.cos(a)), float(np.sin(a)), 0.0] for a in angles]


def test_philips_trace_appended_to_16_directions_is_read_never_a_direction(tmp_path):
    """A Philips DWI series: b=0, 16 directions at b=2000 and the derived isotropic image
    (ImageType DERIVED, private 2001,1004 'I', zero gradient), all single-frame files."""
    uid = generate_uid()
    philips = "Philips Imaging DD 001"
    for z in ZS:
        classic(tmp_path, 400, z, uid, DiffusionBValue=0, ImageType=["ORIGINAL", "PRIMARY", "M"])
        for d, g in enumerate(_philips_directions(16)):
            classic(
                tmp_path, 100 + d, z, uid, DiffusionBValue=2000, DiffusionGradientOrientation=g,
                ImageType=["ORIGINAL", "PRIMARY", "M"],
                private=[(0x2001, philips, 0x03, "FL", 2000.0), (0x2001, philips, 0x04, "CS", "O")],
            )  # fmt: skip
        classic(
            tmp_path, 77, z, uid, DiffusionBValue=2000, DiffusionGradientOrientation=[0, 0, 0],
            ImageType=["DERIVED", "PRIMARY", "M"],
            private=[(0x2001, philips, 0x03, "FL", 2000.0), (0x2001, philips, 0x04, "CS", "I")],
        )  # fmt: skip
    series = series_of(tmp_path)
    assert volume_kinds(series) == "magnitude b=0; magnitude b=2000 x16; trace b=2000"
    volumes, _ = build_volumes(series)
    assert len(volumes) == 18 and sum(v.kind == TRACE for v in volumes) == 1
    chosen = choose_volume(volumes, "highest")
    assert chosen.kind == TRACE and chosen.trace == TRACE_READ and chosen.label == "trace b=2000"
    assert (values_of(chosen) == 77).all() and len(chosen.files) == 3
    # every direction is a whole volume of its own (never mixed with the trace)
    directions = sorted(int(values_of(v)[0, 0, 0]) for v in volumes if v.bvalue and v.kind != TRACE)
    assert directions == list(range(100, 116))


@pytest.mark.parametrize("marker", ["directionality", "derived among original"])
def test_a_trace_told_by_directionality_or_by_being_derived_is_read(tmp_path, marker):
    """Without a gradient: DiffusionDirectionality ISOTROPIC, or (Philips classic) only its
    ImageType DERIVED among ORIGINAL directional images at the same b-value."""
    uid = generate_uid()
    for z in ZS:
        classic(tmp_path, 400, z, uid, DiffusionBValue=0)
        for d in range(3):
            extra = {"DiffusionDirectionality": "DIRECTIONAL"} if marker == "directionality" else {}
            original = ["ORIGINAL", "PRIMARY", "DIFFUSION"]
            classic(tmp_path, 100 + d, z, uid, DiffusionBValue=1000, ImageType=original, **extra)
        extra = (
            {"DiffusionDirectionality": "ISOTROPIC"}
            if marker == "directionality"
            else {"ImageType": ["DERIVED", "PRIMARY", "DIFFUSION"]}
        )
        classic(tmp_path, 55, z, uid, DiffusionBValue=1000, **extra)
    chosen = choose_volume(build_volumes(series_of(tmp_path))[0], 1000)
    assert chosen.kind == TRACE and (values_of(chosen) == 55).all()


def test_canon_directions_without_a_trace_give_the_computed_geometric_mean(tmp_path):
    """Canon classic: b=0 images carry no b-value at all, the directions are in ImageComments
    ('b=1000(x,y,z)'); no trace stored: it is computed, and QC is told so."""
    uid = generate_uid()
    directions = {
        100: "(1.000,0.000,0.000)",
        200: "(0.000,1.000,0.000)",
        400: "(0.000,0.000,1.000)",
    }
    for z in ZS:
        classic(tmp_path, 900, z, uid, ImageComments="b=0")
        for value, g in directions.items():
            classic(tmp_path, value, z, uid, DiffusionBValue=1000, ImageComments=f"b=1000{g}")
    series = series_of(tmp_path)
    assert volume_kinds(series) == "magnitude b=0; magnitude b=1000 x3"
    volumes, _ = build_volumes(series)
    chosen = choose_volume(volumes, "highest")
    assert chosen.kind == TRACE and chosen.trace.startswith("computed (geometric mean of 3")
    assert values_of(chosen) == pytest.approx(
        np.full((3, 4, 3), 200.0), rel=1e-5
    )  # (100*200*400)^(1/3)
    # one file per slice (annotations map by file), the other directions' files read too
    assert len(chosen.files) == 3 and len(chosen.more_files) == 6
    assert chosen.image.GetOrigin() == (0.0, 0.0, 0.0)
    assert (
        choose_volume(volumes, 0).bvalue == 0
        and (values_of(choose_volume(volumes, 0)) == 900).all()
    )


def test_canon_bvalue_only_in_image_comments_is_read(tmp_path):
    uid = generate_uid()
    for z in ZS:
        classic(tmp_path, 900, z, uid, ImageComments="b=0")
        classic(tmp_path, 300, z, uid, ImageComments="b=800(0.445,0.000,0.895)")
    series = series_of(tmp_path)
    assert series.bvalues == [0.0, 800.0]
    chosen = choose_volume(build_volumes(series)[0], "highest")
    assert chosen.bvalue == 800 and chosen.trace == TRACE_SINGLE


def _ge_gradient(g) -> list:
    return [(0x0019, "GEMS_ACQU_01", 0xBB + k, "DS", f"{v:g}") for k, v in enumerate(g)]


@pytest.mark.parametrize("stored", ["combined only", "combined and directions"])
def test_ge_combined_image_is_the_trace(tmp_path, stored):
    """GE: the combined image has a zero gradient in its private direction tags."""
    uid = generate_uid()
    for z in ZS:
        classic(tmp_path, 400, z, uid, private=[(0x0043, "GEMS_PARM_01", 0x39, "IS", [0, 8, 0, 0])])
        bval = [(0x0043, "GEMS_PARM_01", 0x39, "IS", [1000, 8, 0, 0])]
        classic(tmp_path, 66, z, uid, private=bval + _ge_gradient((0, 0, 0)))
        if stored == "combined and directions":
            for d, g in enumerate(np.eye(3)):
                classic(tmp_path, 100 + d, z, uid, private=bval + _ge_gradient(g))
    volumes, _ = build_volumes(series_of(tmp_path))
    chosen = choose_volume(volumes, "highest")
    assert chosen.kind == TRACE and chosen.trace == TRACE_READ and (values_of(chosen) == 66).all()


def test_siemens_tracew_series_is_named_dwi_and_read_as_the_trace(tmp_path):
    uid = generate_uid()
    tracew = ["DERIVED", "PRIMARY", "DIFFUSION", "TRACEW", "ND"]
    for z in ZS:
        for b in (50, 800):
            classic(
                tmp_path, b, z, uid, DiffusionBValue=b, ImageType=tracew,
                SeriesDescription="ep2d_diff_b50_800_tra_TRACEW",
                private=[(0x0019, "SIEMENS MR HEADER", 0x0C, "IS", b)],
            )  # fmt: skip
    series = series_of(tmp_path)
    assert name_series(load_rules(ROOT / "config" / "sequences.yaml"), series).sequence == "DWI"
    assert volume_kinds(series) == "trace b=50; trace b=800"
    chosen = choose_volume(build_volumes(series)[0], "highest")
    assert chosen.trace == TRACE_READ and (values_of(chosen) == 800).all()


# --- 1. frames of different kinds ---------------------------------------------------------------


def _enhanced(folder: Path, frames: list[tuple[float, int, Dataset]]) -> Path:
    """Write one enhanced MR file: frames of (z, value, MRImageFrameType item + extras)."""
    ds = _base(ENHANCED_MR, generate_uid(), 4, 3)
    ds.NumberOfFrames = len(frames)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "MIXED", "NONE"]
    ds.SharedFunctionalGroupsSequence = Sequence(
        [
            _item(
                PixelMeasuresSequence=Sequence([_item(PixelSpacing=[0.5, 0.7], SliceThickness=2)]),
                PlaneOrientationSequence=Sequence([_item(ImageOrientationPatient=[1, 0, 0, 0, 1, 0])]),
            )
        ]
    )  # fmt: skip
    per_frame = []
    for k, (z, _, extra) in enumerate(frames):
        item = _item(
            PlanePositionSequence=Sequence([_item(ImagePositionPatient=[0, 0, z])]),
            FrameContentSequence=Sequence([_item(InStackPositionNumber=k + 1)]),
        )
        item.update(extra)
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.PixelData = np.stack([np.full((4, 3), v, np.uint16) for _, v, _ in frames]).tobytes()
    path = folder / "enhanced.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _frame_type(types: list[str], component: str = "MAGNITUDE", units: str | None = None):
    extra = _item(
        MRImageFrameTypeSequence=Sequence([_item(FrameType=types, ComplexImageComponent=component)])
    )
    if units:
        code = _item(CodeValue=units, CodingSchemeDesignator="UCUM", CodeMeaning=units)
        extra.RealWorldValueMappingSequence = Sequence(
            [_item(MeasurementUnitsCodeSequence=Sequence([code]), RealWorldValueSlope=1)]
        )
    return extra


@pytest.mark.parametrize("marker", ["frame type", "units Hz"])
def test_field_map_frames_beside_magnitude_are_a_labelled_volume_never_used(tmp_path, marker):
    """A Philips enhanced file: a B0 field map (first in acquisition order) and the magnitude,
    told apart only per frame (FrameType 'B0 MAP', or real-world values in Hz)."""
    field_map = (
        _frame_type(["DERIVED", "PRIMARY", "B0 MAP", "NONE"], "REAL")
        if marker == "frame type"
        else _frame_type(["ORIGINAL", "PRIMARY", "FFE", "NONE"], "REAL", units="Hz")
    )
    magnitude = _frame_type(["ORIGINAL", "PRIMARY", "M_FFE", "NONE"])
    _enhanced(tmp_path, [(z, 5, field_map) for z in ZS] + [(z, 300 + z, magnitude) for z in ZS])
    series = series_of(tmp_path)
    assert volume_kinds(series) == "B0 field map; magnitude"
    volumes, _ = build_volumes(series)
    assert [v.label for v in volumes] == ["B0 field map", "magnitude"]
    chosen = choose_volume(volumes, "highest")
    assert chosen.kind == "magnitude" and plane_values(chosen.image) == [300, 304, 308]


def test_enhanced_dwi_isotropic_frames_and_exponential_adc_are_told_apart(tmp_path):
    def diffusion(b, directionality, types):
        extra = _frame_type(types)
        extra.MRDiffusionSequence = Sequence(
            [_item(DiffusionBValue=b, DiffusionDirectionality=directionality)]
        )
        return extra

    frames = []
    for z in ZS:
        frames.append((z, 400, diffusion(0, "NONE", ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"])))
        frames += [
            (
                z,
                100 + d,
                diffusion(1000, "DIRECTIONAL", ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]),
            )
            for d in range(3)
        ]
        frames.append(
            (z, 60, diffusion(1000, "ISOTROPIC", ["DERIVED", "PRIMARY", "DIFFUSION", "TRACEW"]))
        )
        frames.append(
            (z, 9, diffusion(1000, "ISOTROPIC", ["DERIVED", "PRIMARY", "DIFFUSION", "EADC"]))
        )
    _enhanced(tmp_path, frames[::-1])  # acquisition order says nothing
    series = series_of(tmp_path)
    assert volume_kinds(series) == (
        "exponential ADC b=1000; trace b=1000; magnitude b=1000 x3; magnitude b=0"
    )
    chosen = choose_volume(build_volumes(series)[0], "highest")
    assert chosen.trace == TRACE_READ and (values_of(chosen) == 60).all()


def test_a_series_of_phase_images_only_is_not_read_and_says_why(tmp_path):
    uid = generate_uid()
    for z in ZS:
        classic(tmp_path, 7, z, uid, ImageType=["ORIGINAL", "PRIMARY", "P", "ND"])
    with pytest.raises(SeriesError, match=r"no magnitude image \(the series holds: phase\)"):
        choose_volume(build_volumes(series_of(tmp_path))[0], "highest")


@pytest.mark.parametrize(
    ("image_type", "component", "units", "ge", "kind"),
    [
        (["ORIGINAL", "PRIMARY", "M", "ND"], None, None, None, "magnitude"),
        (["ORIGINAL", "PRIMARY", "P", "ND"], None, None, None, "phase"),
        (["ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"], None, None, None, "magnitude"),
        (["ORIGINAL", "PRIMARY", "R_FFE", "R", "FFE"], None, None, None, "real"),
        (["DERIVED", "PRIMARY", "DIFFUSION", "ADC", "ND"], None, None, None, "ADC"),
        (["DERIVED", "PRIMARY", "DIFFUSION", "TRACEW"], None, None, None, "trace"),
        (["DERIVED", "PRIMARY", "FA"], None, None, None, "FA"),
        (["ORIGINAL", "PRIMARY", "OTHER"], None, None, 1, "phase"),
        (["ORIGINAL", "PRIMARY", "OTHER"], None, None, 0, "magnitude"),
        (["ORIGINAL", "PRIMARY", "FFE", "NONE"], "PHASE", None, None, "phase"),
        (["ORIGINAL", "PRIMARY", "FFE", "NONE"], "REAL", "Hz", None, "B0 field map"),
        # a 'P' or 'M' among values 1-2 is not a complex component
        (["DERIVED", "P"], None, None, None, "magnitude"),
    ],
)
def test_image_kind_from_each_vendors_markers(image_type, component, units, ge, kind):
    assert image_kind(image_type, component, units, ge) == kind


# --- 4. United Imaging grids ---------------------------------------------------------------------


def _uih_grid(folder: Path, uid: str, count: int, positions=True) -> np.ndarray:
    """Write one United Imaging grid image of ``count`` 4x3 slices (tile k filled with 10 + k)."""
    cols = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / cols))
    grid = np.zeros((rows * 4, cols * 3), np.uint16)
    for k in range(count):
        r, c = divmod(k, cols)
        grid[r * 4 : (r + 1) * 4, c * 3 : (c + 1) * 3] = 10 + k
    ds = _base(MR, uid, *grid.shape)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "VFRAME"]
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 0], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness, ds.InstanceNumber = [0.5, 0.7], 2.0, 1
    block = ds.private_block(0x0065, "Image Private Header", create=True)
    block.add_new(0x50, "DS", str(count))
    if positions:
        items = [_item(ImagePositionPatient=[1.0, 2.0, 5.0 * k]) for k in range(count)]
        block.add_new(0x51, "SQ", Sequence(items[::-1]))  # any order: stacked along the normal
    ds.PixelData = grid.tobytes()
    ds.save_as(folder / "grid.dcm", enforce_file_format=True)
    return grid


def test_united_imaging_grid_is_split_into_its_slices(tmp_path):
    uid = generate_uid()
    _uih_grid(tmp_path, uid, 5)  # 5 slices: 3 columns x 2 rows of tiles
    series = series_of(tmp_path)
    assert series.matrix == (4, 3)
    (volume,), warnings = build_volumes(series)
    assert warnings == [] and volume.image.GetSize() == (3, 4, 5)
    # positions in the private sequence were written last-first: tile k sits at z = 5 (4 - k)
    assert plane_values(volume.image) == [14, 13, 12, 11, 10]
    assert volume.image.GetOrigin() == (1.0, 2.0, 0.0)
    assert np.allclose(volume.image.GetSpacing(), (0.7, 0.5, 5.0))


def test_united_imaging_grid_without_positions_is_excluded_with_the_reason(tmp_path):
    _uih_grid(tmp_path, generate_uid(), 5, positions=False)
    with pytest.raises(SeriesError, match=r"United Imaging grid .*position of each of its 5"):
        build_volumes(series_of(tmp_path))


def test_a_dwi_series_whose_derived_trace_sorts_first_is_still_named_dwi(tmp_path):
    """The series' ImageType is that of an ORIGINAL image: the trace file sorting first must
    not make the whole DWI series 'derived'."""
    uid = generate_uid()
    for z in ZS:  # trace files written (and sorted) first
        classic(tmp_path, 50, z, uid, DiffusionBValue=1000, DiffusionDirectionality="ISOTROPIC",
                ImageType=["DERIVED", "PRIMARY", "DIFFUSION", "TRACEW"], SeriesDescription="DWI_b1000_Ax")  # fmt: skip
    for z in ZS:
        for b in (0, 1000):
            classic(tmp_path, 100 + b // 100, z, uid, DiffusionBValue=b,
                    ImageType=["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"], SeriesDescription="DWI_b1000_Ax")  # fmt: skip
    series = series_of(tmp_path)
    assert series.image_type == "ORIGINAL\\PRIMARY\\DIFFUSION\\NONE"
    assert name_series(load_rules(ROOT / "config" / "sequences.yaml"), series).sequence == "DWI"
