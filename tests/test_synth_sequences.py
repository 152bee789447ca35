"""All 15 canonical sequences from the synthetic generator: naming, center gaps, contrast, masks."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.errors import InvalidDicomError

from gynmri.config import ConfigError, section
from gynmri.io.cases import synth_spec
from gynmri.io.dicom import discover
from gynmri.preprocessing.ingest import IngestSettings, discover_exam, ingest_patient
from gynmri.preprocessing.sequences import load_rules, name_series
from gynmri.synth import (
    CENTERS,
    DEFAULT_SEQUENCES,
    SEQUENCES,
    SynthSpec,
    main,
    patient_sequences,
    plan_cohort,
    write_cohort,
    write_patient,
)
from gynmri.synth.phantom import (
    _TISSUE_NAMES,
    SliceGrid,
    _cystic_parts,
    _tissue_labels,
    _uterine_parts,
    make_anatomy,
    tumour_inside,
)
from gynmri.synth.writer import CONTRAST_SEQUENCES, SERIES_KEYS, had_contrast

ROOT = Path(__file__).resolve().parents[1]
# centers: benign and a sarcoma at center_a, the myoma at center_b, a sarcoma at center_c; with
# this seed one patient (center_c) was given no contrast agent and the sarcomas have necrosis
SPEC = SynthSpec({"benign": 1, "myoma": 1, "sarcoma": 2}, centers=3, seed=9, sequences=SEQUENCES)
LABEL = {name: i for i, name in enumerate(_TISSUE_NAMES)}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """Write the cohort with every sequence once for the module."""
    out = tmp_path_factory.mktemp("synth15")
    return out, write_cohort(SPEC, out)


@pytest.fixture(scope="module")
def rules() -> list[dict]:
    return load_rules(ROOT / "config" / "sequences.yaml")


@pytest.fixture(scope="module")
def series(cohort) -> dict[str, dict[str, list[tuple[Path, pydicom.Dataset]]]]:
    """Return patient_dir -> SeriesInstanceUID -> [(file, header)] (headers without pixels)."""
    out, plan = cohort
    found: dict[str, dict[str, list]] = {}
    for pdir in plan.patient_dir:
        by = defaultdict(list)
        for f in sorted(p for p in (out / "dicom" / pdir).rglob("*") if p.is_file()):
            try:
                ds = pydicom.dcmread(f, stop_before_pixels=True)
            except InvalidDicomError:
                continue  # the Philips-like junk file
            by[ds.SeriesInstanceUID].append((f, ds))
        found[pdir] = dict(by)
    return found


def _key_of(center: str, number: int) -> str:
    """Return the protocol key of a center's series number."""
    (key,) = [k for k, proto in CENTERS[center].series.items() if proto.number == number]
    return key


def _by_sequence(case, series) -> dict[str, list[tuple[Path, pydicom.Dataset]]]:
    """Return canonical name -> files of a patient, named by the generator's protocol."""
    name_of = {key: name for name, key in SERIES_KEYS.items()}
    out = {}
    for items in series[case.patient_dir].values():
        key = _key_of(case.center, int(items[0][1].SeriesNumber))
        if key != "loc":
            out[name_of[key]] = items
    return out


def test_every_sequence_is_named_by_the_rule_table_with_center_gaps(cohort, series, rules):
    out, plan = cohort
    everywhere, no_contrast = set(), 0
    for case in plan.itertuples():
        expected = set(patient_sequences(SPEC, case.center, case.case_index))
        exam = discover_exam(out / "dicom" / case.patient_dir, rules, list(SEQUENCES))
        named = {}
        for s in exam.series:
            key = _key_of(case.center, s.number)
            if key == "loc":
                assert exam.reasons[s.uid] == "localizer"
                continue
            name = exam.sequence_of[s.uid]
            # the rule table names each series as the generator meant it
            assert SERIES_KEYS[name] == key, (case.center, s.description, name)
            named[name] = s
        assert set(named) == expected and len(named) == len(exam.series) - 1
        everywhere |= expected
        # center protocols: no sagittal DWI at center_c, no coronal T2 at center_b
        assert ("DWIsag" in expected) == (case.center != "center_c")
        assert ("ADCsag" in expected) == (case.center != "center_c")
        assert ("T2cor" in expected) == (case.center != "center_b")
        contrast = had_contrast(SPEC.seed, case.case_index)
        assert contrast == bool(expected & set(CONTRAST_SEQUENCES))
        no_contrast += not contrast
        assert "T1FSaxi" in expected  # the pre-contrast T1 is acquired all the same
        for name, s in named.items():
            ds = series[case.patient_dir][s.uid][0][1]
            assert bool(ds.get("ContrastBolusAgent")) == (name in CONTRAST_SEQUENCES), name
            if name in ("DWI", "DWIsag"):
                assert s.bvalues == [0.0, 1000.0]
            if name.startswith("ADC"):
                assert "DERIVED" in s.image_type
            plane = {"axi": "axial", "sag": "sagittal", "cor": "coronal"}.get(name[-3:], "axial")
            assert s.plane == plane, name
    assert everywhere == set(SEQUENCES) and no_contrast == 1


