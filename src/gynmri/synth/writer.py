"""Cohort planning and writing: DICOM series per center profile, tumour masks as NIfTI."""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import ExplicitVRLittleEndian

from .centers import CENTERS, CenterProfile, Identity, institution_address, make_identity
from .clinical import COVARIATES, simulate_covariates
from .enhanced import Slice, enhanced_dataset
from .phantom import (
    Anatomy,
    SliceGrid,
    adc_map,
    bias_field,
    check_label,
    make_anatomy,
    make_grid,
    render,
    render_contrasts,
    rician,
)

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
AXIAL = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
SAGITTAL = ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0))
CORONAL = ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0))
# Fixed implementation UID so that files are byte-identical across pydicom installs.
_IMPL_UID = "2.25.137912735513349062470264211342315812117"


#: The canonical sequences the generator can write (the names of config/sequences.yaml).
SEQUENCES = (
    "T2axi",
    "T2sag",
    "T2cor",
    "T2FSaxi",
    "T2FSsag",
    "DWI",
    "DWIsag",
    "ADC",
    "ADCsag",
    "T1axi",
    "T1sag",
    "T1FSaxi",
    "CET1axi",
    "CET1sag",
    "CET1cor",
)
#: What the generator wrote before the sequences could be chosen: the default writes those files.
DEFAULT_SEQUENCES = ("T2axi", "T2sag", "DWI", "ADC")
#: Canonical sequence -> protocol key of CenterProfile.series (a center may lack a key).
SERIES_KEYS = {
    "T2axi": "t2ax",
    "T2sag": "t2sag",
    "T2cor": "t2cor",
    "T2FSaxi": "t2fsax",
    "T2FSsag": "t2fssag",
    "DWI": "dwi",
    "DWIsag": "dwisag",
    "ADC": "adc",
    "ADCsag": "adcsag",
    "T1axi": "t1ax",
    "T1sag": "t1sag",
    "T1FSaxi": "t1fsax",
    "CET1axi": "cet1ax",
    "CET1sag": "cet1sag",
    "CET1cor": "cet1cor",
}
CONTRAST_SEQUENCES = ("CET1axi", "CET1sag", "CET1cor")
#: Share of patients given no contrast agent (renal function, pregnancy, allergy, refusal).
P_NO_CONTRAST = 0.15


@dataclass(frozen=True)
class SynthSpec:
    """What cohort to generate: patients per class, number of centers, seed, and the sequences
    to write (names of SEQUENCES; see :func:`patient_sequences` for who gets which).

    The default sequences write exactly the files of the generator before they could be chosen:
    in particular no mask for the ADC map; any other choice writes a mask for every series.
    """

    patients_per_class: dict[str, int] = field(hash=False)
    centers: int = 3
    seed: int = 2022
    sequences: tuple[str, ...] = DEFAULT_SEQUENCES


def check_sequences(sequences: object) -> None:
    """Return None if ``sequences`` is a non-empty collection of names in SEQUENCES, else raise
    ValueError naming the unknown ones and listing the valid names."""
    if isinstance(sequences, str) or not sequences:
        raise ValueError(f"sequences: give a non-empty list of names from {', '.join(SEQUENCES)}")
    unknown = [s for s in sequences if s not in SEQUENCES]
    if unknown:
        raise ValueError(
            f"unknown sequence {', '.join(map(repr, unknown))}: the synthetic generator writes "
            f"{', '.join(SEQUENCES)}"
        )


def _validate(spec: SynthSpec) -> None:
    for label, n in spec.patients_per_class.items():
        check_label(label)
        if n < 0:
            raise ValueError(f"negative patient count for class {label!r}")
    if not 1 <= spec.centers <= len(CENTERS):
        raise ValueError(
            f"centers must be 1..{len(CENTERS)} (the generator offers {len(CENTERS)} centres), "
            f"got {spec.centers}"
        )
    check_sequences(spec.sequences)


def had_contrast(seed: int, case_index: int) -> bool:
    """Return False for the seeded ~P_NO_CONTRAST of patients who were given no contrast agent."""
    return bool(np.random.default_rng([seed, case_index, 6]).random() >= P_NO_CONTRAST)


def patient_sequences(spec: SynthSpec, center: str, case_index: int) -> tuple[str, ...]:
    """Return the sequences written for one patient, in SEQUENCES order: those of
    ``spec.sequences`` that the center acquires, less the contrast-enhanced ones when the
    patient was given no contrast agent."""
    series = CENTERS[center].series
    out = [s for s in SEQUENCES if s in spec.sequences and SERIES_KEYS[s] in series]
    if not had_contrast(spec.seed, case_index):
        out = [s for s in out if s not in CONTRAST_SEQUENCES]
    return tuple(out)


