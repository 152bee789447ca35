"""Discover, name and harmonise one patient's series; write its slice table and QC record."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

import pandas as pd  # noqa: E402

from gynmri.deid import load_secret  # noqa: E402
from gynmri.ingest import WIDE_SCHEMA, ingest_patient  # noqa: E402
from gynmri.runlog import start  # noqa: E402
from gynmri.sequences import load_rules  # noqa: E402
from gynmri.slices import write_slices, write_wide  # noqa: E402

log = start(snakemake.log[0])
case = snakemake.params.case
wide = []  # every slice of each used series on the detector's wide grid
table, qc = ingest_patient(
    Path(snakemake.params.dicom_root) / case["patient_dir"],
    Path(snakemake.params.masks_root) / case["patient_dir"],
    key=snakemake.wildcards.patient,
    center=case["center"],
    label=case["label"],
    label_index=int(case["label_index"]),
    config=snakemake.config,
    rules=load_rules(snakemake.input.rules),
    secret=load_secret(
        snakemake.config.get("deid", {}),
        synthetic=bool(snakemake.config["cohort"].get("synthetic")),
    ),
    ranges=snakemake.params.ranges,
    wide=wide,
)
write_slices(table, snakemake.output.slices)
write_wide(pd.DataFrame(wide, columns=WIDE_SCHEMA.names), snakemake.output.wide)
Path(snakemake.output.qc).write_text(json.dumps(qc, indent=1))
used = sum(f["status"] == "used" for f in qc["files"])
log.info("%d files (%d used), %d slices: %s", len(qc["files"]), used, len(table),
         table.groupby("sequence").size().to_dict() if len(table) else {})  # fmt: skip
