"""Tests of the synthetic multi-center cohort generator (gynmri.synth)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError

from gynmri.synth import (
    CENTERS,
    CLASS_APPEARANCE,
    CLINICAL,
    COVARIATES,
    SynthSpec,
    main,
    plan_cohort,
    planted_identifiers,
    simulate_covariates,
    write_cohort,
)
from gynmri.synth import write_patient as write_one
from gynmri.synth.phantom import (
    _TISSUE_NAMES,
    _signals,
    _tissue_labels,
    make_anatomy,
    make_grid,
    render,
    tumour_inside,
)

SPEC = SynthSpec({"myoma": 3, "sarcoma": 3}, centers=3, seed=7)
T2AX = {"center_a": "t2_tse_tra", "center_b": "Ax T2 FSE", "center_c": "T2W_TSE_TRA"}
T2SAG = {"center_a": "t2_tse_sag", "center_b": "Sag T2 FSE", "center_c": "T2W_TSE_SAG"}
DWI = {"center_a": "ep2d_diff_tra_b0_1000", "center_b": "Ax DWI b1000", "center_c": "DWI_b0_1000"}
DEFAULT_KEYS = ("loc", "t2ax", "t2sag", "dwi", "adc")  # the series of the default sequences


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """Write one small cohort shared by the tests of this module."""
    out = tmp_path_factory.mktemp("synth")
    return out, write_cohort(SPEC, out)


def _headers(out: Path, plan: pd.DataFrame) -> dict[str, list[tuple[Path, pydicom.Dataset]]]:
    result: dict[str, list[tuple[Path, pydicom.Dataset]]] = {}
    for pdir in plan.patient_dir:
        files = sorted(f for f in (out / "dicom" / pdir).rglob("*") if f.is_file())
        items = []
        for f in files:
            try:
                items.append((f, pydicom.dcmread(f)))
            except InvalidDicomError:
                assert f.name == "Thumbs.db", f
        result[pdir] = items
    return result


@pytest.fixture(scope="module")
def headers(cohort: tuple[Path, pd.DataFrame]) -> dict[str, list[tuple[Path, pydicom.Dataset]]]:
    """Read every DICOM header (no pixels) per patient_dir."""
    return _headers(*cohort)


def _series(items: list[tuple[Path, pydicom.Dataset]]) -> dict[str, list]:
    by = defaultdict(list)
    for f, ds in items:
        by[ds.SeriesDescription].append((f, ds))
    return by


def _volume(files: list[tuple[Path, pydicom.Dataset]]) -> np.ndarray:
    """Stack slices sorted along the normal, in rescaled signal units."""
    ds0 = files[0][1]
    normal = np.cross(*np.reshape(np.array(ds0.ImageOrientationPatient, float), (2, 3)))
    files = sorted(files, key=lambda fd: float(np.dot(fd[1].ImagePositionPatient, normal)))
    return np.stack(
        [ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for _, ds in files]
    )


def test_plan_deterministic_and_balanced() -> None:
    spec = SynthSpec({"myoma": 22, "sarcoma": 14})
    plan = plan_cohort(spec)
    pd.testing.assert_frame_equal(plan, plan_cohort(spec))
    assert list(plan.columns[:4]) == ["patient_dir", "center", "label", "case_index"]
    assert len(plan) == 36 and plan.patient_dir.is_unique
    assert list(plan.patient_dir) == sorted(plan.patient_dir)
    sizes = plan.groupby("center").size()
    assert set(sizes.index) == set(list(CENTERS)[: spec.centers]) and sizes.max() - sizes.min() <= 1
    assert (plan.groupby("center").label.nunique() == 2).all()
    assert (plan.groupby("label").size() == pd.Series({"myoma": 22, "sarcoma": 14})).all()
    assert all(d.startswith(c + "/") for d, c in zip(plan.patient_dir, plan.center, strict=True))
    one = plan_cohort(SynthSpec({"myoma": 2, "sarcoma": 1}, centers=1))
    assert set(one.center) == {"center_a"}


def test_unknown_class_is_rejected() -> None:
    with pytest.raises(ValueError, match="teratoma"):
        plan_cohort(SynthSpec({"myoma": 1, "teratoma": 1}))


def test_write_patient_is_byte_identical(tmp_path: Path) -> None:
    case = plan_cohort(SPEC).iloc[4]  # a center_c patient: interleaved order plus junk file
    a = write_one(SPEC, case, tmp_path / "a" / "dicom", tmp_path / "a" / "masks")
    b = write_one(SPEC, case.to_dict(), tmp_path / "b" / "dicom", tmp_path / "b" / "masks")
    rel = [p.relative_to(tmp_path / "a") for p in a]
    assert rel == [p.relative_to(tmp_path / "b") for p in b]
    all_a = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    assert len(all_a) == len(a) + 3  # plus three masks
    for r in all_a:
        assert (tmp_path / "a" / r).read_bytes() == (tmp_path / "b" / r).read_bytes(), r


def test_every_file_is_valid_dicom(cohort, headers) -> None:
    out, plan = cohort
    sops, sizes = set(), []
    for items in headers.values():
        assert len({ds.StudyInstanceUID for _, ds in items}) == 1
        for f, ds in items:
            assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
            assert (
                ds.SOPClassUID
                == "1.2.840.10008.5.1.4.1.1.4"
                == ds.file_meta.MediaStorageSOPClassUID
            )
            assert ds.Modality == "MR" and ds.PatientSex == "F" and ds.BitsAllocated == 16
            for tag in (
                "ImagePositionPatient",
                "ImageOrientationPatient",
                "PixelSpacing",
                "SliceThickness",
                "SpacingBetweenSlices",
                "SliceLocation",
                "InstanceNumber",
                "RescaleSlope",
                "RescaleIntercept",
                "StationName",
                "InstitutionName",
                "EchoTime",
                "RepetitionTime",
                "MagneticFieldStrength",
                "PatientAge",
            ):
                assert tag in ds, (f, tag)
            sops.add(ds.SOPInstanceUID)
        sizes.append(sum(f.stat().st_size for f, _ in items))
    assert len(sops) == sum(len(v) for v in headers.values())
    assert max(sizes) < 7e6
    tsv = pd.read_csv(out / "cases.tsv", sep="\t")
    assert list(tsv.columns) == ["patient_dir", "center", "label", *COVARIATES]
    assert len(tsv) == len(plan)
    pd.testing.assert_series_equal(tsv["age"], plan["age"])
    junk = list((out / "dicom").rglob("Thumbs.db"))
    assert {p.parts[-4] for p in junk} == {"center_c"} and len(junk) == 2


def test_series_structure_and_center_habits(cohort, headers) -> None:
    _, plan = cohort
    for case in plan.itertuples():
        prof = CENTERS[case.center]
        series = _series(headers[case.patient_dir])
        assert set(series) == {prof.series[k].description for k in DEFAULT_KEYS}
        assert len({ds.SeriesInstanceUID for items in series.values() for _, ds in items}) == 5
        assert {ds.Manufacturer for _, ds in headers[case.patient_dir]} == {prof.manufacturer}
        loc = series[prof.series["loc"].description]
        assert sorted(tuple(ds.ImageOrientationPatient) for _, ds in loc) == sorted(
            [(1, 0, 0, 0, 1, 0), (0, 1, 0, 0, 0, -1), (1, 0, 0, 0, 0, -1)]
        )
        dwi = series[DWI[case.center]]
        by_b = defaultdict(set)
        for _, ds in dwi:
            by_b[float(ds.DiffusionBValue)].add(tuple(ds.ImagePositionPatient))
        assert set(by_b) == {0.0, 1000.0} and by_b[0.0] == by_b[1000.0]
        assert 15 <= len(by_b[0.0]) <= 20
        adc = series[prof.series["adc"].description]
        assert all("DERIVED" in ds.ImageType for _, ds in adc)
        t2 = series[T2AX[case.center]]
        assert 20 <= len(t2) <= 24 and 16 <= len(series[prof.series["t2sag"].description]) <= 20
        ds0 = t2[0][1]
        assert 220 <= ds0.Rows * float(ds0.PixelSpacing[0]) <= 280 and 192 <= ds0.Rows <= 256
        # slice order habit: InstanceNumber vs position along the normal
        pos = [
            float(ds.ImagePositionPatient[2])
            for _, ds in sorted(t2, key=lambda x: x[1].InstanceNumber)
        ]
        steps = np.sign(np.diff(pos))
        if prof.order == "ascending":
            assert (steps > 0).all()
        elif prof.order == "descending":
            assert (steps < 0).all()
        else:
            assert (steps > 0).any() and (steps < 0).any()
        if prof.layout == "series_dirs":
            assert all(f.name.startswith("IM-") and f.suffix == ".dcm" for f, _ in t2)
        elif prof.layout == "flat":
            assert len({f.parent for f, _ in headers[case.patient_dir]}) == 1
            assert all(f.suffix == "" for f, _ in t2)


def test_masks_match_series_geometry(cohort, headers) -> None:
    out, plan = cohort
    for case in plan.itertuples():
        series = _series(headers[case.patient_dir])
        masks = sorted((out / "masks" / case.patient_dir).glob("*.nii.gz"))
        assert len(masks) == 3
        prof = CENTERS[case.center]
        for key in ("t2ax", "t2sag", "dwi"):
            items = series[prof.series[key].description]
            uid = items[0][1].SeriesInstanceUID
            mask = sitk.ReadImage(str(out / "masks" / case.patient_dir / f"{uid}.nii.gz"))
            arr = sitk.GetArrayFromImage(mask)
            assert arr.dtype == np.uint8 and set(np.unique(arr)) == {0, 1}
            assert arr.sum() > 50  # the tumour is inside every T2/DWI series
            if key == "dwi":
                continue  # two b-values at the same positions: not a plain 3-D series
            folder = str(items[0][0].parent)
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, uid))
            vol = reader.Execute()
            assert vol.GetSize() == mask.GetSize()
            np.testing.assert_allclose(vol.GetOrigin(), mask.GetOrigin(), atol=1e-3)
            np.testing.assert_allclose(vol.GetSpacing(), mask.GetSpacing(), atol=1e-4)
            np.testing.assert_allclose(vol.GetDirection(), mask.GetDirection(), atol=1e-5)


def test_sarcoma_brighter_on_b1000_than_myoma(cohort, headers) -> None:
    out, plan = cohort
    means: dict[str, list[float]] = defaultdict(list)
    for case in plan.itertuples():
        dwi = _series(headers[case.patient_dir])[DWI[case.center]]
        high = [(f, pydicom.dcmread(f)) for f, ds in dwi if float(ds.DiffusionBValue) == 1000]
        vol = _volume(high)
        uid = high[0][1].SeriesInstanceUID
        mask = sitk.GetArrayFromImage(
            sitk.ReadImage(str(out / "masks" / case.patient_dir / f"{uid}.nii.gz"))
        )
        means[case.label].append(vol[mask > 0].mean() / CENTERS[case.center].scale)
    assert np.mean(means["sarcoma"]) > 1.5 * np.mean(means["myoma"])


def test_planted_identifiers(cohort, headers) -> None:
    _, plan = cohort
    ids = planted_identifiers(SPEC)
    assert ids == planted_identifiers(SPEC) and all(len(s) >= 5 for s in ids)
    for case in plan.itertuples():
        assert not any(s in case.patient_dir for s in ids)
        _, ds = headers[case.patient_dir][0]
        for value in (
            str(ds.PatientName),
            ds.PatientID,
            ds.PatientBirthDate,
            ds.InstitutionName,
            str(ds.ReferringPhysicianName),
            str(ds.OperatorsName),
            ds.StationName,
        ):
            assert value in ids, value
        assert "^" in str(ds.PatientName) and str(ds.PatientName).split("^")[1] in ids
    names = {str(items[0][1].PatientName) for items in headers.values()}
    pids = {items[0][1].PatientID for items in headers.values()}
    assert len(names) == len(pids) == len(plan)


def test_main_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [str(tmp_path), "--per-class", "myoma=1", "--per-class", "sarcoma=1", "--centers", "2"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "2 patients" in printed and printed.count("\n") == 1
    spec = SynthSpec({"myoma": 1, "sarcoma": 1}, centers=2)
    assert not any(s in printed for s in planted_identifiers(spec))
    assert len(pd.read_csv(tmp_path / "cases.tsv", sep="\t")) == 2
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--per-class", "cyst=2"])


# --- ovarian task: adnexal masses and SIMULATED clinical covariates --------------------------

OVARIAN = ("benign", "borderline", "malignant")
# a small ovarian cohort, all three centers; with this seed every mass is of typical appearance
OVARIAN_SPEC = SynthSpec({"benign": 2, "borderline": 1, "malignant": 2}, centers=3, seed=11)


@pytest.fixture(scope="module")
def ovarian(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, dict]:
    """Write the small ovarian cohort through the command line; return it with its headers."""
    out = tmp_path_factory.mktemp("ovarian")
    argv = [str(out), "--seed", str(OVARIAN_SPEC.seed)]
    for label, n in OVARIAN_SPEC.patients_per_class.items():
        argv += ["--per-class", f"{label}={n}"]
    assert main(argv) == 0
    plan = plan_cohort(OVARIAN_SPEC)
    return out, plan, _headers(out, plan)


def _masked(out: Path, pdir: str, items: list[tuple[Path, pydicom.Dataset]]) -> tuple:
    """Return (volume, mask) of a series' files, the mask read from its NIfTI."""
    uid = items[0][1].SeriesInstanceUID
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "masks" / pdir / f"{uid}.nii.gz")))
    return _volume([(f, pydicom.dcmread(f)) for f, _ in items]), mask


