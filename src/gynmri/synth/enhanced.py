"""Enhanced MR Image Storage: one multi-frame file per series, as Canon scanners export.

A frame's geometry and diffusion facts live in functional groups (DICOM PS3.3 C.7.6.16 and
C.8.13.5): a macro whose item is the same for every frame goes into the shared group, any other
into each frame's own group; plane position, frame content and diffusion are always per frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from .phantom import SliceGrid

ENHANCED_MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"
# Classic MR Image module attributes: the enhanced IOD has them in functional groups or in the
# MR pulse sequence module instead (AcquisitionDateTime replaces date and time).
_CLASSIC_ONLY = (
    "ScanningSequence",
    "SequenceVariant",
    "ScanOptions",
    "EchoTime",
    "RepetitionTime",
    "FlipAngle",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "AcquisitionDate",
    "AcquisitionTime",
)
_PER_FRAME = ("PlanePositionSequence", "FrameContentSequence", "MRDiffusionSequence")
# ImageType value 3 (image flavour) -> AcquisitionContrast
_CONTRAST = {"T1": "T1", "T2": "T2", "DIFFUSION": "DIFFUSION"}
# Dimensions: (index attribute, functional group holding it, label)
_STACK_DIMENSIONS = (
    ("StackID", "FrameContentSequence", "Stack ID"),
    ("InStackPositionNumber", "FrameContentSequence", "In-Stack Position Number"),
)
_DIFFUSION_DIMENSIONS = (
    ("DiffusionBValue", "MRDiffusionSequence", "Diffusion b-value"),
    ("DiffusionGradientOrientation", "MRDiffusionSequence", "Diffusion Gradient Orientation"),
)


@dataclass(frozen=True)
class Slice:
    """One 2-D image of a series: its stack (grid) and position along it, stored pixels, tags."""

    stack: int  # index of the grid among the series' grids
    index: int  # position index along the grid's normal (0: first)
    grid: SliceGrid
    pixels: np.ndarray
    extra: Mapping[str, object]  # bvalue, directionality, gradient, image_type (all optional)


def _ds(x: float) -> str:
    return f"{x:.6g}"


def _item(**attributes: object) -> Dataset:
    ds = Dataset()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def _seq(**attributes: object) -> Sequence:
    return Sequence([_item(**attributes)])


def _frame_type(frame_type: tuple[str, ...]) -> Dataset:
    """Return the MR Image Frame Type item (the same attributes sit at the top level)."""
    return _item(
        FrameType=list(frame_type),
        PixelPresentation="MONOCHROME",
        VolumetricProperties="VOLUME",
        VolumeBasedCalculationTechnique="NONE",
        ComplexImageComponent="MAGNITUDE",
        AcquisitionContrast=_CONTRAST.get((*frame_type, "")[2], "UNKNOWN"),
    )


def _diffusion(extra: Mapping[str, object]) -> Dataset:
    """Return the MR Diffusion item of a frame: b-value, directionality and gradient."""
    b = float(extra["bvalue"])
    default = "NONE" if b == 0 else "ISOTROPIC"
    item = _item(DiffusionBValue=b, DiffusionDirectionality=extra.get("directionality", default))
    if item.DiffusionDirectionality == "DIRECTIONAL":
        gradient = [float(v) for v in extra["gradient"]]
        item.DiffusionGradientDirectionSequence = _seq(DiffusionGradientOrientation=gradient)
    return item


def _frame_groups(sl: Slice, stack_id: int, frame_type: tuple[str, ...]) -> dict[str, Dataset]:
    """Return the functional-group items of one frame (macro name -> item)."""
    g = sl.grid
    groups = {
        "PlanePositionSequence": _item(
            ImagePositionPatient=[_ds(v) for v in g.positions[sl.index]]
        ),
        "FrameContentSequence": _item(
            StackID=str(stack_id), InStackPositionNumber=sl.index + 1, TemporalPositionIndex=1
        ),
        "PlaneOrientationSequence": _item(
            ImageOrientationPatient=[_ds(v) for v in (*g.row_dir, *g.col_dir)]
        ),
        "PixelMeasuresSequence": _item(
            PixelSpacing=[_ds(v) for v in g.pixel_spacing],
            SliceThickness=_ds(g.thickness),
            SpacingBetweenSlices=_ds(g.spacing),
        ),
        "MRImageFrameTypeSequence": _frame_type(frame_type),
    }
    if "bvalue" in sl.extra:
        groups["MRDiffusionSequence"] = _diffusion(sl.extra)
    return groups


def _dimension_values(slices: list[Slice], stack_ids: list[int], diffusion: bool) -> list[list]:
    """Return each frame's DimensionIndexValues: stack, in-stack position and, for diffusion,
    the b-value and gradient (each numbered by first appearance; b=0 has no gradient)."""
    seen: dict[str, list] = {"bvalue": [], "gradient": []}

    def index(kind: str, value: object) -> int:
        if value not in seen[kind]:
            seen[kind].append(value)
        return seen[kind].index(value) + 1

    out = []
    for sl, stack_id in zip(slices, stack_ids, strict=True):
        values = [stack_id, sl.index + 1]
        if diffusion:
            values += [index("bvalue", sl.extra.get("bvalue")), index("gradient", _grad(sl))]
        out.append(values)
    return out


def _grad(sl: Slice) -> tuple[float, ...] | None:
    if sl.extra.get("directionality") != "DIRECTIONAL":
        return None
    return tuple(float(v) for v in sl.extra["gradient"])


def _split_groups(frames: list[dict[str, Dataset]]) -> tuple[Dataset, list[Dataset]]:
    """Return the shared group and the per-frame groups: a macro goes into the shared group when
    every frame has the same item (and it is not one that must be per frame)."""
    shared, per_frame = Dataset(), [Dataset() for _ in frames]
    names = list(dict.fromkeys(name for f in frames for name in f))
    for name in names:
        items = [f.get(name) for f in frames]
        if name not in _PER_FRAME and all(i == items[0] for i in items):
            setattr(shared, name, Sequence([items[0]]))
            continue
        for group, item in zip(per_frame, items, strict=True):
            if item is not None:
                setattr(group, name, Sequence([item]))
    return shared, per_frame


def _pulse_sequence(base: Dataset) -> Dataset:
    """Return the MR Pulse Sequence module from the classic sequence attributes of ``base``."""
    scanning = str(base.ScanningSequence)
    epi, gradient = scanning == "EP", scanning == "GR"
    if epi:
        name = "SE_EPI"
    elif gradient:
        name = "FE3D"  # Canon's QUICK 3D is a 3-D spoiled gradient echo
    else:
        name = "SE2D" if float(base.EchoTime) < 20 else "FSE2D"
    return _item(
        PulseSequenceName=name,
        EchoPulseSequence="GRADIENT" if gradient else "SPIN",
        MultipleSpinEcho="NO",
        MultiPlanarExcitation="NO",
        PhaseContrast="NO",
        TimeOfFlightContrast="NO",
        SteadyStatePulseSequence="NONE",
        EchoPlanarPulseSequence="YES" if epi else "NO",
        SaturationRecovery="NO",
        SpectrallySelectedSuppression="FAT" if base.get("ScanOptions") == "FS" else "NONE",
        OversamplingPhase="NONE",
        GeometryOfKSpaceTraversal="RECTILINEAR",
        SegmentedKSpaceTraversal="SINGLE" if epi else "PARTIAL",
        NumberOfKSpaceTrajectories=1,
    )


def _echo_trains(base: Dataset, rows: int) -> dict[str, int]:
    """Return the echo train lengths: single-shot EPI reads about half of k-space per shot
    (partial Fourier), fast spin echo 16 echoes, spin echo and spoiled gradient echo one."""
    scanning = str(base.ScanningSequence)
    if scanning == "EP":
        rf, gradient = 1, rows // 2
    elif scanning == "GR":
        rf, gradient = 0, 1
    else:
        rf, gradient = (1 if float(base.EchoTime) < 20 else 16), 0
    return {
        "EchoTrainLength": max(rf, gradient),
        "RFEchoTrainLength": rf,
        "GradientEchoTrainLength": gradient,
    }


def _constant_groups(base: Dataset, slices: list[Slice]) -> Dataset:
    """Return the shared macros that no frame changes: timing, echo, rescale and window."""
    slope, intercept = float(base.RescaleSlope), float(base.RescaleIntercept)
    signal = np.concatenate([sl.pixels.ravel() for sl in slices]).astype(float) * slope + intercept
    return _item(
        MRTimingAndRelatedParametersSequence=_seq(
            RepetitionTime=float(base.RepetitionTime),
            FlipAngle=float(base.get("FlipAngle", 90.0)),
            **_echo_trains(base, slices[0].grid.rows),
        ),
        MREchoSequence=_seq(EffectiveEchoTime=float(base.EchoTime)),
        PixelValueTransformationSequence=_seq(
            RescaleSlope=base.RescaleSlope,
            RescaleIntercept=base.RescaleIntercept,
            RescaleType=base.RescaleType,
        ),
        FrameVOILUTSequence=_seq(
            WindowCenter=_ds(float(np.percentile(signal, 60))),
            WindowWidth=_ds(max(float(np.percentile(signal, 99.5)), 1.0)),
        ),
    )


def _image_attributes(ds: Dataset, frame_types: list[tuple[str, ...]]) -> None:
    """Set the Enhanced MR Image module's top-level attributes ('MIXED' where frames differ)."""
    image_type = list(frame_types[0])
    if len(set(frame_types)) > 1:
        image_type[2:] = ["MIXED"] * (len(image_type) - 2)
    ds.ImageType = image_type
    for element in _frame_type(tuple(image_type)):
        if element.keyword != "FrameType":
            ds.add(element)
    ds.ContentQualification = "PRODUCT"
    ds.ResonantNucleus = "1H"
    ds.KSpaceFiltering = "NONE"
    ds.ApplicableSafetyStandardAgency = "IEC"
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    ds.PresentationLUTShape = "IDENTITY"


