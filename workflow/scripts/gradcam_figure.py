"""Class-activation maps of every fold's held-out patients: scored against the tumour
(explanations.tsv) and a sample of them drawn for the report (gradcam.png)."""

from itertools import product

from gynmri.training.runtime import start_jax_job

log = start_jax_job(snakemake.log[0], snakemake.threads, snakemake.resources.gpu_memory)

# after the XLA thread limit: jax reads it when it is imported
from gynmri.inference.cam_scores import score_run  # noqa: E402
from gynmri.inference.cams import FIGURE_METHOD  # noqa: E402
from gynmri.inference.explain import plot_cam_sample  # noqa: E402

p = snakemake.params
keys = list(product(p.sequences, p.folds))  # expand()'s order: sequence, then fold
models = dict(zip(keys, snakemake.input.models, strict=True))
if any(f"/{s}/fold{f}/" not in path for (s, f), path in models.items()):
    raise ValueError(f"models not in expand()'s order: {snakemake.input.models}")
listings = dict(zip(p.folds, snakemake.input.wide, strict=True))
folds, _, summary = score_run(models, listings, p.size)
summary.to_csv(snakemake.output.explanations, sep="\t", index=False)
log.info("explanations:\n%s", summary.to_string(float_format="%.3f"))
plot_cam_sample(folds, p.classes, snakemake.output.png, FIGURE_METHOD)
