"""The ``gynmri`` command line: ``synth``, ``check-config`` and ``predict``."""

from __future__ import annotations

import sys

USAGE = """usage: gynmri COMMAND [ARGS]

commands:
  synth OUT_DIR [--per-class CLASS=N ...] [--centers N] [--seed N] [--sequences A,B,...]
                     write a synthetic multi-center DICOM cohort (cases.tsv, dicom/, masks/)
  check-config FILE  validate a workflow config file and print its filled-in form
  predict EXAM_DIR [--results DIR] [--out DIR] [--threshold X] [--no-explain]
                     apply the trained ensemble to one exam: tumour slices found
                     automatically, probabilities, decision, Grad-CAM maps

Run the pipeline itself with snakemake (see README.md).
"""


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a sub-command; return the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "synth":
        from gynmri.synth import main as synth_main

        return synth_main(rest)
    if command == "predict":
        from gynmri.inference.predict import main as predict_main

        return predict_main(rest)
    if command == "check-config":
        import yaml

        from gynmri.config import ConfigError, load_config

        if len(rest) != 1:
            print("usage: gynmri check-config FILE", file=sys.stderr)
            return 2
        try:
            print(yaml.safe_dump(load_config(rest[0]), sort_keys=False))
        except (ConfigError, OSError) as err:
            print(f"gynmri: {err}", file=sys.stderr)
            return 1
        return 0
    print(f"gynmri: unknown command '{command}'\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