def plan_cohort(spec: SynthSpec) -> pd.DataFrame:
    """Return one row per patient (no pixel work): patient_dir, center, label, case_index, then
    the SIMULATED clinical covariates age, ca125 (NaN: missing) and menopausal (see clinical.py).
    """
    _validate(spec)
    keys = list(CENTERS)[: spec.centers]
    rng = np.random.default_rng([spec.seed, 1])
    rows: list[tuple[str, str]] = []
    start = 0
    for label in sorted(spec.patients_per_class):
        n = spec.patients_per_class[label]
        # round robin per class (continuing where the last class stopped) balances center sizes
        # and gives every center both classes when a class has at least `centers` patients
        rows += [(keys[(start + i) % len(keys)], label) for i in range(n)]
        start = (start + n) % len(keys)
    out = []
    for key in keys:
        labels = [lab for c, lab in rows if c == key]
        # shuffle so that the folder number does not reveal the class
        for num, j in enumerate(rng.permutation(len(labels)), start=1):
            out.append((f"{key}/{CENTERS[key].letter}{num:04d}", key, labels[j]))
    plan = pd.DataFrame(out, columns=["patient_dir", "center", "label"])
    plan = plan.sort_values("patient_dir", ignore_index=True)
    plan["case_index"] = np.arange(len(plan), dtype=int)
    cov = [
        simulate_covariates(str(lab), spec.seed, int(i))
        for lab, i in zip(plan.label, plan.case_index, strict=True)
    ]
    for name in COVARIATES:
        plan[name] = [c[name] for c in cov]
    plan["age"] = plan["age"].astype(int)
    plan["ca125"] = plan["ca125"].astype(float)
    return plan


def _uid(spec: SynthSpec, case_index: int, *parts: object) -> str:
    """Return a deterministic 2.25.<128-bit> UID (pydicom ignores entropy when prefix=None)."""
    key = "|".join(["gynmri-synth", str(spec.seed), str(case_index), *map(str, parts)])
    return f"2.25.{int(hashlib.sha256(key.encode()).hexdigest()[:32], 16)}"


def planted_identifiers(spec: SynthSpec) -> list[str]:
    """Return every identifier string (>= 5 characters) planted in any header of the cohort."""
    found: set[str] = set()
    for case in plan_cohort(spec).itertuples():
        profile = CENTERS[case.center]
        found.update(make_identity(spec.seed, case.case_index, profile).strings(profile))
    return sorted(s for s in found if len(s) >= 5)


def _instance_order(n: int, order: str) -> list[int]:
    """Return position indices (ascending along the normal) in InstanceNumber order."""
    if order == "ascending":
        return list(range(n))
    if order == "descending":
        return list(range(n))[::-1]
    return list(range(0, n, 2)) + list(range(1, n, 2))  # interleaved acquisition


def _to_stored(signal: np.ndarray, profile: CenterProfile) -> np.ndarray:
    info = np.iinfo(profile.dtype)
    stored = np.rint((signal - profile.intercept) / profile.slope)
    return np.clip(stored, max(info.min, 0), info.max).astype("<" + np.dtype(profile.dtype).str[1:])


def _ds(x: float) -> str:
    return f"{x:.6g}"