def test_vendor_descriptions_are_named_by_the_rule_table(rules):
    """Every center's description of every sequence, by header facts alone (plane, b-values,
    image type, the agent), named as the generator means it."""
    from test_sequences import series as fake

    for center, profile in CENTERS.items():
        for name, key in SERIES_KEYS.items():
            proto = profile.series.get(key)
            if proto is None:
                continue
            plane = {"axi": "axial", "sag": "sagittal", "cor": "coronal"}.get(name[-3:], "axial")
            s = fake(
                proto.description,
                plane="axial" if plane == "axial" else "sagittal",
                image_type="\\".join(proto.image_type),
                bvalues=[0, 1000] if key in ("dwi", "dwisag") else [],
                contrast=bool(proto.agent),
            )
            s.plane, s.protocol = plane, proto.protocol  # coronal too
            assert name_series(rules, s).sequence == name, (center, proto.description)


def test_no_contrast_share_is_seeded() -> None:
    given = [had_contrast(3, i) for i in range(600)]
    assert given == [had_contrast(3, i) for i in range(600)]
    assert 0.10 < 1 - np.mean(given) < 0.20
    assert given != [had_contrast(4, i) for i in range(600)]
    spec = SynthSpec({"myoma": 1}, seed=3, sequences=("DWIsag", "CET1axi", "T2axi"))
    without, given_one = given.index(False), given.index(True)
    assert patient_sequences(spec, "center_c", without) == ("T2axi",)
    assert patient_sequences(spec, "center_a", given_one) == ("T2axi", "DWIsag", "CET1axi")


