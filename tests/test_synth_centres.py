"""The Canon (center_d, enhanced multi-frame) and Fujifilm (center_e) synthetic centres."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

import gynmri.synth.writer as writer
from gynmri.io.dicom import discover
from gynmri.preprocessing.sequences import load_rules, name_series
from gynmri.synth import (
    CENTERS,
    SEQUENCES,
    SynthSpec,
    main,
    patient_sequences,
    plan_cohort,
    planted_identifiers,
    write_patient,
)
from gynmri.synth.enhanced import ENHANCED_MR_STORAGE
from gynmri.synth.writer import GRADIENTS, SERIES_KEYS, direction_factors

ROOT = Path(__file__).resolve().parents[1]
# round robin: the 3 myomas at centers a-c, the 2 sarcomas at center_d and center_e; with this
# seed both were given contrast, so every sequence of the two protocols is written
SPEC = SynthSpec({"myoma": 3, "sarcoma": 2}, centers=5, seed=3, sequences=SEQUENCES)
NEW = ("center_d", "center_e")
# measured with the generator before centers d and e existed (git worktree of that commit):
# sha256 of plan_cohort's first 4 columns as TSV, and of planted_identifiers joined by newlines
PLAN_3_SHA = "6eec88a0dc5b99c98db66633fec2f00c0a679f8b2efeb9534a976b54044f3968"
IDS_3_SHA = "06166a622c36b0316cc963e1474491913e2dfdaac9a435b775b98578c0dee7ce"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """Write only the center_d and center_e patients of SPEC (all sequences)."""
    out = tmp_path_factory.mktemp("synth_centres")
    plan = plan_cohort(SPEC)
    plan = plan[plan.center.isin(NEW)].reset_index(drop=True)
    for _, case in plan.iterrows():
        write_patient(SPEC, case, out / "dicom", out / "masks")
    return out, plan


@pytest.fixture(scope="module")
def rules() -> list[dict]:
    return load_rules(ROOT / "config" / "sequences.yaml")


def _case(plan: pd.DataFrame, center: str):
    (case,) = [c for c in plan.itertuples() if c.center == center]
    return case


def _key_of(center: str, number: int) -> str:
    (key,) = [k for k, proto in CENTERS[center].series.items() if proto.number == number]
    return key


def _series_files(out: Path, case, number: int) -> list[pydicom.Dataset]:
    """Return the headers and pixels of one series (by SeriesNumber) of a patient."""
    found = []
    for f in sorted(p for p in (out / "dicom" / case.patient_dir).rglob("*") if p.is_file()):
        ds = pydicom.dcmread(f)
        if int(ds.SeriesNumber) == number:
            found.append(ds)
    return found


def test_five_centres_offered() -> None:
    plan = plan_cohort(SynthSpec({"myoma": 6, "sarcoma": 4}, centers=5))
    assert sorted(set(plan.center)) == sorted(CENTERS) == [f"center_{c}" for c in "abcde"]
    assert (plan.groupby("center").size() == 2).all()
    with pytest.raises(ValueError, match="the generator offers 5 centres"):
        plan_cohort(SynthSpec({"myoma": 1}, centers=6))


def test_cli_refuses_more_centres(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), "--per-class", "myoma=1", "--centers", "6"])
    assert exit_info.value.code == 2
    assert "the generator offers 5 centres" in capsys.readouterr().err


def test_three_centre_plan_and_identities_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = SynthSpec({"myoma": 22, "sarcoma": 14}, centers=3, seed=2022)
    plan = plan_cohort(spec)
    tsv = plan[["patient_dir", "center", "label", "case_index"]].to_csv(sep="\t", index=False)
    ids = planted_identifiers(spec)
    assert hashlib.sha256(tsv.encode()).hexdigest() == PLAN_3_SHA
    assert hashlib.sha256("\n".join(ids).encode()).hexdigest() == IDS_3_SHA
    # the same as a generator that offers only the first three centres
    monkeypatch.setattr(writer, "CENTERS", {k: CENTERS[k] for k in list(CENTERS)[:3]})
    pd.testing.assert_frame_equal(plan, plan_cohort(spec))
    assert ids == planted_identifiers(spec)


def test_new_centres_discovered_and_named(cohort, rules) -> None:
    out, plan = cohort
    for case in plan.itertuples():
        profile = CENTERS[case.center]
        records, series = discover(out / "dicom" / case.patient_dir)
        assert records and all(r.status != "excluded" for r in records), case.center
        named = {}
        for s in series:
            assert s.manufacturer == profile.manufacturer
            key = _key_of(case.center, s.number)
            naming = name_series(rules, s)
            if key == "loc":
                assert naming.reason == "localizer"
                continue
            assert naming.sequence is not None and SERIES_KEYS[naming.sequence] == key, (
                case.center,
                s.description,
                naming,
            )
            named[naming.sequence] = s
            mask = out / "masks" / case.patient_dir / f"{s.uid}.nii.gz"
            assert mask.is_file(), (case.center, s.description)
        assert set(named) == set(patient_sequences(SPEC, case.center, case.case_index))
        assert named["DWI"].bvalues == [0.0, 1000.0]
        if case.center == "center_d":  # Canon: every series one enhanced multi-frame file
            assert all(len(s.files) == 1 for s in series)
            for s in series:
                ds = s.files[0].header
                assert str(ds.SOPClassUID) == ENHANCED_MR_STORAGE
                assert "PerFrameFunctionalGroupsSequence" in ds
            assert int(named["T2axi"].files[0].header.NumberOfFrames) == profile.t2ax_slices
        else:  # Fujifilm: classic single-frame files
            assert all(len(s.files) > 1 for s in series)


def test_identities_planted_at_new_centres(cohort) -> None:
    out, plan = cohort
    planted = set(planted_identifiers(SPEC))
    for case in plan.itertuples():
        ds = _series_files(out, case, CENTERS[case.center].series["t2ax"].number)[0]
        for value in (ds.PatientName, ds.PatientID, ds.InstitutionName, ds.AccessionNumber):
            assert str(value) in planted, (case.center, value)


def _canon_dwi_frames(ds: pydicom.Dataset) -> list[tuple[float, str, tuple | None, float]]:
    """Return (b-value, directionality, gradient, position along z) of each frame."""
    out = []
    for group in ds.PerFrameFunctionalGroupsSequence:
        diff = group.MRDiffusionSequence[0]
        grad = None
        if "DiffusionGradientDirectionSequence" in diff:
            grad = tuple(diff.DiffusionGradientDirectionSequence[0].DiffusionGradientOrientation)
        z = float(group.PlanePositionSequence[0].ImagePositionPatient[2])
        out.append((float(diff.DiffusionBValue), str(diff.DiffusionDirectionality), grad, z))
    return out


def test_canon_dwi_has_three_directions_and_no_trace(cohort) -> None:
    out, plan = cohort
    case, profile = _case(plan, "center_d"), CENTERS["center_d"]
    (ds,) = _series_files(out, case, profile.series["dwi"].number)
    frames = _canon_dwi_frames(ds)
    n = profile.dwi_slices
    assert int(ds.NumberOfFrames) == len(frames) == 4 * n
    assert {b for b, *_ in frames} == {0.0, 1000.0}
    assert all(d == "NONE" and g is None for b, d, g, _ in frames if b == 0)
    high = [(d, g) for b, d, g, _ in frames if b == 1000]
    assert {d for d, _ in high} == {"DIRECTIONAL"}  # no ISOTROPIC (trace) frame
    assert sorted(g for _, g in high) == sorted(GRADIENTS * n)
    shared = ds.SharedFunctionalGroupsSequence[0]
    frame_type = shared.MRImageFrameTypeSequence[0]
    assert list(frame_type.FrameType) == ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
    assert frame_type.ComplexImageComponent == "MAGNITUDE"
    assert float(shared.PixelMeasuresSequence[0].SliceThickness) == profile.thickness
    assert len(shared.PlaneOrientationSequence[0].ImageOrientationPatient) == 6
    assert shared.PixelValueTransformationSequence[0].RescaleType == "US"
    # the ADC map follows the geometric mean of the three directions (not one direction)
    pixels = ds.pixel_array.astype(float)
    order = sorted(
        range(len(frames)), key=lambda k: (frames[k][0], frames[k][2] or (), frames[k][3])
    )
    vols = pixels[order].reshape(4, n, *pixels.shape[1:])  # b0, then the directions by gradient
    (adc_ds,) = _series_files(out, case, profile.series["adc"].number)
    z_adc = [
        float(g.PlanePositionSequence[0].ImagePositionPatient[2])
        for g in adc_ds.PerFrameFunctionalGroupsSequence
    ]
    adc = adc_ds.pixel_array.astype(float)[np.argsort(z_adc)]
    trace = np.cbrt(np.prod(vols[1:], axis=0))
    tissue = (vols[0] > 300) & (trace > 100)
    expected = np.log(vols[0][tissue] / trace[tissue]) * 1e3
    assert np.median(np.abs(adc[tissue] - expected)) < 3
    one_direction = np.log(vols[0][tissue] / vols[1][tissue]) * 1e3
    assert np.median(np.abs(adc[tissue] - one_direction)) > 15


def _points(ds: pydicom.Dataset) -> np.ndarray:
    """Return the LPS voxel centres (rows, columns, 3) of a single-frame image."""
    ipp, iop = np.array(ds.ImagePositionPatient, float), np.array(ds.ImageOrientationPatient, float)
    spacing = np.array(ds.PixelSpacing, float)
    r = np.arange(ds.Rows)[:, None, None] * spacing[0]
    c = np.arange(ds.Columns)[None, :, None] * spacing[1]
    return (ipp + c * iop[:3] + r * iop[3:]).astype(np.float32)


def test_direction_factors_keep_the_trace() -> None:
    pts = np.random.default_rng(0).uniform(-200, 200, (1000, 3)).astype(np.float32)
    factors = np.log(np.stack(direction_factors(pts)))
    np.testing.assert_allclose(factors.sum(axis=0), 0, atol=1e-6)  # geometric mean 1
    # some direction differs from the trace by about 7-8 % everywhere
    assert (np.abs(factors).max(axis=0) > 0.069).all() and (np.abs(factors) <= 0.0801).all()


def _fujifilm_dwi(files: list[pydicom.Dataset]) -> dict[float, dict]:
    """Return position -> gradient (or 'trace') -> signal of a Fujifilm DWI series at b=1000,
    plus the voxel 'points'; checks each image's diffusion tags on the way."""
    by_position: dict[float, dict] = defaultdict(dict)
    for ds in files:
        b, kind = float(ds.DiffusionBValue), str(ds.DiffusionDirectionality)
        signal = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        z = float(ds.ImagePositionPatient[2])
        if kind == "DIRECTIONAL":
            assert b == 1000 and list(ds.ImageType)[0] == "ORIGINAL"
            by_position[z][tuple(ds.DiffusionGradientOrientation)] = signal
            by_position[z]["points"] = _points(ds)
        elif kind == "ISOTROPIC":
            assert b == 1000 and list(ds.DiffusionGradientOrientation) == [0, 0, 0]
            assert list(ds.ImageType) == ["DERIVED", "PRIMARY", "DIFFUSION", "TRACEW"]
            by_position[z]["trace"] = signal
        else:
            assert kind == "NONE" and b == 0 and "DiffusionGradientOrientation" not in ds
    for images in by_position.values():
        assert set(images) == {*GRADIENTS, "trace", "points"}
    return by_position