@dataclass
class _Patient:
    spec: SynthSpec
    case_index: int
    patient_dir: str
    profile: CenterProfile
    ident: Identity
    dicom_dir: Path
    written: list[Path] = field(default_factory=list)
    file_counter: int = 0

    def common(self) -> Dataset:
        """Return a dataset with the patient, study and equipment attributes."""
        p, i = self.profile, self.ident
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID = MR_IMAGE_STORAGE
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = i.study_date
        ds.AccessionNumber = i.accession
        ds.Modality = "MR"
        ds.Manufacturer = p.manufacturer
        ds.InstitutionName = p.institution
        ds.InstitutionAddress = institution_address(p)
        ds.InstitutionalDepartmentName = "Department of Radiology"
        ds.DeviceSerialNumber = i.device_serial
        ds.RequestingPhysician = i.referring
        ds.ReferringPhysicianName = i.referring
        ds.StationName = i.scanner.station
        ds.StudyDescription = "PELVIS^GYN"
        ds.PerformingPhysicianName = i.performing
        ds.OperatorsName = i.operator
        ds.ManufacturerModelName = i.scanner.model
        ds.PatientName = i.patient_name
        ds.PatientID = i.patient_id
        ds.PatientBirthDate = i.birth_date
        ds.OtherPatientIDs = i.other_id
        ds.PatientAddress = i.address
        ds.PatientTelephoneNumbers = i.telephone
        ds.PatientSex = "F"
        ds.PatientAge = i.age
        ds.BodyPartExamined = "PELVIS"
        ds.MagneticFieldStrength = _ds(i.scanner.field)
        ds.SoftwareVersions = p.software
        ds.PatientPosition = "HFS"
        ds.StudyInstanceUID = _uid(self.spec, self.case_index, "study")
        ds.FrameOfReferenceUID = _uid(self.spec, self.case_index, "frame")
        ds.StudyID = "1"
        ds.PositionReferenceIndicator = ""
        return ds

    def path_for(self, proto_key: str, series_idx: int, instance: int) -> Path:
        """Return the center-specific file path of one instance."""
        p = self.profile
        proto = p.series[proto_key]
        if p.layout == "series_dirs":
            folder = f"{proto.number}_{proto.description}".replace(" ", "_")
            return self.dicom_dir / folder / f"IM-{series_idx:04d}-{instance:04d}.dcm"
        if p.layout == "flat":
            self.file_counter += 1
            return self.dicom_dir / f"I{self.file_counter:07d}"
        if p.layout == "canon":  # media export: one enhanced multi-frame file per series folder
            return self.dicom_dir / "DICOM" / "ST00001" / f"SE{series_idx:05d}" / "IM00001"
        if p.layout == "fujifilm":  # one folder, files named by series number and instance
            return self.dicom_dir / "IMAGES" / f"{proto.number:04d}_{instance:05d}.DCM"
        return self.dicom_dir / "DICOM" / f"S{series_idx:04d}" / f"I{instance:04d}"

    def series_base(self, proto_key: str, series_idx: int) -> Dataset:
        """Return the attributes shared by every image of one series (patient to pixel format)."""
        p = self.profile
        proto = p.series[proto_key]
        series_uid = _uid(self.spec, self.case_index, "series", proto_key)
        base = self.common()
        time = self.ident.study_time
        t = f"{time[:2]}{(int(time[2:4]) + 2 * series_idx) % 60:02d}{time[4:6]}.000000"
        base.SeriesTime = base.AcquisitionTime = base.ContentTime = t
        base.StudyTime = f"{time}.000000"
        base.ImageType = list(proto.image_type)
        base.SeriesDescription = proto.description
        base.ProtocolName = proto.protocol
        base.SeriesNumber = proto.number
        base.SeriesInstanceUID = series_uid
        if proto_key in _EPI:
            base.ScanningSequence, base.SequenceVariant = "EP", "SK\\SP"
        elif proto_key in _GRADIENT_ECHO:  # 3-D spoiled gradient echo (VIBE, LAVA, THRIVE)
            base.ScanningSequence, base.SequenceVariant = "GR", "SP\\OSP"
            base.FlipAngle = _ds(12.0)
        else:
            base.ScanningSequence, base.SequenceVariant = "SE", "SK\\SP\\OSP"
        base.MRAcquisitionType = "3D" if proto_key in _GRADIENT_ECHO else "2D"
        if proto_key in _FAT_SAT:
            base.ScanOptions = "FS"
        if proto.agent:  # contrast-enhanced: the agent, and how it was given
            base.ContrastBolusAgent = proto.agent
            base.ContrastBolusRoute = "IV"
            base.ContrastBolusIngredient = "GADOLINIUM"
        base.EchoTime = _ds(proto.te)
        base.RepetitionTime = _ds(proto.tr)
        base.SamplesPerPixel = 1
        base.PhotometricInterpretation = "MONOCHROME2"
        base.BitsAllocated = base.BitsStored = 16
        base.HighBit = 15
        base.PixelRepresentation = 1 if p.dtype == "int16" else 0
        base.RescaleIntercept = _ds(p.intercept)
        base.RescaleSlope = _ds(p.slope)
        base.RescaleType = "US"
        return base

    def write_series(
        self,
        proto_key: str,
        series_idx: int,
        grids: list[SliceGrid],
        stored: list[np.ndarray],
        extra: list[Mapping[str, object]],
    ) -> str:
        """Write one series (slices of one or more stacks) and return its SeriesInstanceUID:
        one file per slice, or one enhanced multi-frame file where the center writes those."""
        p = self.profile
        base = self.series_base(proto_key, series_idx)
        slices = [
            Slice(stack, k, grid, vol[k], ext)
            for stack, (grid, vol, ext) in enumerate(zip(grids, stored, extra, strict=True))
            for k in _instance_order(len(grid.positions), p.order)
        ]
        if p.enhanced:
            uid = partial(_uid, self.spec, self.case_index)
            ds = enhanced_dataset(base, slices, uid("sop", proto_key), uid("dimension", proto_key))
            self._save(ds, self.path_for(proto_key, series_idx, 1))
            return str(base.SeriesInstanceUID)
        for instance, sl in enumerate(slices, start=1):
            grid, k = sl.grid, sl.index
            ds = Dataset()
            ds.update(base)
            ds.SOPInstanceUID = _uid(self.spec, self.case_index, "sop", proto_key, sl.stack, k)
            ds.InstanceNumber = instance
            ds.AcquisitionNumber = 1
            ds.ImagePositionPatient = [_ds(v) for v in grid.positions[k]]
            ds.ImageOrientationPatient = [_ds(v) for v in (*grid.row_dir, *grid.col_dir)]
            ds.SliceLocation = _ds(float(grid.positions[k] @ grid.normal))
            ds.SliceThickness = _ds(grid.thickness)
            ds.SpacingBetweenSlices = _ds(grid.spacing)
            ds.Rows, ds.Columns = grid.rows, grid.cols
            ds.PixelSpacing = [_ds(v) for v in grid.pixel_spacing]
            signal = sl.pixels.astype(float) * p.slope + p.intercept
            ds.WindowCenter = _ds(float(np.percentile(signal, 60)))
            ds.WindowWidth = _ds(max(float(np.percentile(signal, 99.5)), 1.0))
            _set_extra(ds, sl.extra, p)
            ds.PixelData = sl.pixels.tobytes()
            self._save(ds, self.path_for(proto_key, series_idx, instance))
        return str(base.SeriesInstanceUID)

    def _save(self, ds: Dataset, path: Path) -> None:
        """Write ``ds`` with fixed file meta (byte-identical across pydicom installs)."""
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.ImplementationClassUID = _IMPL_UID
        ds.file_meta.ImplementationVersionName = "GYNMRI_SYNTH_1"
        path.parent.mkdir(parents=True, exist_ok=True)
        dcmwrite(path, ds, enforce_file_format=True)
        self.written.append(path)