def test_ovarian_cohort_writes_dicom_and_masks(ovarian) -> None:
    out, plan, headers = ovarian
    assert set(plan.label) == set(OVARIAN)
    tsv = pd.read_csv(out / "cases.tsv", sep="\t", keep_default_na=False, dtype=str)
    assert list(tsv.columns) == ["patient_dir", "center", "label", *COVARIATES]
    assert list(tsv.patient_dir) == list(plan.patient_dir) and list(tsv.label) == list(plan.label)
    for case in plan.itertuples():
        prof = CENTERS[case.center]
        series = _series(headers[case.patient_dir])
        assert set(series) == {prof.series[k].description for k in DEFAULT_KEYS}
        for name in (T2AX[case.center], T2SAG[case.center], DWI[case.center]):
            vol, mask = _masked(out, case.patient_dir, series[name])
            assert mask.dtype == np.uint8 and mask.sum() > 50, (case.patient_dir, name)
            if name != DWI[case.center]:
                assert mask.shape == vol.shape
                # the whole mass lies inside the stack: no mask on the first or last slice
                assert mask[0].sum() == mask[-1].sum() == 0 or name == T2SAG[case.center]


def test_ovarian_classes_differ_in_written_images(ovarian) -> None:
    out, plan, headers = ovarian
    b1000: dict[str, list[float]] = defaultdict(list)
    t2: dict[str, list[float]] = defaultdict(list)
    for case in plan.itertuples():
        scale = CENTERS[case.center].scale
        series = _series(headers[case.patient_dir])
        high = [(f, ds) for f, ds in series[DWI[case.center]] if float(ds.DiffusionBValue) == 1000]
        vol, mask = _masked(out, case.patient_dir, high)
        b1000[case.label].append(vol[mask > 0].mean() / scale)
        vol, mask = _masked(out, case.patient_dir, series[T2AX[case.center]])
        t2[case.label].append(vol[mask > 0].mean() / scale)
    # malignant: restricted solid tissue, bright on b=1000; benign: fluid, dark on b=1000
    assert np.mean(b1000["malignant"]) > 2.5 * np.mean(b1000["benign"])
    assert np.mean(b1000["malignant"]) > 1.5 * np.mean(b1000["borderline"])
    # benign: T2-bright fluid; malignant: intermediate-T2 solid tissue
    assert np.mean(t2["benign"]) > 1.15 * np.mean(t2["malignant"])


