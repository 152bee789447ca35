"""Ingest one patient: its slice table and QC record (rule ingest), or its wide table (rule
ingest_wide, the one that sets ``wide_fov_mm``): the same discovery and harmonization."""

import json
from pathlib import Path

from gynmri.io.deid import job_secret
from gynmri.io.slices import write_slices, write_wide
from gynmri.preprocessing.ingest import IngestSettings, ingest_patient
from gynmri.preprocessing.sequences import load_rules
from gynmri.runlog import start

log = start(snakemake.log[0])
p, out = snakemake.params, snakemake.output
wide_fov_mm = getattr(p, "wide_fov_mm", None)  # only rule ingest_wide makes the wide table
result = ingest_patient(
    Path(p.dicom_root) / p.case["patient_dir"],
    Path(p.masks_root) / p.case["patient_dir"],
    case=p.case,
    settings=IngestSettings(p.sequences, p.harmonize, wide_fov_mm),
    rules=load_rules(snakemake.input.rules),
    secret=job_secret(p.deid, p.secret_id),
    ranges=p.ranges,
)
if wide_fov_mm is None:
    write_slices(result.slices, out.slices)
    Path(out.qc).write_text(json.dumps(result.qc, indent=1))
    used = sum(f["status"] == "used" for f in result.qc["files"])
    log.info(
        "%d files (%d used), %d slices: %s",
        len(result.qc["files"]),
        used,
        len(result.slices),
        result.slices.groupby("sequence").size().to_dict(),
    )
else:
    write_wide(result.wide, out.wide)
    log.info(
        "%d wide slices: %s", len(result.wide), result.wide.groupby("sequence").size().to_dict()
    )
