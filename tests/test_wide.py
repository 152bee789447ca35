"""The wide slices of ingest: what the localiser scans, and the crop the classifier sees."""

from pathlib import Path

import numpy as np

from gynmri.config import load_config
from gynmri.io.deid import DEMO_KEY
from gynmri.io.slices import to_images, to_masks
from gynmri.localise.carry import carry, grid_of
from gynmri.localise.locate import crop_at
from gynmri.localise.metrics import dice
from gynmri.preprocessing.harmonize import wide_size
from gynmri.preprocessing.ingest import IngestSettings, ingest_patient
from gynmri.preprocessing.sequences import load_rules
from gynmri.synth import SynthSpec, plan_cohort, write_patient

ROOT = Path(__file__).resolve().parents[1]


def ingested(tmp_path, index: int, config: dict):
    """Return the ingest result of synthetic patient ``index`` (myoma 0, sarcoma 1)."""
    spec = SynthSpec({"myoma": 1, "sarcoma": 1}, centers=1, seed=3)
    row = plan_cohort(spec).iloc[index]
    write_patient(spec, row, tmp_path / "dicom", tmp_path / "masks")
    return ingest_patient(
        tmp_path / "dicom" / row.patient_dir,
        tmp_path / "masks" / row.patient_dir,
        case={"patient": "P01", "center": row.center, "label": row.label, "label_index": 0},
        settings=IngestSettings.from_config(config),
        rules=load_rules(ROOT / "config" / "sequences.yaml"),
        secret=DEMO_KEY,
    )


def test_wide_slices_hold_what_the_classifier_sees(tmp_path):
    config = load_config(ROOT / "config" / "config.yaml")
    result = ingested(tmp_path, 0, config)
    table, wide = result.slices, result.wide
    size = config["harmonize"]["size"]
    n = wide_size(size, config["harmonize"]["fov_mm"], config["detect"]["fov_mm"])
    assert set(wide["height"]) == {n}
    for sequence in ("T2axi", "DWI"):
        w = wide[wide["sequence"] == sequence].sort_values("slice_index")
        t = table[table["sequence"] == sequence].sort_values("slice_index")
        # the annotated wide slices are exactly the slice table's slices
        assert w.loc[w["annotated"], "slice_index"].tolist() == t["slice_index"].tolist()
        masks = to_masks(w)
        assert masks[w["annotated"].to_numpy()].any(axis=(1, 2)).all()
        # a crop around the tumour center of a wide slice matches the classifier's slice
        k = int(t["slice_index"].iloc[len(t) // 2])
        center = np.argwhere(masks[w["annotated"].to_numpy()]).mean(axis=0)[1:]
        crop = crop_at(to_images(w[w["slice_index"] == k]), center, size)[0]
        classifier = to_images(t[t["slice_index"] == k])[0]
        assert np.corrcoef(crop.ravel(), classifier.ravel())[0, 1] > 0.9


def test_the_wide_rows_place_each_series_in_the_patient(tmp_path):
    """The T2axi tumour mask carried by the wide rows' geometry onto the exam's DWI and T2sag
    slices matches their own masks (the phantom is one tumour in one frame of reference)."""
    config = load_config(ROOT / "config" / "config.yaml")
    config["sequences"]["use"] = ["T2axi", "T2sag", "DWI"]
    wide = ingested(tmp_path, 1, config).wide
    series = {
        s: wide[wide["sequence"] == s].sort_values("slice_index") for s in wide["sequence"].unique()
    }
    assert set(series) == {"T2axi", "T2sag", "DWI"}
    assert series["T2sag"]["plane"].unique().tolist() == ["sagittal"]
    guide = series["T2axi"]
    for name in ("T2sag", "DWI"):
        target = series[name]
        carried = carry(to_masks(guide).astype(np.float32), grid_of(guide), grid_of(target)) >= 0.5
        own = to_masks(target)
        assert dice(carried, own) > 0.85, name
        # the slices it covers are the annotated ones, give or take one at either end
        covered = set(np.flatnonzero(carried.any(axis=(1, 2))))
        annotated = set(target.loc[target["annotated"], "slice_index"])
        assert len(covered ^ annotated) <= 2, name