_EPI = {"dwi", "adc", "dwisag", "adcsag"}
_GRADIENT_ECHO = {"t1fsax", "cet1ax", "cet1sag", "cet1cor"}
# fat-suppressed series beyond the default ones (the default series keep their tags)
_FAT_SAT = {"t2fsax", "t2fssag", "t1fsax", "cet1ax", "cet1sag", "cet1cor"}


def _set_extra(ds: Dataset, extra: Mapping[str, object], profile: CenterProfile) -> None:
    """Set per-stack tags; a b-value also goes into the vendor's private tag."""
    bval = extra.get("bvalue")
    if bval is None:
        return
    ds.DiffusionBValue = float(bval)
    ds.ImageComments = f"b={int(bval)}"
    if profile.manufacturer == "SIEMENS":
        ds.private_block(0x0019, "SIEMENS MR HEADER", create=True).add_new(0x0C, "IS", int(bval))
    elif profile.manufacturer.startswith("GE"):
        ds.private_block(0x0043, "GEMS_PARM_01", create=True).add_new(
            0x39, "IS", [int(bval), 8, 0, 0]
        )
    elif profile.manufacturer.startswith("Philips"):
        ds.private_block(0x2001, "Philips Imaging DD 001", create=True).add_new(
            0x03, "FL", float(bval)
        )
    # the centers that export diffusion directions say which image is which in standard tags
    if "directionality" in extra:
        ds.DiffusionDirectionality = extra["directionality"]
    if "gradient" in extra:
        ds.DiffusionGradientOrientation = [float(v) for v in extra["gradient"]]
    if "image_type" in extra:
        ds.ImageType = list(extra["image_type"])


#: The gradient directions of the centers that export directional b=1000 images.
GRADIENTS = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
#: Log-amplitude of the per-direction b=1000 differences (anisotropic tissue: a few percent).
ANISOTROPY = 0.08
TRACE_IMAGE_TYPE = ("DERIVED", "PRIMARY", "DIFFUSION", "TRACEW")


def direction_factors(pts: np.ndarray) -> list[np.ndarray]:
    """Return the multipliers of the b=1000 signal along GRADIENTS on points (..., 3): smooth in
    position, and their product is 1 everywhere (cosines 120 degrees apart sum to 0), so the
    geometric mean of the three directional signals is the trace signal."""
    phase = pts @ np.array([1.0, 0.7, 0.4], np.float32) / 60.0
    return [np.exp(ANISOTROPY * np.cos(phase + 2 * np.pi * k / 3)) for k in range(3)]


