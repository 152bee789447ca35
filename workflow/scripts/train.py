"""Train MobileNetV2 for one (sequence, fold) on that fold's training patients."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

from gynmri.runlog import limit_xla_threads  # noqa: E402

limit_xla_threads(snakemake.threads)

from gynmri.crossval import train_fold  # noqa: E402
from gynmri.runlog import start  # noqa: E402
from gynmri.train import enable_compilation_cache  # noqa: E402

log = start(snakemake.log[0])
# Jobs with the same architecture reuse each other's compiled step (saves ~15 s per job).
enable_compilation_cache(Path(os.environ.get("GYNMRI_JAX_CACHE", ".cache/jax")).resolve())
train_fold(
    snakemake.input.slices,
    snakemake.params.patients,
    snakemake.wildcards.sequence,
    int(snakemake.wildcards.fold),
    snakemake.params.classes,
    snakemake.params.model,
    snakemake.params.train,
    Path(snakemake.output.model),
    Path(snakemake.output.history),
    # Outside the outputs, so that Snakemake keeps it when a killed job is rerun: it resumes.
    checkpoint_dir=Path("results/checkpoints")
    / snakemake.wildcards.sequence
    / f"fold{snakemake.wildcards.fold}",
)
