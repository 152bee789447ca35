"""Cohort planning and writing: DICOM series per center profile, tumour masks as NIfTI."""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import ExplicitVRLittleEndian

from .centers import CENTERS, CenterProfile, Identity, institution_address, make_identity
from .clinical import COVARIATES, simulate_covariates
from .phantom import (
    SliceGrid,
    adc_map,
    bias_field,
    check_label,
    make_anatomy,
    make_grid,
    render,
    rician,
)

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
AXIAL = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
SAGITTAL = ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0))
CORONAL = ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0))
# Fixed implementation UID so that files are byte-identical across pydicom installs.
_IMPL_UID = "2.25.137912735513349062470264211342315812117"


@dataclass(frozen=True)
class SynthSpec:
    """What cohort to generate: patients per class, number of centers, seed."""

    patients_per_class: dict[str, int] = field(hash=False)
    centers: int = 3
    seed: int = 2022


def _validate(spec: SynthSpec) -> None:
    for label, n in spec.patients_per_class.items():
        check_label(label)
        if n < 0:
            raise ValueError(f"negative patient count for class {label!r}")
    if not 1 <= spec.centers <= len(CENTERS):
        raise ValueError(f"centers must be 1..{len(CENTERS)}, got {spec.centers}")


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
        return self.dicom_dir / "DICOM" / f"S{series_idx:04d}" / f"I{instance:04d}"

    def write_series(
        self,
        proto_key: str,
        series_idx: int,
        grids: list[SliceGrid],
        stored: list[np.ndarray],
        extra: list[Mapping[str, object]],
    ) -> str:
        """Write one series (slices of one or more stacks) and return its SeriesInstanceUID."""
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
        base.ScanningSequence = "EP" if proto_key in ("dwi", "adc") else "SE"
        base.SequenceVariant = "SK\\SP" if proto_key in ("dwi", "adc") else "SK\\SP\\OSP"
        base.MRAcquisitionType = "2D"
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
        instance = 0
        for stack, (grid, vol, ext) in enumerate(zip(grids, stored, extra, strict=True)):
            for k in _instance_order(len(grid.positions), p.order):
                instance += 1
                ds = Dataset()
                ds.update(base)
                ds.SOPInstanceUID = _uid(self.spec, self.case_index, "sop", proto_key, stack, k)
                ds.InstanceNumber = instance
                ds.AcquisitionNumber = 1
                ds.ImagePositionPatient = [_ds(v) for v in grid.positions[k]]
                ds.ImageOrientationPatient = [_ds(v) for v in (*grid.row_dir, *grid.col_dir)]
                ds.SliceLocation = _ds(float(grid.positions[k] @ grid.normal))
                ds.SliceThickness = _ds(grid.thickness)
                ds.SpacingBetweenSlices = _ds(grid.spacing)
                ds.Rows, ds.Columns = grid.rows, grid.cols
                ds.PixelSpacing = [_ds(v) for v in grid.pixel_spacing]
                sl = vol[k]
                signal = sl.astype(float) * p.slope + p.intercept
                ds.WindowCenter = _ds(float(np.percentile(signal, 60)))
                ds.WindowWidth = _ds(max(float(np.percentile(signal, 99.5)), 1.0))
                _set_extra(ds, ext, p)
                ds.PixelData = sl.tobytes()
                ds.file_meta = FileMetaDataset()
                ds.file_meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
                ds.file_meta.ImplementationClassUID = _IMPL_UID
                ds.file_meta.ImplementationVersionName = "GYNMRI_SYNTH_1"
                path = self.path_for(proto_key, series_idx, instance)
                path.parent.mkdir(parents=True, exist_ok=True)
                dcmwrite(path, ds, enforce_file_format=True)
                self.written.append(path)
        return series_uid


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
    else:
        ds.private_block(0x2001, "Philips Imaging DD 001", create=True).add_new(
            0x03, "FL", float(bval)
        )


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


def write_patient(
    spec: SynthSpec, case: pd.Series | Mapping[str, object], dicom_root: Path, masks_root: Path
) -> list[Path]:
    """Return the paths written under dicom_root after writing one patient's DICOM and masks."""
    patient_dir, center, label, case_index = _case_fields(case)
    profile = CENTERS[center]
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

    def t2_volume(grid: SliceGrid, noise: float) -> tuple[np.ndarray, np.ndarray]:
        pts = grid.points()
        r = render(anat, pts, grid.slab_offsets())
        sig = r["t2"] * bias_field(pts, rng) * p.scale * rng.uniform(0.9, 1.1)
        return _to_stored(rician(sig, noise * p.scale, rng), p), r["fraction"]

    idx = 1
    vol, _ = t2_volume(locs[0], p.noise)  # localizer: 3 single slices, 3 orientations
    loc_vols = [vol] + [t2_volume(g, p.noise)[0] for g in locs[1:]]
    pat.write_series("loc", idx, locs, loc_vols, [{}, {}, {}])
    for key, grid in (("t2ax", t2ax), ("t2sag", t2sag)):
        idx += 1
        vol, frac = t2_volume(grid, p.noise)
        uid = pat.write_series(key, idx, [grid], [vol], [{}])
        _write_mask(grid, frac, masks_dir / f"{uid}.nii.gz")
    # DWI: b=0 and b=1000 at the same positions in one series, then the derived ADC map
    pts = dwi.points()
    r = render(anat, pts, dwi.slab_offsets())
    gain = bias_field(pts, rng) * p.scale * 1.4 * rng.uniform(0.9, 1.1)
    sigma = 1.5 * p.noise * p.scale  # EPI: lower SNR than TSE
    b0, b1000 = rician(r["b0"] * gain, sigma, rng), rician(r["b1000"] * gain, sigma, rng)
    idx += 1
    uid = pat.write_series(
        "dwi",
        idx,
        [dwi, dwi],
        [_to_stored(b0, p), _to_stored(b1000, p)],
        [{"bvalue": 0}, {"bvalue": 1000}],
    )
    _write_mask(dwi, r["fraction"], masks_dir / f"{uid}.nii.gz")
    idx += 1
    pat.write_series("adc", idx, [dwi], [_to_stored(adc_map(b0, b1000, 4 * sigma), p)], [{}])
    if p.junk:
        junk = pat.dicom_dir / "DICOM" / "Thumbs.db"
        junk.write_bytes(rng.bytes(int(rng.integers(300, 900))))
        pat.written.append(junk)
    return pat.written


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
    ap.add_argument("--centers", type=int, default=3)
    ap.add_argument("--seed", type=int, default=2022)
    args = ap.parse_args(argv)
    try:
        per_class = _per_class(args.per_class) if args.per_class else {"myoma": 20, "sarcoma": 12}
        spec = SynthSpec(per_class, centers=args.centers, seed=args.seed)
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
