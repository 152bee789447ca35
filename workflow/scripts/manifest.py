"""Write results/models/manifest.json: everything gynmri predict needs besides the models."""

import json
from pathlib import Path

import pandas as pd

from gynmri.inference.manifest import build_manifest
from gynmri.preprocessing.sequences import load_rules
from gynmri.runlog import start

log = start(snakemake.log[0])
p = snakemake.params
manifest = build_manifest(
    task=p.task,
    sequences=p.sequences,
    folds=p.folds,
    harmonize=p.harmonize,
    detect=p.detect,
    evaluate=p.scoring,
    ensembles=pd.read_csv(snakemake.input.ensembles, sep="\t"),
    rules=load_rules(snakemake.input.rules),
    tta=p.tta,
)
Path(snakemake.output.manifest).write_text(json.dumps(manifest, indent=1))
log.info("manifest: ensemble %s", "+".join(manifest["ensemble"]))
