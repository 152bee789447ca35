"""Held-out patients of one (sequence, fold): slices selected by the detector, then classified."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

from gynmri.runlog import limit_xla_threads  # noqa: E402

limit_xla_threads(snakemake.threads)

from gynmri.autoselect import predict_auto  # noqa: E402
from gynmri.runlog import start  # noqa: E402
from gynmri.train import enable_compilation_cache  # noqa: E402

start(snakemake.log[0])
enable_compilation_cache(Path(os.environ.get("GYNMRI_JAX_CACHE", ".cache/jax")).resolve())
p, wc = snakemake.params, snakemake.wildcards
predict_auto(
    Path(snakemake.input.detector),
    Path(snakemake.input.model),
    snakemake.input.wide,
    p.patients,
    wc.sequence,
    int(wc.fold),
    p.classes,
    p.detect,
    Path(snakemake.output.predictions),
    Path(snakemake.output.selection),
)