def _mass_points(anat, step: float = 3.0) -> np.ndarray:
    """Return grid points (n, 3) covering the mass' bounding box."""
    half = anat.box if anat.box is not None else np.full(3, anat.tumour_rmax)
    axes = [np.arange(c - h, c + h, step) for c, h in zip(anat.tumour_center, half, strict=True)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3).astype(np.float32)


def test_adnexal_masses_beside_a_normal_uterus() -> None:
    uterus = [_TISSUE_NAMES.index("myometrium"), _TISSUE_NAMES.index("endometrium")]
    for label in OVARIAN:
        assert CLASS_APPEARANCE[label].typical.site == "adnexa"
        sizes, overlap = [], []
        for j in range(25):
            anat = make_anatomy(label, np.random.default_rng([3, j, 1]))
            assert anat.side in (-1, 1)
            pts = _mass_points(anat)
            inside = tumour_inside(anat, pts)
            assert inside.any()
            # lateral to the uterus, on the drawn side, and mostly outside it
            assert anat.side * (anat.tumour_center[0] - anat.uterus_center[0]) > 20
            overlap.append(np.isin(_tissue_labels(anat, pts[inside]), uterus).mean())
            sizes.append(2 * np.cbrt(np.prod(anat.tumour_axes)))
        assert np.median(overlap) < 0.1 and max(overlap) < 0.5
        assert 30 <= min(sizes) and max(sizes) <= 120 and 45 <= np.median(sizes) <= 85
    # uterine classes are unchanged: no cyst, no ascites, inside the uterus
    anat = make_anatomy("myoma", np.random.default_rng([3, 0, 1]))
    assert anat.fluid is None and anat.ascites_level is None and anat.side == 0


