"""Discovery, sequence naming and harmonization on synthetic patients written to a temp folder."""

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from gynmri.config import load_config
from gynmri.io.annotations import AnnotationError
from gynmri.io.choice import TRACE_SINGLE
from gynmri.io.dicom import discover, plane_of
from gynmri.io.slices import read_slices, to_images, write_slices
from gynmri.preprocessing.harmonize import canonical_grid, resample
from gynmri.preprocessing.ingest import IngestSettings, ingest_patient
from gynmri.preprocessing.sequences import load_rules, name_series
from gynmri.synth import SynthSpec, plan_cohort, write_patient

ROOT = Path(__file__).resolve().parents[1]
SPEC = SynthSpec({"myoma": 2, "sarcoma": 2}, centers=3, seed=5)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort")
    plan = plan_cohort(SPEC)
    # one patient per center
    rows = plan.groupby("center").head(1)
    for _, row in rows.iterrows():
        write_patient(SPEC, row, out / "dicom", out / "masks")
    return out, rows


@pytest.fixture(scope="module")
def config():
    return load_config(ROOT / "config" / "config.yaml")


@pytest.fixture(scope="module")
def rules():
    return load_rules(ROOT / "config" / "sequences.yaml")


def _case(row, key="Pdeadbeef00"):
    return {
        "patient": key,
        "center": row.center,
        "label": row.label,
        "label_index": ["myoma", "sarcoma"].index(row.label),
    }


def _ingest(cohort, row, config, rules, dicom=None, masks=None):
    out, _ = cohort
    result = ingest_patient(
        dicom or out / "dicom" / row.patient_dir,
        masks or out / "masks" / row.patient_dir,
        case=_case(row),
        settings=IngestSettings.from_config(config),
        rules=rules,
        secret=b"k",
    )
    return result.slices, result.qc


def test_every_vendor_convention_is_named(cohort, rules):
    out, rows = cohort
    for _, row in rows.iterrows():
        _, series = discover(out / "dicom" / row.patient_dir)
        names = {name_series(rules, s).sequence for s in series}
        reasons = {name_series(rules, s).reason for s in series}
        assert {"T2axi", "T2sag", "DWI", "ADC"} <= names, row.center
        assert "localizer" in reasons, row.center


def test_plane_from_orientation():
    assert plane_of(np.array([1, 0, 0, 0, 1, 0.0])) == "axial"
    assert plane_of(np.array([0, 1, 0, 0, 0, -1.0])) == "sagittal"
    assert plane_of(np.array([1, 0, 0, 0, 0, -1.0])) == "coronal"
    c, s = np.cos(np.radians(45)), np.sin(np.radians(45))
    assert plane_of(np.array([1, 0, 0, 0, c, s])) == "oblique"


def test_ingest_accounts_for_every_file_and_keeps_tumour_slices(cohort, config, rules, tmp_path):
    out, rows = cohort
    for _, row in rows.iterrows():
        table, qc = _ingest(cohort, row, config, rules)
        on_disk = [p for p in (out / "dicom" / row.patient_dir).rglob("*") if p.is_file()]
        assert len(qc["files"]) == len(on_disk)
        assert all(f["status"] in ("used", "excluded") for f in qc["files"])
        assert all(f["reason"] for f in qc["files"] if f["status"] == "excluded")
        assert set(table["sequence"]) == {"T2axi", "T2sag", "DWI"}
        # QC says what each series' volumes are and how the DWI trace was had
        dwi = next(s for s in qc["series"] if s["sequence"] == "DWI")
        assert dwi["volumes"] == "magnitude b=0; magnitude b=1000", row.center
        assert dwi["volume_used"] == "b=1000" and dwi["dwi_trace"] == TRACE_SINGLE
        t2 = next(s for s in qc["series"] if s["sequence"] == "T2axi")
        assert (t2["volumes"], t2["dwi_trace"]) == ("magnitude", "")
        assert (table["tumour_fraction"] >= config["harmonize"]["min_tumour_fraction"]).all()
        size = config["harmonize"]["size"]
        images = to_images(table)
        assert images.shape[1:] == (size, size) and np.isfinite(images).all()
        write_slices(table, tmp_path / "s.parquet")
        assert (
            len(read_slices([tmp_path / "s.parquet"], "DWI")) == (table["sequence"] == "DWI").sum()
        )
        # nothing that identifies the patient in the QC record
        assert row.patient_dir not in str(qc)


def test_slice_order_and_file_names_do_not_matter(cohort, config, rules, tmp_path):
    """Renaming files (so name order is reversed) gives the same slices."""
    out, rows = cohort
    row = rows.iloc[0]
    table, _ = _ingest(cohort, row, config, rules)
    src = out / "dicom" / row.patient_dir
    files = sorted(p for p in src.rglob("*") if p.is_file())
    dst = tmp_path / "dicom" / row.patient_dir
    dst.mkdir(parents=True)
    for i, p in enumerate(reversed(files)):
        (dst / f"x{i:05d}").write_bytes(p.read_bytes())
    moved, _ = _ingest(cohort, row, config, rules, dicom=dst)
    key = ["sequence", "slice_index"]
    a, b = (
        table.sort_values(key).reset_index(drop=True),
        moved.sort_values(key).reset_index(drop=True),
    )
    assert a[key].equals(b[key])
    assert np.array_equal(to_images(a), to_images(b))