def _diffusion_images(
    p: CenterProfile,
    b0_signal: np.ndarray,
    b1000_signal: np.ndarray,
    sigma: float,
    rng: np.random.Generator,
    grid: SliceGrid,
) -> tuple[list[np.ndarray], list[Mapping[str, object]], np.ndarray, np.ndarray]:
    """Return the noisy DWI images of a center's scheme with their per-image tags, and the b=0
    and b=1000 trace images the ADC map is computed from.

    Centers a-c: b=0 and the b=1000 trace (the draws of earlier versions). Centers with
    ``dwi_directions``: b=0 and three directional b=1000 images, plus their trace (geometric
    mean, computed from the noisy directional images as scanners do) where ``dwi_trace``.
    """
    b0 = rician(b0_signal, sigma, rng)
    if not p.dwi_directions:
        b1000 = rician(b1000_signal, sigma, rng)
        return [b0, b1000], [{"bvalue": 0}, {"bvalue": 1000}], b0, b1000
    factors = direction_factors(grid.points())
    directional = [rician((b1000_signal * f).astype(np.float32), sigma, rng) for f in factors]
    trace = np.cbrt(np.prod(np.stack(directional).astype(np.float64), axis=0)).astype(np.float32)
    images = [b0, *directional]
    extras: list[Mapping[str, object]] = [{"bvalue": 0, "directionality": "NONE"}]
    extras += [{"bvalue": 1000, "directionality": "DIRECTIONAL", "gradient": g} for g in GRADIENTS]
    if p.dwi_trace:
        images.append(trace)
        extras.append(
            {
                "bvalue": 1000,
                "directionality": "ISOTROPIC",
                "gradient": (0.0, 0.0, 0.0),
                "image_type": TRACE_IMAGE_TYPE,
            }
        )
    return images, extras, b0, trace


def _dwi_counts(p: CenterProfile) -> tuple[int, int]:
    """Return (noisy images drawn, images written) per slice position of a center's DWI series."""
    if not p.dwi_directions:
        return 2, 2
    return 4, 4 + int(p.dwi_trace)


def _write_mask(grid: SliceGrid, fraction: np.ndarray, path: Path) -> None:
    """Write a uint8 {0,1} mask whose NIfTI affine equals the DICOM geometry of the grid."""
    img = sitk.GetImageFromArray((fraction >= 0.5).astype(np.uint8))  # (slice, row, col)
    img.SetOrigin(tuple(float(v) for v in grid.positions[0]))
    img.SetSpacing((grid.pixel_spacing[1], grid.pixel_spacing[0], grid.spacing))
    img.SetDirection(tuple(np.column_stack([grid.row_dir, grid.col_dir, grid.normal]).ravel()))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path), useCompression=True)


def _case_fields(case: pd.Series | Mapping[str, object]) -> tuple[str, str, str, int]:
    return (
        str(case["patient_dir"]),
        str(case["center"]),
        str(case["label"]),
        int(case["case_index"]),
    )


def _skip_draws(rng: np.random.Generator, shape: tuple[int, ...], images: int) -> None:
    """Draw what a series of ``images`` noisy volumes would draw (bias field, gain, noise), so
    that leaving a series out keeps the noise of the series after it."""
    bias_field(np.zeros((1, 3), np.float32), rng)
    rng.uniform(0.9, 1.1)
    for _ in range(images):
        rician(np.zeros(shape, np.float32), 1.0, rng)


# Series beyond the default ones: protocol key -> (series index, grid, rendered signal). The
# indices follow a usual acquisition order, contrast-enhanced last (series times follow them).
_OPTIONAL = {
    "t2cor": (6, "cor", "t2"),
    "t2fsax": (7, "ax", "t2fs"),
    "t2fssag": (8, "sag", "t2fs"),
    "dwisag": (9, "dwisag", "dwi"),
    "adcsag": (10, "dwisag", "adc"),
    "t1ax": (11, "ax", "t1"),
    "t1sag": (12, "sag", "t1"),
    "t1fsax": (13, "vibe", "t1fs"),
    "cet1ax": (14, "vibe", "ce"),
    "cet1sag": (15, "sag", "ce"),
    "cet1cor": (16, "cor", "ce"),
}
VIBE_MM = 4.0  # slice thickness of the 3-D gradient-echo T1 axial series (no gap)


