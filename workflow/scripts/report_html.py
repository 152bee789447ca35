"""The self-contained HTML report."""

from pathlib import Path

from gynmri.report.sections import read_inputs, render_report
from gynmri.runlog import start

log = start(snakemake.log[0])
inp = dict(snakemake.input.items())
figures = {k.removesuffix("_png"): v for k, v in inp.items() if k.endswith("_png")}
tables = {k: v for k, v in inp.items() if not k.endswith("_png")}
page = render_report(read_inputs(snakemake.params.config, tables, figures))
Path(snakemake.output.html).write_text(page)
log.info("report: %d bytes", len(page))