def test_adnexal_compartments_follow_the_class() -> None:
    """Mass-averaged signals from the phantom (no noise), over many patients per class."""
    stats: dict[str, dict[str, list[float]]] = {lab: defaultdict(list) for lab in OVARIAN}
    for label in OVARIAN:
        for j in range(30):
            anat = make_anatomy(label, np.random.default_rng([4, j, 1]))
            t2, b0, b1000, inside = _signals(anat, _mass_points(anat))
            stats[label]["t2"].append(t2[inside].mean())
            stats[label]["b1000"].append(b1000[inside].mean())
            stats[label]["b1000_p99"].append(np.percentile(b1000[inside], 99))
            adc = np.log(b0[inside] / np.maximum(b1000[inside], 1e-6))  # 1e-3 mm^2/s (b=1000)
            stats[label]["adc"].append(np.median(adc))
    med = {lab: {k: np.median(v) for k, v in st.items()} for lab, st in stats.items()}
    assert med["benign"]["t2"] > med["borderline"]["t2"] > med["malignant"]["t2"]
    assert med["malignant"]["b1000"] > 3 * med["benign"]["b1000"]
    assert med["malignant"]["b1000"] > 2 * med["borderline"]["b1000"]
    # borderline: papillary projections, brighter on b=1000 than anything in a benign cyst
    assert med["borderline"]["b1000_p99"] > 1.8 * med["benign"]["b1000_p99"]
    assert med["benign"]["adc"] > 2.5 and med["malignant"]["adc"] < 1.1


