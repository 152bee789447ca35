"""The cases table: which patient folder has which label, and the patient's pseudonymous key."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gynmri.config import section
from gynmri.io.deid import load_secret, patient_key

CASE_COLUMNS = ["patient_dir", "center", "label"]


class CasesError(ValueError):
    """The cases table is missing, malformed, or disagrees with the config."""


def _read_tsv(path: Path, columns: list[str], what: str, key: str) -> pd.DataFrame:
    """Return a tab-separated table read as text, or raise CasesError naming file and columns."""
    if not path.is_file():
        raise CasesError(f"{what} {path} not found (config {key})")
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise CasesError(f"{what} {path}: missing columns {missing} (needs {columns})")
    return table


def covariate_columns(config: dict) -> list[str]:
    """Return the clinical covariate columns the config uses (fusion/covariates), in order."""
    return list((config.get("fusion") or {}).get("covariates") or {})


#: Subgroup variables that are not cases-table columns (config evaluate/subgroups).
EXAM_SUBGROUPS = ("hospital", "vendor", "field_strength")


def subgroup_columns(config: dict) -> list[str]:
    """Return the cases-table columns named in evaluate/subgroups (not the exam's own)."""
    named = (config.get("evaluate") or {}).get("subgroups") or []
    return [c for c in named if c not in EXAM_SUBGROUPS]


def read_cases_table(
    path: str | Path, classes: list[str], covariates: list[str] = ()
) -> pd.DataFrame:
    """Return the cases table at ``path`` checked against the configured classes.

    ``covariates``: further columns to keep (clinical data); they must exist, and may have
    empty cells (missing values, imputed later from training patients only).

    Raises:
        CasesError: missing file or columns, empty cells, unknown labels, repeated patients.
    """
    path = Path(path)
    table = _read_tsv(path, CASE_COLUMNS + list(covariates), "cases table", "cohort/cases")
    for col in CASE_COLUMNS:
        empty = table.index[table[col].str.strip() == ""]
        if len(empty):
            raise CasesError(
                f"cases table {path}: empty '{col}' on data rows {[i + 2 for i in empty]}"
            )
    bad = table[~table["label"].isin(classes)]
    if len(bad):
        raise CasesError(
            f"cases table {path}: row {bad.index[0] + 2} has label '{bad['label'].iloc[0]}', "
            f"not one of task/classes {classes}"
        )
    dup = table["patient_dir"].duplicated(keep=False)
    if dup.any():
        raise CasesError(
            f"cases table {path}: patient_dir repeated on rows {[i + 2 for i in table.index[dup]]}"
        )
    return table[CASE_COLUMNS + list(covariates)]


def load_cases(config: dict) -> pd.DataFrame:
    """Return the cases with their pseudonymous key and class index, sorted by key.

    Clinical covariate columns named in config fusion/covariates come along after the others.

    For a synthetic cohort the table is planned from the config (cheap, no files needed), so
    the workflow can plan before the cohort is written.
    """
    classes = config["task"]["classes"]
    covariates = covariate_columns(config)
    covariates += [c for c in subgroup_columns(config) if c not in covariates]
    synthetic = config["cohort"].get("synthetic")
    if synthetic:
        from gynmri.synth import plan_cohort

        plan = plan_cohort(synth_spec(synthetic))
        unknown = [c for c in covariates if c not in plan]
        if unknown:
            raise CasesError(
                f"fusion/covariates or evaluate/subgroups {unknown}: the synthetic cohort has "
                f"{list(plan)}"
            )
        table = plan[CASE_COLUMNS + covariates]
    else:
        table = read_cases_table(config["cohort"]["cases"], classes, covariates)
    secret = load_secret(config["deid"], synthetic=bool(synthetic))
    table = table.assign(
        patient=[
            patient_key(secret, c, d)
            for c, d in zip(table["center"], table["patient_dir"], strict=True)
        ],
        label_index=[classes.index(label) for label in table["label"]],
    )
    if table["patient"].duplicated().any():
        raise CasesError("two cases map to the same patient key; check for repeated rows")
    return table.sort_values("patient").reset_index(drop=True)


def synth_spec(synthetic: dict):
    """Return the SynthSpec described by config cohort/synthetic (defaults filled)."""
    from gynmri.synth import SynthSpec

    cfg = section("cohort.synthetic", synthetic)
    return SynthSpec(
        patients_per_class=dict(cfg["patients_per_class"]),
        centers=int(cfg["centers"]),
        seed=int(cfg["seed"]),
        sequences=tuple(cfg["sequences"]),
    )


RANGE_COLUMNS = ["patient_dir", "series", "first", "last"]


def read_slice_ranges(path: str | Path | None) -> dict[str, list[dict]]:
    """Return the tumour slice-range table grouped by patient_dir ({} when no table is set).

    Raises:
        CasesError: missing file or columns, non-integer or reversed ranges.
    """
    if not path:
        return {}
    path = Path(path)
    table = _read_tsv(path, RANGE_COLUMNS, "slice-range table", "cohort/slice_ranges")
    for i, row in table.iterrows():
        try:
            first, last = int(row["first"]), int(row["last"])
        except ValueError:
            raise CasesError(
                f"slice-range table {path}: row {i + 2}: first/last must be integers"
            ) from None
        if first > last:
            raise CasesError(f"slice-range table {path}: row {i + 2}: first {first} > last {last}")
    out: dict[str, list[dict]] = {}
    for row in table[RANGE_COLUMNS].to_dict("records"):
        out.setdefault(row["patient_dir"], []).append(
            {"series": row["series"], "first": int(row["first"]), "last": int(row["last"])}
        )
    return out