def _optional_series(
    pat: _Patient,
    anat: Anatomy,
    keys: list[str],
    grids: dict[str, SliceGrid],
    masks_dir: Path,
    rendered: dict[str, dict[str, np.ndarray]],
) -> None:
    """Write the series beyond the default ones (``keys``), each with its tumour mask.

    Series on one grid share one rendering and one coil sensitivity and gain (pre- and
    post-contrast T1 can be subtracted); each series has its own noise. Every stream is seeded
    apart from the default series' one, so adding series changes none of those. ``rendered``:
    the renderings by grid name done already (by the T2 series), and where new ones go.
    """
    spec, p, case_index = pat.spec, pat.profile, pat.case_index
    gains: dict[str, np.ndarray] = {}
    for key in keys:
        idx, grid_name, signal = _OPTIONAL[key]
        grid = grids[grid_name]
        if grid_name not in rendered:
            rendered[grid_name] = render_contrasts(anat, grid.points(), grid.slab_offsets())
        if grid_name not in gains:
            pts = grid.points()
            grng = np.random.default_rng([spec.seed, case_index, 4, list(grids).index(grid_name)])
            gain = bias_field(pts, grng) * p.scale * grng.uniform(0.9, 1.1)
            gains[grid_name] = gain * 1.4 if grid_name == "dwisag" else gain
        r, gain = rendered[grid_name], gains[grid_name]
        rng = np.random.default_rng([spec.seed, case_index, 5, idx])
        if signal in ("dwi", "adc"):  # as the axial DWI: b=0 and b=1000, ADC derived from them
            sigma = 1.5 * p.noise * p.scale
            images, extra, b0, b1000 = _diffusion_images(
                p, r["b0"] * gain, r["b1000"] * gain, sigma, rng, grid
            )
            if signal == "dwi":
                vols = [_to_stored(v, p) for v in images]
            else:
                vols, extra = [_to_stored(adc_map(b0, b1000, 4 * sigma), p)], [{}]
        else:
            vols = [_to_stored(rician(r[signal] * gain, p.noise * p.scale, rng), p)]
            extra = [{}]
        uid = pat.write_series(key, idx, [grid] * len(vols), vols, extra)
        _write_mask(grid, r["fraction"], masks_dir / f"{uid}.nii.gz")


def write_patient(
    spec: SynthSpec, case: pd.Series | Mapping[str, object], dicom_root: Path, masks_root: Path
) -> list[Path]:
    """Return the paths written under dicom_root after writing one patient's DICOM and masks.

    The localizer always; then the series of :func:`patient_sequences`, each with a NIfTI mask
    named after its SeriesInstanceUID (the default sequences: none for the ADC map, as before).
    """
    patient_dir, center, label, case_index = _case_fields(case)
    profile = CENTERS[center]
    wanted = {SERIES_KEYS[s] for s in patient_sequences(spec, center, case_index)}
    legacy = set(spec.sequences) == set(DEFAULT_SEQUENCES)
    anat = make_anatomy(label, np.random.default_rng([spec.seed, case_index, 1]))
    rng = np.random.default_rng([spec.seed, case_index, 2])
    pat = _Patient(
        spec,
        case_index,
        patient_dir,
        profile,
        make_identity(spec.seed, case_index, profile),
        Path(dicom_root) / patient_dir,
    )
    pat.file_counter = int(rng.integers(100, 5000)) * 10  # GE-like opaque file numbering
    masks_dir = Path(masks_root) / patient_dir
    p = profile
    # field of view centered between uterus and tumour, shifted a little per patient
    target = (anat.uterus_center + anat.tumour_center) / 2
    if anat.appearance.site == "adnexa":
        target[2] = anat.tumour_center[2]  # the axial stacks cover the whole adnexal mass in z
    shift = lambda s: target + rng.normal(0, s, 3)  # noqa: E731
    step = p.thickness + p.gap
    t2ax = make_grid(shift(5), *AXIAL, p.t2_matrix, p.t2_fov, p.t2ax_slices, p.thickness, step)
    t2sag_center = shift(4)
    t2sag_center[0] = anat.tumour_center[0] + rng.normal(0, 3)  # sagittal stack through the tumour
    t2sag = make_grid(
        t2sag_center, *SAGITTAL, p.t2_matrix, p.t2_fov, p.t2sag_slices, p.thickness, step
    )
    dwi_center = shift(4)
    dwi_center[2] = anat.tumour_center[2] + rng.normal(0, 3)
    dwi = make_grid(dwi_center, *AXIAL, p.dwi_matrix, p.dwi_fov, p.dwi_slices, p.thickness, step)
    loc_center = anat.uterus_center + rng.normal(0, 5, 3)
    locs = [make_grid(loc_center, *o, 160, 400.0, 1, 8.0, 8.0) for o in (AXIAL, SAGITTAL, CORONAL)]

    optional = [k for k in _OPTIONAL if k in wanted]
    # the T2 grids that optional series share are rendered once, with every contrast (the T2
    # signal is the same either way)
    shared = {_OPTIONAL[k][1] for k in optional}
    rendered: dict[str, dict[str, np.ndarray]] = {}

    def t2_volume(grid: SliceGrid, noise: float, name: str = "") -> tuple[np.ndarray, np.ndarray]:
        pts = grid.points()
        if name in shared:
            r = rendered[name] = render_contrasts(anat, pts, grid.slab_offsets())
        else:
            r = render(anat, pts, grid.slab_offsets())
        sig = r["t2"] * bias_field(pts, rng) * p.scale * rng.uniform(0.9, 1.1)
        return _to_stored(rician(sig, noise * p.scale, rng), p), r["fraction"]

    idx = 1
    vol, _ = t2_volume(locs[0], p.noise)  # localizer: 3 single slices, 3 orientations
    loc_vols = [vol] + [t2_volume(g, p.noise)[0] for g in locs[1:]]
    pat.write_series("loc", idx, locs, loc_vols, [{}, {}, {}])
    for key, grid, name in (("t2ax", t2ax, "ax"), ("t2sag", t2sag, "sag")):
        idx += 1
        if key not in wanted:
            _skip_series(pat, rng, grid, 1, 1)
            continue
        vol, frac = t2_volume(grid, p.noise, name)
        uid = pat.write_series(key, idx, [grid], [vol], [{}])
        _write_mask(grid, frac, masks_dir / f"{uid}.nii.gz")
    _write_diffusion(pat, anat, dwi, wanted, legacy, rng, masks_dir, idx)
    if p.junk:
        junk = pat.dicom_dir / "DICOM" / "Thumbs.db"
        junk.write_bytes(rng.bytes(int(rng.integers(300, 900))))
        pat.written.append(junk)
    if optional:
        grids = _optional_grids(spec, case_index, p, anat, target, t2ax, t2sag)
        _optional_series(pat, anat, optional, grids, masks_dir, rendered)
    return pat.written