def _volume(items: list[tuple[Path, pydicom.Dataset]]) -> tuple[np.ndarray, SliceGrid]:
    """Return a single-volume series in signal units and its grid, read from the files."""
    full = [pydicom.dcmread(f) for f, _ in items]
    ds0 = full[0]
    iop = np.array(ds0.ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    full.sort(key=lambda ds: float(np.dot(np.array(ds.ImagePositionPatient, float), normal)))
    vol = np.stack(
        [ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in full]
    )
    grid = SliceGrid(
        int(ds0.Rows),
        int(ds0.Columns),
        tuple(float(v) for v in ds0.PixelSpacing),
        iop[:3],
        iop[3:],
        np.array([ds.ImagePositionPatient for ds in full], float),
        float(ds0.SliceThickness),
        float(ds0.SpacingBetweenSlices),
    )
    return vol, grid


# every other row and column: enough voxels, a quarter of the phantom evaluations
SUB = (slice(None), slice(None, None, 2), slice(None, None, 2))


def _all_slab(grid: SliceGrid, fn) -> np.ndarray:
    """Return where ``fn`` (points -> bool) holds at every sub-sample of the slabs of the voxels
    SUB (no partial volume)."""
    pts = grid.points()[SUB]
    return np.logical_and.reduce([fn(pts + o) for o in grid.slab_offsets()])


def _tissues(anat, grid: SliceGrid, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Return, per background tissue, its voxels SUB wholly of that tissue (one phantom pass)."""
    pts = grid.points()[SUB]
    out = {name: np.ones(pts.shape[:-1], bool) for name in names}
    for o in grid.slab_offsets():
        labels, tumour = _tissue_labels(anat, pts + o), tumour_inside(anat, pts + o)
        for name in names:
            out[name] &= (labels == LABEL[name]) & ~tumour
    return out


def _anatomy(case):
    return make_anatomy(case.label, np.random.default_rng([SPEC.seed, case.case_index, 1]))


def test_fat_bright_on_t1_and_dark_when_suppressed(cohort, series) -> None:
    _, plan = cohort
    ratios = defaultdict(list)
    names = ("fat", "muscle", "bladder", "myometrium")
    for case in plan.itertuples():
        anat, seqs, masks = _anatomy(case), _by_sequence(case, series), {}
        for name in ("T1axi", "T1FSaxi", "T2FSaxi", "T2axi"):  # T1FSaxi: the 3-D T1 grid
            vol, grid = _volume(seqs[name])
            vol = vol[SUB]
            key = grid.positions.tobytes()
            where = (
                masks[key] if key in masks else masks.setdefault(key, _tissues(anat, grid, names))
            )
            fat, muscle = where["fat"], where["muscle"]
            assert fat.sum() > 1000 and muscle.sum() > 1000
            ratios[name].append(vol[fat].mean() / vol[muscle].mean())
            bladder, myo = where["bladder"], where["myometrium"]
            if name == "T1axi" and bladder.sum() > 100 and myo.sum() > 100:
                # urine dark, myometrium intermediate on T1
                ratios["bladder/myometrium"].append(vol[bladder].mean() / vol[myo].mean())
    assert min(ratios["T1axi"]) > 2.0 and min(ratios["T2axi"]) > 3.0
    assert max(ratios["T1FSaxi"]) < 0.6 and max(ratios["T2FSaxi"]) < 0.8
    assert ratios["bladder/myometrium"] and max(ratios["bladder/myometrium"]) < 0.5


def _enhancement(case, series) -> tuple[np.ndarray, SliceGrid]:
    """Return post- minus pre-contrast T1 (same grid, coil and gain) relative to the center's
    scale."""
    seqs = _by_sequence(case, series)
    pre, grid = _volume(seqs["T1FSaxi"])
    post, post_grid = _volume(seqs["CET1axi"])
    np.testing.assert_allclose(grid.positions, post_grid.positions)
    return (post - pre)[SUB] / CENTERS[case.center].scale, grid


def _uterine_part(anat, which: str):
    """Return points -> bool: in the tumour's solid tissue ('solid') or in its foci ('foci')."""

    def fn(q):
        parts, out = _uterine_parts(anat, q), np.zeros(q.shape[:-1], bool)
        focal = parts.focal if parts.focal is not None else np.zeros(parts.inside.sum(), bool)
        out[parts.inside] = focal if which == "foci" else ~focal
        return out

    return fn


def test_sarcoma_solid_tissue_enhances_and_necrosis_does_not(cohort, series) -> None:
    _, plan = cohort
    checked = 0
    for case in plan[plan.label == "sarcoma"].itertuples():
        if not had_contrast(SPEC.seed, case.case_index):
            continue
        anat = _anatomy(case)
        enh, grid = _enhancement(case, series)
        solid, foci = (_all_slab(grid, _uterine_part(anat, w)) for w in ("solid", "foci"))
        assert solid.sum() > 200 and foci.sum() > 20, (solid.sum(), foci.sum())
        assert enh[solid].mean() > 0.25 and enh[foci].mean() < 0.1
        assert enh[solid].mean() > 4 * max(enh[foci].mean(), 0.01)
        checked += 1
    assert checked


def test_cyst_fluid_does_not_enhance(cohort, series) -> None:
    _, plan = cohort
    (case,) = plan[plan.label == "benign"].itertuples()
    assert had_contrast(SPEC.seed, case.case_index)
    anat = _anatomy(case)
    enh, grid = _enhancement(case, series)

    def fluid(q):
        parts, out = _cystic_parts(anat, q), np.zeros(q.shape[:-1], bool)
        if parts.wall is not None:
            out[parts.inside] = ~parts.wall & ~parts.solid
        return out

    cyst = _all_slab(grid, fluid)
    myo = _tissues(anat, grid, ("myometrium",))["myometrium"]
    assert cyst.sum() > 500 and myo.sum() > 500
    assert abs(enh[cyst].mean()) < 0.05 and enh[myo].mean() > 0.3


def test_every_series_has_a_mask_and_ingests_tumour_slices(cohort, series, rules) -> None:
    out, plan = cohort
    harmonize = section("harmonize", {"size": 32, "fov_mm": 160.0})
    settings = IngestSettings(list(SEQUENCES), harmonize, None)
    for case in plan.itertuples():
        expected = patient_sequences(SPEC, case.center, case.case_index)
        masks = sorted((out / "masks" / case.patient_dir).glob("*.nii.gz"))
        assert {m.name.removesuffix(".nii.gz") for m in masks} == {
            items[0][1].SeriesInstanceUID for items in _by_sequence(case, series).values()
        }
        if case.center != "center_a":
            continue  # the full protocol is enough to ingest
        result = ingest_patient(
            out / "dicom" / case.patient_dir,
            out / "masks" / case.patient_dir,
            case={"patient": "P1", "center": case.center, "label": case.label, "label_index": 0},
            settings=settings,
            rules=rules,
            secret=b"k",
        )
        kept = result.slices.groupby("sequence").size()
        assert set(kept.index) == set(expected) and (kept >= 1).all(), kept


def test_default_series_do_not_change_with_the_others(cohort, tmp_path) -> None:
    """The default writes what it wrote before: the same series whatever else is chosen, the
    same noise and file names when one of them is left out, and no ADC mask."""
    out, plan = cohort
    (case,) = plan[plan.center == "center_b"].itertuples()  # GE: file names count the files
    default = SynthSpec(SPEC.patients_per_class, SPEC.centers, SPEC.seed)
    assert default.sequences == DEFAULT_SEQUENCES
    written = write_patient(default, plan.loc[case.Index], tmp_path / "dicom", tmp_path / "masks")
    _, found = discover(tmp_path / "dicom" / case.patient_dir)
    assert len(found) == 5  # localizer, T2 axial and sagittal, DWI, ADC
    masks = list((tmp_path / "masks" / case.patient_dir).glob("*.nii.gz"))
    assert len(masks) == 3  # no ADC mask, as before
    for path in [*written, *masks]:
        rel = path.relative_to(tmp_path)
        assert path.read_bytes() == (out / rel).read_bytes(), rel
    one = SynthSpec(SPEC.patients_per_class, SPEC.centers, SPEC.seed, sequences=("ADC",))
    only = write_patient(
        one, plan.loc[case.Index], tmp_path / "one" / "dicom", tmp_path / "one" / "m"
    )
    assert len(only) == 3 + len(found[-1].files)  # the localizer and the ADC map
    for path in only:
        rel = path.relative_to(tmp_path / "one")
        assert path.read_bytes() == (tmp_path / rel).read_bytes(), rel
    assert len(list((tmp_path / "one" / "m").rglob("*.nii.gz"))) == 1  # not the default: a mask


def test_sequences_from_config_and_command_line(tmp_path, capsys) -> None:
    base = {"patients_per_class": {"myoma": 1, "sarcoma": 1}}
    assert synth_spec(base).sequences == DEFAULT_SEQUENCES
    assert synth_spec({**base, "sequences": ["T2axi", "CET1cor"]}).sequences == ("T2axi", "CET1cor")
    with pytest.raises(ConfigError, match="sequences"):
        synth_spec({**base, "sequences": ["T2axi", "T2tra"]})
    argv = [str(tmp_path), "--per-class", "myoma=1", "--per-class", "sarcoma=1"]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--sequences", "T2axi,T2tra,DWI"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "'T2tra'" in err and all(name in err for name in SEQUENCES)
    assert not (tmp_path / "dicom").exists()  # checked before anything is written
    assert plan_cohort(SynthSpec(base["patients_per_class"], sequences=SEQUENCES)).equals(
        plan_cohort(SynthSpec(base["patients_per_class"]))
    )


def test_schema_and_rule_table_know_the_same_sequences(rules) -> None:
    from gynmri.config import load_schema
    from gynmri.preprocessing.sequences import sequence_names

    synthetic = load_schema()["properties"]["cohort"]["properties"]["synthetic"]
    option = synthetic["properties"]["sequences"]
    assert option["items"]["enum"] == list(SEQUENCES)
    assert option["default"] == list(DEFAULT_SEQUENCES)
    assert sequence_names(rules) == set(SEQUENCES)
