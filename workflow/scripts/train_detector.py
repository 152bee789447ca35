"""Train the tumour-slice detector for one (sequence, fold) on that fold's training patients."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

from gynmri.runlog import limit_xla_threads  # noqa: E402

limit_xla_threads(snakemake.threads)

from gynmri.autoselect import train_detector  # noqa: E402
from gynmri.runlog import start  # noqa: E402
from gynmri.train import enable_compilation_cache  # noqa: E402

start(snakemake.log[0])
enable_compilation_cache(Path(os.environ.get("GYNMRI_JAX_CACHE", ".cache/jax")).resolve())
p, wc = snakemake.params, snakemake.wildcards
train_detector(
    snakemake.input.wide,
    p.patients,
    wc.sequence,
    int(wc.fold),
    p.size,
    p.model,
    p.train,
    p.detect,
    Path(snakemake.output.model),
    Path(snakemake.output.history),
    checkpoint_dir=Path("results/checkpoints/detectors") / wc.sequence / f"fold{wc.fold}",
)