def _dimensions(ds: Dataset, uid: str, diffusion: bool) -> None:
    """Set the Multi-frame Dimension module: stack and position, then b-value and gradient."""
    dims = _STACK_DIMENSIONS + (_DIFFUSION_DIMENSIONS if diffusion else ())
    ds.DimensionOrganizationSequence = _seq(DimensionOrganizationUID=uid)
    ds.DimensionIndexSequence = Sequence(
        [
            _item(
                DimensionOrganizationUID=uid,
                DimensionIndexPointer=tag_for_keyword(index),
                FunctionalGroupPointer=tag_for_keyword(group),
                DimensionDescriptionLabel=label,
            )
            for index, group, label in dims
        ]
    )


def enhanced_dataset(
    base: Dataset, slices: list[Slice], sop_uid: str, dimension_uid: str
) -> Dataset:
    """Return one Enhanced MR Image Storage dataset holding ``slices`` as frames, in that order.

    ``base``: the classic series attributes (patient, study, series, sequence, pixel format).
    Frames of one grid form one stack (StackID); each stack's positions are numbered along its
    normal (InStackPositionNumber); every frame has TemporalPositionIndex 1.
    """
    ds = Dataset()
    ds.update(base)
    pulse, constant = _pulse_sequence(base), _constant_groups(base, slices)
    for keyword in _CLASSIC_ONLY:
        if keyword in ds:
            delattr(ds, keyword)
    ds.update(pulse)
    ds.SOPClassUID = ENHANCED_MR_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.InstanceNumber = 1
    ds.AcquisitionDateTime = f"{base.AcquisitionDate}{base.AcquisitionTime}"
    ds.NumberOfFrames = len(slices)
    ds.Rows, ds.Columns = slices[0].grid.rows, slices[0].grid.cols
    frame_types = [tuple(sl.extra.get("image_type", base.ImageType)) for sl in slices]
    _image_attributes(ds, frame_types)
    grids: dict[int, int] = {}  # one stack per grid (the DWI's b-values share one)
    stack_ids = [grids.setdefault(id(sl.grid), len(grids) + 1) for sl in slices]
    frames = [
        _frame_groups(sl, stack_id, frame_type)
        for sl, stack_id, frame_type in zip(slices, stack_ids, frame_types, strict=True)
    ]
    diffusion = any("bvalue" in sl.extra for sl in slices)
    for frame, values in zip(frames, _dimension_values(slices, stack_ids, diffusion), strict=True):
        frame["FrameContentSequence"].DimensionIndexValues = values
    shared, per_frame = _split_groups(frames)
    shared.update(constant)
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    _dimensions(ds, dimension_uid, diffusion)
    ds.PixelData = b"".join(sl.pixels.tobytes() for sl in slices)
    return ds
