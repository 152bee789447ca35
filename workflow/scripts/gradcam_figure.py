"""Grad-CAM maps of a sample of held-out patients for the report."""

from gynmri.training.runtime import start_jax_job

start_jax_job(snakemake.log[0], snakemake.threads, snakemake.resources.gpu_memory)

# after the XLA thread limit: jax reads it when it is imported
from gynmri.inference.explain import plot_gradcam_sample  # noqa: E402
from gynmri.io.slices import read_slices  # noqa: E402

p = snakemake.params
models = dict(zip(p.sequences, snakemake.input.models, strict=True))
plot_gradcam_sample(models, read_slices(snakemake.input.slices), p.classes, snakemake.output.png)