def test_ascites_is_free_fluid_outside_the_mask() -> None:
    shares = {lab: [] for lab in OVARIAN}
    for label in OVARIAN:
        for j in range(200):
            anat = make_anatomy(label, np.random.default_rng([5, j, 1]))
            shares[label].append(anat.ascites_level is not None)
    assert 0.45 < np.mean(shares["malignant"]) < 0.75 and np.mean(shares["benign"]) < 0.15
    found = {True: 0, False: 0}
    for j in range(12):
        anat = make_anatomy("malignant", np.random.default_rng([5, j, 1]))
        center = anat.tumour_center.copy()
        center[2] = anat.uterus_center[2]
        grid = make_grid(center, (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), 96, 300.0, 3, 6.0, 8.0)
        r = render(anat, grid.points(), np.zeros((1, 3), np.float32))  # no partial volume
        rel = (grid.points() - anat.bladder_center) / anat.bladder_axes
        outside = (r["fraction"] == 0) & (np.einsum("...i,...i->...", rel, rel) >= 1.0)
        fluid = outside & (r["t2"] > 0.93)
        has = anat.ascites_level is not None
        found[has] += 1
        if has:  # T2-bright, bright on b=0, dark on b=1000, not part of the mask
            assert fluid.sum() > 300
            assert (r["b0"][fluid] > 0.8).all() and (r["b1000"][fluid] < 0.1).all()
        else:
            assert fluid.sum() == 0
    assert found[True] and found[False]