def test_fujifilm_dwi_directions_and_trace(cohort) -> None:
    out, plan = cohort
    case, profile = _case(plan, "center_e"), CENTERS["center_e"]
    files = _series_files(out, case, profile.series["dwi"].number)
    assert len(files) == 5 * profile.dwi_slices  # b=0, 3 directions, trace
    by_position = _fujifilm_dwi(files)
    assert len(by_position) == profile.dwi_slices
    half = 0.5 * float(files[0].RescaleSlope)
    for images in by_position.values():
        directional = np.stack([images[g] for g in GRADIENTS]).astype(float)
        # the trace was stored from the unrounded signals: equal within the rounding of all four
        low = np.cbrt(np.prod(np.maximum(directional - half, 0), axis=0)) - half
        high = np.cbrt(np.prod(directional + half, axis=0)) + half
        assert ((low <= images["trace"]) & (images["trace"] <= high)).all()


def test_directions_differ_by_their_factors(tmp_path: Path, monkeypatch) -> None:
    """Without noise, each directional image is the trace times its factor (rounding aside)."""
    monkeypatch.setattr(writer, "rician", lambda signal, sigma, rng: signal.astype(np.float32))
    spec = SynthSpec({"sarcoma": 5}, centers=5, seed=3, sequences=("DWI",))
    case = plan_cohort(spec).query("center == 'center_e'").iloc[0]
    write_patient(spec, case, tmp_path / "dicom", tmp_path / "masks")
    files = _series_files(tmp_path, case, CENTERS["center_e"].series["dwi"].number)
    checked = 0
    for images in _fujifilm_dwi(files).values():
        bright = images["trace"] > 100
        factors = direction_factors(images["points"])
        for g, factor in zip(GRADIENTS, factors, strict=True):
            ratio = np.log(images[g][bright] / images["trace"][bright])
            np.testing.assert_allclose(ratio, np.log(factor[bright]), atol=0.012)
        checked += int(bright.sum())
    assert checked > 1000


def test_new_centres_write_identical_bytes(tmp_path: Path) -> None:
    spec = SynthSpec({"myoma": 5}, centers=5, seed=4, sequences=("DWI", "ADC"))
    plan = plan_cohort(spec)
    for center in NEW:
        case = plan[plan.center == center].iloc[0]
        a = write_patient(spec, case, tmp_path / "a" / "dicom", tmp_path / "a" / "masks")
        b = write_patient(spec, case, tmp_path / "b" / "dicom", tmp_path / "b" / "masks")
        assert [p.relative_to(tmp_path / "a") for p in a] == [
            p.relative_to(tmp_path / "b") for p in b
        ]
        for p in a:
            assert p.read_bytes() == (tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes()
