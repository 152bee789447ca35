#!/usr/bin/env bash
# Post-deploy script of every environment here (Snakemake runs <env>.post-deploy.sh inside the
# new environment): install the gynmri package itself, without dependencies (the environment
# file lists them, pinned as in pyproject.toml). The workflow sets GYNMRI_SOURCE to its own
# folder (workflow/rules/common.smk).
set -euo pipefail
python -m pip install --no-deps "${GYNMRI_SOURCE:?set by the workflow: the folder holding pyproject.toml}"