def test_uterine_phantom_unchanged() -> None:
    """Reference values of the uterine phantom before the ovarian classes were added."""
    expected = {
        "myoma": (3398.0068318992853, 710.0281090587378, 212.34204152598977, 263.6666668653488),
        "sarcoma": (3499.9089905023575, 778.9103854596615, 243.9687677808106, 148.0000001192093),
    }
    for label, sums in expected.items():
        anat = make_anatomy(label, np.random.default_rng([7, 3, 1]))
        np.testing.assert_allclose(
            anat.tumour_center, [-3.762795798, 14.545584971, -1.632088378], atol=1e-8
        )
        grid = make_grid(anat.tumour_center, (1, 0, 0), (0, 1, 0), 48, 240.0, 3, 5.0, 5.0)
        r = render(anat, grid.points(), grid.slab_offsets())
        got = [float(r[k].astype(np.float64).sum()) for k in ("t2", "b0", "b1000", "fraction")]
        np.testing.assert_allclose(got, sums, rtol=1e-6)


def test_covariates_simulated_per_class() -> None:
    spec = SynthSpec({label: 200 for label in CLINICAL}, seed=5)
    plan = plan_cohort(spec)
    pd.testing.assert_frame_equal(plan, plan_cohort(spec))
    assert set(CLINICAL) == set(CLASS_APPEARANCE)
    assert list(plan.columns) == ["patient_dir", "center", "label", "case_index", *COVARIATES]
    # the covariates are a function of (seed, case_index, label) only
    row = plan.iloc[17]
    got = simulate_covariates(row.label, 5, int(row.case_index))
    assert got["age"] == row.age and got["menopausal"] == row.menopausal
    assert got["ca125"] == row.ca125 or (np.isnan(got["ca125"]) and np.isnan(row.ca125))
    assert plan.age.dtype.kind == "i" and plan.age.between(18, 90).all()
    ca = plan.ca125.dropna()
    assert (ca > 0).all() and np.allclose(ca, ca.round(1))
    assert 0.02 < plan.ca125.isna().mean() < 0.09
    assert set(plan.menopausal) == {"pre", "post"}
    assert (
        plan[plan.menopausal == "post"].age.mean() > plan[plan.menopausal == "pre"].age.mean() + 8
    )
    med = plan.groupby("label")[["age", "ca125"]].median()
    for col in ("age", "ca125"):
        assert med.at["benign", col] < med.at["borderline", col] < med.at["malignant", col]
        assert med.at["myoma", col] < med.at["sarcoma", col]
    assert med.at["malignant", "ca125"] > 100
    # the classes overlap: some benign above, some malignant below the malignant/benign medians
    assert (plan[plan.label == "benign"].ca125 > 100).any()
    assert (plan[plan.label == "malignant"].ca125 < 35).any()
    with pytest.raises(ValueError, match="teratoma"):
        simulate_covariates("teratoma", 1, 0)