def _skip_series(
    pat: _Patient, rng: np.random.Generator, grid: SliceGrid, images: int, files: int
) -> None:
    """Leave a default series out, keeping the noise and file names of the later ones."""
    _skip_draws(rng, (len(grid.positions), grid.rows, grid.cols), images)
    if pat.profile.layout == "flat":
        pat.file_counter += files * len(grid.positions)


def _write_diffusion(
    pat: _Patient,
    anat: Anatomy,
    dwi: SliceGrid,
    wanted: set[str],
    legacy: bool,
    rng: np.random.Generator,
    masks_dir: Path,
    idx: int,
) -> None:
    """Write the DWI series (b=0 and b=1000 at the same positions; the center's images, see
    :func:`_diffusion_images`) and the derived ADC map as ``wanted`` (series numbers after
    ``idx``); left out, they keep the later series' noise and file names. ``legacy`` (the default
    sequences): no mask for the ADC map, as before."""
    p = pat.profile
    drawn, written = _dwi_counts(p)
    if not wanted & {"dwi", "adc"}:
        _skip_series(pat, rng, dwi, drawn, written + 1)
        return
    pts = dwi.points()
    r = render(anat, pts, dwi.slab_offsets())
    gain = bias_field(pts, rng) * p.scale * 1.4 * rng.uniform(0.9, 1.1)
    sigma = 1.5 * p.noise * p.scale  # EPI: lower SNR than TSE
    images, extra, b0, b1000 = _diffusion_images(
        p, r["b0"] * gain, r["b1000"] * gain, sigma, rng, dwi
    )
    idx += 1
    if "dwi" in wanted:
        stored = [_to_stored(v, p) for v in images]
        uid = pat.write_series("dwi", idx, [dwi] * len(stored), stored, extra)
        _write_mask(dwi, r["fraction"], masks_dir / f"{uid}.nii.gz")
    elif p.layout == "flat":
        pat.file_counter += written * len(dwi.positions)
    idx += 1
    if "adc" in wanted:
        adc = _to_stored(adc_map(b0, b1000, 4 * sigma), p)
        uid = pat.write_series("adc", idx, [dwi], [adc], [{}])
        if not legacy:  # the ADC map is read like any series: it needs its own mask
            _write_mask(dwi, r["fraction"], masks_dir / f"{uid}.nii.gz")
    elif p.layout == "flat":
        pat.file_counter += len(dwi.positions)


