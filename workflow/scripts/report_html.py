"""The self-contained HTML report and the model card."""

from pathlib import Path

from gynmri.report.reporting import model_card
from gynmri.report.sections import read_inputs, render_report
from gynmri.runlog import start

log = start(snakemake.log[0])
inp = dict(snakemake.input.items())
figures = {k.removesuffix("_png"): v for k, v in inp.items() if k.endswith("_png")}
tables = {k: v for k, v in inp.items() if not k.endswith("_png")}
inputs = read_inputs(snakemake.params.config, tables, figures)
page = render_report(inputs)
Path(snakemake.output.html).write_text(page)
Path(snakemake.output.model_card).write_text(model_card(inputs))
log.info("report: %d bytes; model card: %s", len(page), snakemake.output.model_card)
