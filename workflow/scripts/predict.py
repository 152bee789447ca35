"""Predict the held-out patients of one (sequence, fold) with its trained model."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

from gynmri.runlog import limit_xla_threads  # noqa: E402

limit_xla_threads(snakemake.threads)

from gynmri.crossval import predict_fold  # noqa: E402
from gynmri.runlog import start  # noqa: E402
from gynmri.train import enable_compilation_cache  # noqa: E402

start(snakemake.log[0])
enable_compilation_cache(Path(os.environ.get("GYNMRI_JAX_CACHE", ".cache/jax")).resolve())
predict_fold(
    Path(snakemake.input.model),
    snakemake.input.slices,
    snakemake.params.patients,
    snakemake.wildcards.sequence,
    int(snakemake.wildcards.fold),
    snakemake.params.classes,
    Path(snakemake.output.predictions),
)