def test_mask_on_the_wrong_grid_is_an_error_naming_both(cohort, config, rules, tmp_path):
    out, rows = cohort
    row = rows.iloc[0]
    masks = tmp_path / "masks"
    masks.mkdir()
    for m in (out / "masks" / row.patient_dir).iterdir():
        img = sitk.ReadImage(str(m))
        img.SetOrigin(tuple(np.array(img.GetOrigin()) + 7.0))
        sitk.WriteImage(img, str(masks / m.name))
    with pytest.raises(AnnotationError, match=r"series \d+ '.*': mask .*nii.gz.*origin"):
        _ingest(cohort, row, config, rules, masks=masks)


def test_canonical_grid_puts_head_up_on_sagittal():
    """A sagittal volume whose slice normal points to -x is resampled with +x slice order."""
    arr = np.zeros((4, 10, 10), np.float32)  # (slice, row, col)
    arr[:, 0, :] = 1.0  # first row = most superior (column direction is -z)
    arr += np.arange(4, dtype=np.float32)[:, None, None] * 10  # slice k lies at x = -2k
    img = sitk.GetImageFromArray(arr)
    img.SetDirection(
        tuple(np.column_stack([[0, 1, 0], [0, 0, -1], [-1, 0, 0]]).astype(float).ravel())
    )
    img.SetSpacing((1.0, 1.0, 2.0))
    grid = canonical_grid(
        img,
        "sagittal",
        10,
        10.0,
        np.array(img.TransformContinuousIndexToPhysicalPoint((4.5, 4.5, 1.5))),
    )
    out = sitk.GetArrayFromImage(resample(img, grid))
    assert out.shape == (4, 10, 10)
    assert list(out[:, 5, 5]) == [30, 20, 10, 0]  # ordered along +x (patient's left)
    assert (out[:, 0, :] - out[:, 1, :] == 1).all()  # head still at the top


def test_non_dicom_and_truncated_files_are_reported(tmp_path):
    good = Path(pydicom.data.get_testdata_file("MR_small.dcm"))
    (tmp_path / "a.dcm").write_bytes(good.read_bytes())
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "cut.dcm").write_bytes(good.read_bytes()[:200])
    records, series = discover(tmp_path)
    by_name = {r.path.name: r for r in records}
    assert by_name["notes.txt"].reason == "not DICOM"
    assert by_name["cut.dcm"].status == "excluded"
    assert len(series) == 1 and series[0].files[0].path.name == "a.dcm"


# Canon (enhanced multi-frame, directions without a trace) and Fujifilm (directions and the
# scanner's trace in one classic series): the vendors of Japanese hospitals
SPEC5 = SynthSpec({"myoma": 3, "sarcoma": 2}, centers=5, seed=5)


@pytest.fixture(scope="module")
def japanese_vendors(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort5")
    plan = plan_cohort(SPEC5)
    rows = plan[plan.center.isin(["center_d", "center_e"])].groupby("center").head(1)
    for _, row in rows.iterrows():
        write_patient(SPEC5, row, out / "dicom", out / "masks")
    return out, rows


def test_canon_and_fujifilm_dwi_give_their_trace_read_or_computed(japanese_vendors, config, rules):
    _, rows = japanese_vendors
    expected = {
        "center_d": ("magnitude b=0; magnitude b=1000 x3", "computed (geometric mean of 3 "),
        "center_e": ("magnitude b=0; magnitude b=1000 x3; trace b=1000", "read (the scanner's"),
    }
    for _, row in rows.iterrows():
        table, qc = _ingest(japanese_vendors, row, config, rules)
        assert set(table["sequence"]) == {"T2axi", "T2sag", "DWI"}, row.center
        dwi = next(s for s in qc["series"] if s["sequence"] == "DWI")
        volumes, trace = expected[row.center]
        assert dwi["volumes"] == volumes and dwi["dwi_trace"].startswith(trace), dwi
        assert (
            dwi["vendor"]
            == {"center_d": "CANON_MEC", "center_e": "FUJIFILM Healthcare Corporation"}[row.center]
        )
        files = [f for f in qc["files"] if f["series"] == dwi["series"]]
        reasons = {f["reason"] for f in files if f["status"] == "excluded"}
        if row.center == "center_d":  # one enhanced file holds every frame: used
            assert [f["status"] for f in files] == ["used"]
        else:  # the b=0 and the directional images are accounted for, not used
            assert reasons == {
                "b-value not used (b=1000 selected)",
                "diffusion direction not used (the scanner's trace at b=1000 is read)",
            }
            assert sum(f["status"] == "used" for f in files) == dwi["volume_slices"]
