"""Configuration: load a YAML config, fill defaults, validate it with messages that name the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

#: The schema shipped with the workflow (config/schema.yaml at the repository root).
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid."""


def _fill_defaults(node: Any, schema: dict) -> None:
    """Set the schema's declared defaults on missing keys, recursively."""
    if not isinstance(node, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        if key not in node and "default" in sub:
            node[key] = yaml.safe_load(yaml.safe_dump(sub["default"]))
        if key in node:
            _fill_defaults(node[key], sub)


def validate_config(config: dict, schema_path: Path = SCHEMA_PATH) -> dict:
    """Return ``config`` with defaults filled in; raise ConfigError naming the first bad key."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    try:
        jsonschema.validate(config, schema)
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ConfigError(f"config key '{where}': {err.message}") from None
    _fill_defaults(config, schema)
    check_consistency(config)
    return config


def check_consistency(config: dict) -> None:
    """Raise ConfigError where keys contradict each other (what a JSON schema cannot express)."""
    classes = config["task"]["classes"]
    unknown = [c for c in config["task"]["positive"] if c not in classes]
    if unknown:
        raise ConfigError(f"config key 'task/positive': {unknown} not in task/classes {classes}")
    if set(config["task"]["positive"]) == set(classes):
        raise ConfigError("config key 'task/positive': cannot name every class as positive")
    for name, members in (config["task"].get("summaries") or {}).items():
        unknown = [c for c in members if c not in classes]
        if unknown:
            raise ConfigError(
                f"config key 'task/summaries/{name}': {unknown} not in task/classes {classes}"
            )
        if set(members) == set(classes):
            raise ConfigError(
                f"config key 'task/summaries/{name}': cannot name every class as positive"
            )
    fusion = config.get("fusion") or {}
    unknown = sorted(set(fusion.get("sequences") or []) - set(config["sequences"]["use"]))
    if unknown:
        raise ConfigError(f"config key 'fusion/sequences': {unknown} not in sequences/use")
    synthetic = config["cohort"].get("synthetic")
    if synthetic:
        extra = sorted(set(synthetic["patients_per_class"]) - set(classes))
        if extra:
            raise ConfigError(
                f"config key 'cohort/synthetic/patients_per_class': {extra} not in task/classes"
            )


def load_config(path: str | Path) -> dict:
    """Return the validated configuration read from a YAML file."""
    with open(path) as fh:
        config = yaml.safe_load(fh) or {}
    return validate_config(config)
