"""Tests of the synthetic multi-centre cohort generator (gynmri.synth)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError

from gynmri.synth import CENTERS, SynthSpec, main, plan_cohort, planted_identifiers, write_cohort
from gynmri.synth import write_patient as write_one

SPEC = SynthSpec({"myoma": 3, "sarcoma": 3}, centers=3, seed=7)
T2AX = {"center_a": "t2_tse_tra", "center_b": "Ax T2 FSE", "center_c": "T2W_TSE_TRA"}
DWI = {"center_a": "ep2d_diff_tra_b0_1000", "center_b": "Ax DWI b1000", "center_c": "DWI_b0_1000"}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """Write one small cohort shared by the tests of this module."""
    out = tmp_path_factory.mktemp("synth")
    return out, write_cohort(SPEC, out)


@pytest.fixture(scope="module")
def headers(cohort: tuple[Path, pd.DataFrame]) -> dict[str, list[tuple[Path, pydicom.Dataset]]]:
    """Read every DICOM header (no pixels) per patient_dir."""
    out, plan = cohort
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
    assert set(sizes.index) == set(CENTERS) and sizes.max() - sizes.min() <= 1
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
            for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
                        "SliceThickness", "SpacingBetweenSlices", "SliceLocation", "InstanceNumber",
                        "RescaleSlope", "RescaleIntercept", "StationName", "InstitutionName",
                        "EchoTime", "RepetitionTime", "MagneticFieldStrength", "PatientAge"):  # fmt: skip
                assert tag in ds, (f, tag)
            sops.add(ds.SOPInstanceUID)
        sizes.append(sum(f.stat().st_size for f, _ in items))
    assert len(sops) == sum(len(v) for v in headers.values())
    assert max(sizes) < 7e6
    tsv = pd.read_csv(out / "cases.tsv", sep="\t")
    assert list(tsv.columns) == ["patient_dir", "center", "label"] and len(tsv) == len(plan)
    junk = list((out / "dicom").rglob("Thumbs.db"))
    assert {p.parts[-4] for p in junk} == {"center_c"} and len(junk) == 2


def test_series_structure_and_center_habits(cohort, headers) -> None:
    _, plan = cohort
    for case in plan.itertuples():
        prof = CENTERS[case.center]
        series = _series(headers[case.patient_dir])
        assert set(series) == {s.description for s in prof.series.values()}
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
        for value in (str(ds.PatientName), ds.PatientID, ds.PatientBirthDate, ds.InstitutionName,
                      str(ds.ReferringPhysicianName), str(ds.OperatorsName), ds.StationName):  # fmt: skip
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
