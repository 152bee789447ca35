"""Sequence naming: a configurable rule table turns a series' header facts into a canonical name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:  # only for annotations: naming needs no DICOM reader
    from gynmri.io.dicom import Series


_CONDITIONS = {"description", "plane", "image_type", "diffusion", "contrast"}
_ACTIONS = {"name", "exclude"}


@dataclass(frozen=True)
class Naming:
    """What the rule table made of a series: a sequence name, or an exclusion reason."""

    sequence: str | None
    reason: str = ""


def load_rules(path: str | Path) -> list[dict]:
    """Return the rule list from a YAML rule table, checked for unknown keys and bad regexes."""
    with open(path) as fh:
        rules = (yaml.safe_load(fh) or {}).get("rules")
    if not isinstance(rules, list) or not rules:
        raise ValueError(f"{path}: expected a non-empty 'rules' list")
    for i, rule in enumerate(rules):
        unknown = set(rule) - _CONDITIONS - _ACTIONS
        if unknown:
            raise ValueError(f"{path}: rule {i + 1} has unknown keys {sorted(unknown)}")
        if len(set(rule) & _ACTIONS) != 1:
            raise ValueError(f"{path}: rule {i + 1} needs exactly one of 'name' or 'exclude'")
        for key in ("description", "image_type"):
            if key in rule:
                try:
                    re.compile(rule[key])
                    _whole_tokens(rule[key])
                except re.error as err:
                    raise ValueError(f"{path}: rule {i + 1} {key} regex: {err}") from None
    return rules


def sequence_names(rules: list[dict]) -> set[str]:
    """Return every canonical name the rule table can give."""
    return {r["name"] for r in rules if "name" in r}


def check_known(use: list[str], rules: list[dict], where: str) -> None:
    """Raise ValueError when ``use`` names a sequence that no rule gives."""
    unknown = sorted(set(use) - sequence_names(rules))
    if unknown:
        raise ValueError(
            f"config sequences/use names {unknown}, which no rule in {where} gives: "
            "add a rule there or fix the names"
        )


#: Letters and digits make tokens; everything else (_ - / space + * . , = parentheses) separates.
_TOKEN_CHAR = "[a-z0-9]"


#: What '.*' between two parts of a pattern stands for: a separator, then any text that ends in
#: one, so that both parts are whole tokens ('fs.*t2' is not found in 'FSE_AX T2').
_GAP = "[^a-z0-9](?:.*[^a-z0-9])?"


@cache
def _whole_tokens(pattern: str) -> re.Pattern:
    """Return ``pattern`` compiled to match only from the start of a token to the end of one
    (case-insensitive): 't1' finds 't1_tse' and 'Ax T1' but not 'REST1' or 'T1rho'; the parts
    that '.*' joins are whole tokens too."""
    body = pattern.replace(".*", _GAP)
    return re.compile(f"(?<!{_TOKEN_CHAR})(?:{body})(?!{_TOKEN_CHAR})", re.IGNORECASE)


def _matches(rule: dict, series: Series) -> bool:
    if "description" in rule and not _whole_tokens(rule["description"]).search(series.text):
        return False
    if "image_type" in rule and not re.search(rule["image_type"], series.image_type, re.IGNORECASE):
        return False
    if "plane" in rule and rule["plane"] != series.plane:
        return False
    if "diffusion" in rule and rule["diffusion"] != any(b > 0 for b in series.bvalues):
        return False
    if "contrast" in rule and rule["contrast"] != _has_contrast(series):
        return False
    return True


# Post-contrast series are not always tagged: sites also say so in the description (whole tokens:
# 'post' but not 'posterior', 'ce' but not 'fsce'; '+C' and 'C+' as GE writes them).
_CONTRAST_WORDS = r"(\+\s?c|c\+|\+\s?gd|gd|gad\w*|contrast|post|ce|dyn(amic)?|enh(anced)?)"


def _has_contrast(series: Series) -> bool:
    """Return True when the header or the description says a contrast agent was given."""
    return series.contrast or bool(_whole_tokens(_CONTRAST_WORDS).search(series.text))


def name_series(rules: list[dict], series: Series) -> Naming:
    """Return the first matching rule's naming, or an 'unknown sequence' exclusion."""
    for rule in rules:
        if _matches(rule, series):
            if "exclude" in rule:
                return Naming(None, rule["exclude"])
            return Naming(rule["name"])
    return Naming(None, f"unknown sequence ('{series.description}', {series.plane})")