def _optional_grids(
    spec: SynthSpec,
    case_index: int,
    profile: CenterProfile,
    anat: Anatomy,
    target: np.ndarray,
    t2ax: SliceGrid,
    t2sag: SliceGrid,
) -> dict[str, SliceGrid]:
    """Return the grids of the optional series: the T2 axial and sagittal ones (geometry copied,
    as sites do), a coronal stack and a sagittal DWI stack through the tumour, and a 3-D T1
    axial slab over the T2 axial coverage."""
    p = profile
    rng = np.random.default_rng([spec.seed, case_index, 3])
    step = p.thickness + p.gap
    cor_center = target + rng.normal(0, 4, 3)
    cor_center[1] = anat.tumour_center[1] + rng.normal(0, 3)  # coronal stack through the tumour
    dwisag_center = target + rng.normal(0, 4, 3)
    dwisag_center[0] = anat.tumour_center[0] + rng.normal(0, 3)
    t2ax_center = t2ax.positions.mean(axis=0) + (t2ax.rows - 1) / 2 * t2ax.pixel_spacing[0] * (
        t2ax.row_dir + t2ax.col_dir
    )
    n_vibe = int(round(p.t2ax_slices * step / VIBE_MM))
    m, fov = p.t2_matrix, p.t2_fov
    return {
        "ax": t2ax,
        "sag": t2sag,
        "cor": make_grid(cor_center, *CORONAL, m, fov, p.t2sag_slices, p.thickness, step),
        "vibe": make_grid(t2ax_center, *AXIAL, m, fov, n_vibe, VIBE_MM, VIBE_MM),
        "dwisag": make_grid(
            dwisag_center, *SAGITTAL, p.dwi_matrix, p.dwi_fov, p.t2sag_slices, p.thickness, step
        ),
    }


def write_cohort(spec: SynthSpec, out_dir: Path) -> pd.DataFrame:
    """Return the plan after writing out_dir/dicom, out_dir/masks and out_dir/cases.tsv.

    cases.tsv: patient_dir, center, label and the SIMULATED covariates (empty cell: missing).
    """
    out_dir = Path(out_dir)
    plan = plan_cohort(spec)
    for _, case in plan.iterrows():
        write_patient(spec, case, out_dir / "dicom", out_dir / "masks")
    columns = ["patient_dir", "center", "label", *COVARIATES]
    plan[columns].to_csv(out_dir / "cases.tsv", sep="\t", index=False, na_rep="")
    return plan


def _per_class(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        name, sep, n = item.partition("=")
        if not sep or not n.strip().isdigit():
            raise argparse.ArgumentTypeError(f"--per-class expects CLASS=N, got {item!r}")
        out[name.strip()] = int(n)
    return out


def _sequence_list(text: str) -> tuple[str, ...]:
    """Return the names of a comma-separated --sequences value ('all': every one), checked."""
    if text.strip().lower() == "all":
        return SEQUENCES
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    check_sequences(names)
    return names


def main(argv: list[str] | None = None) -> int:
    """Return 0 after writing a synthetic cohort from the command line and printing a summary."""
    ap = argparse.ArgumentParser(
        prog="gynmri synth",
        description="Write a synthetic multi-center gynecologic MRI cohort (DICOM + NIfTI masks).",
    )
    ap.add_argument("out_dir", type=Path)
    ap.add_argument(
        "--per-class",
        action="append",
        default=None,
        metavar="CLASS=N",
        help="patients per class (repeatable): myoma, sarcoma (uterine) or benign, borderline, "
        "malignant (ovarian); default myoma=20 sarcoma=12",
    )
    ap.add_argument(
        "--centers",
        type=int,
        default=3,
        help=f"number of centres, 1..{len(CENTERS)}: Siemens, GE, Philips, Canon (enhanced "
        "multi-frame DICOM), Fujifilm, in that order (default 3)",
    )
    ap.add_argument("--seed", type=int, default=2022)
    ap.add_argument(
        "--sequences",
        default=",".join(DEFAULT_SEQUENCES),
        metavar="NAME,...",
        help=f"comma-separated sequences to write, or 'all': {', '.join(SEQUENCES)} "
        f"(default {','.join(DEFAULT_SEQUENCES)}); a center writes those it acquires, and "
        "patients given no contrast agent no CET1 series",
    )
    args = ap.parse_args(argv)
    try:
        per_class = _per_class(args.per_class) if args.per_class else {"myoma": 20, "sarcoma": 12}
        sequences = _sequence_list(args.sequences)
        spec = SynthSpec(per_class, centers=args.centers, seed=args.seed, sequences=sequences)
        plan = write_cohort(spec, args.out_dir)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        ap.error(str(exc))
    n_files = sum(1 for f in (args.out_dir / "dicom").rglob("*") if f.is_file())
    counts = plan.groupby(["center", "label"]).size()
    parts = [f"{c}/{lab}={n}" for (c, lab), n in counts.items()]
    print(
        f"synth: {len(plan)} patients ({', '.join(parts)}), {n_files} files under {args.out_dir / 'dicom'}"
    )
    return 0
