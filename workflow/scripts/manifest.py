"""Write results/models/manifest.json: everything gynmri predict needs besides the models."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

import pandas as pd  # noqa: E402

from gynmri.predict import build_manifest  # noqa: E402
from gynmri.runlog import start  # noqa: E402
from gynmri.sequences import load_rules  # noqa: E402

log = start(snakemake.log[0])
p = snakemake.params
manifest = build_manifest(
    task=p.task,
    sequences=p.sequences,
    folds=p.folds,
    harmonize=p.harmonize,
    detect=p.detect,
    evaluate=p.evaluate,
    ensembles=pd.read_csv(snakemake.input.ensembles, sep="\t"),
    rules=load_rules(snakemake.input.rules),
)
Path(snakemake.output.manifest).write_text(json.dumps(manifest, indent=1))
log.info("manifest: ensemble %s", manifest["ensemble"])
