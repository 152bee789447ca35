"""Grad-CAM maps of a sample of held-out patients for the report."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

from gynmri.runlog import limit_xla_threads  # noqa: E402

limit_xla_threads(1)

from gynmri.explain import sample_figure  # noqa: E402
from gynmri.runlog import start  # noqa: E402
from gynmri.slices import read_slices  # noqa: E402
from gynmri.train import enable_compilation_cache, load_model  # noqa: E402

start(snakemake.log[0])
enable_compilation_cache(Path(os.environ.get("GYNMRI_JAX_CACHE", ".cache/jax")).resolve())
models = {
    seq: load_model(Path(path))[0]
    for seq, path in zip(snakemake.params.sequences, snakemake.input.models, strict=True)
}
sample_figure(models, read_slices(snakemake.input.slices), snakemake.params.classes,
              snakemake.output.png)  # fmt: skip
