"""Configuration: the schema (the only place defaults are written), validation, defaults.

``schema.yaml`` ships inside the package, so the workflow, ``gynmri check-config`` and an
installed wheel all read the same file. Code reads validated, defaults-filled settings: the
workflow validates the whole config at parse time (:func:`validate_config`); library functions
that take one section fill what their caller left out with :func:`section`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

#: The configuration schema, shipped as package data.
SCHEMA_PATH = Path(__file__).with_name("schema.yaml")


#: Keys of config train that size a job's resources but do not change what it computes.
RESOURCE_KEYS = (
    "threads",
    "gpus",
    "gpu_memory_fraction",
    "mem_mb",
    "runtime_minutes",
    "checkpoint_seconds",
)


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid."""


@lru_cache(maxsize=4)
def load_schema(path: Path = SCHEMA_PATH) -> dict:
    """Return the parsed schema (read once per process)."""
    return yaml.safe_load(Path(path).read_text())


def _fill_defaults(node: Any, schema: dict) -> None:
    """Set the schema's declared defaults on missing keys, recursively."""
    if not isinstance(node, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        if key not in node and "default" in sub:
            node[key] = copy.deepcopy(sub["default"])
        if key in node:
            _fill_defaults(node[key], sub)


def _validate(config: Any, schema: dict, prefix: str = "") -> None:
    """Raise ConfigError naming the first key of ``config`` that ``schema`` rejects."""
    try:
        jsonschema.validate(config, schema)
    except jsonschema.ValidationError as err:
        where = "/".join([*filter(None, prefix.split(".")), *map(str, err.absolute_path)])
        raise ConfigError(f"config key '{where or '(top level)'}': {err.message}") from None


def _canonical(node: Any, schema: dict) -> Any:
    """Return ``node`` with the keys of every section in schema order (maps the user names, such
    as classes or covariates, keep their order: it can matter)."""
    if not isinstance(node, dict):
        return node
    if "properties" in schema:
        return {k: _canonical(node[k], sub) for k, sub in schema["properties"].items() if k in node}
    sub = schema.get("additionalProperties")
    return {k: _canonical(v, sub) if isinstance(sub, dict) else v for k, v in node.items()}


def validate_config(config: dict, schema_path: Path = SCHEMA_PATH) -> dict:
    """Return ``config`` (changed in place) validated, with defaults filled in and its sections
    in schema order, so that reordering a config file's keys changes no rule's params (and
    reruns nothing); raise ConfigError naming the first bad key."""
    schema = load_schema(Path(schema_path))
    _validate(config, schema)
    _fill_defaults(config, schema)
    check_consistency(config)
    canonical = _canonical(config, schema)
    config.clear()
    config.update(canonical)
    return config


def section(path: str, values: Mapping[str, Any] | None = None) -> dict:
    """Return the config section at ``path`` (e.g. 'model', 'train.augment') with every key the
    caller left out set to the schema's default, validated against the schema.

    Raises:
        ConfigError: a key is unknown, has a wrong value, or a required key is missing.
    """
    schema = load_schema()
    for part in path.split("."):
        schema = schema["properties"][part]
    out = copy.deepcopy(dict(values or {}))
    _fill_defaults(out, schema)
    _validate(out, schema, path)
    return out


def result_settings(train: Mapping[str, Any]) -> dict:
    """Return training settings without :data:`RESOURCE_KEYS`: what a model depends on."""
    return {k: v for k, v in train.items() if k not in RESOURCE_KEYS}


def check_consistency(config: dict) -> None:
    """Raise ConfigError where keys contradict each other (what a JSON schema cannot express)."""
    classes = config["task"]["classes"]
    named = {"task/positive": config["task"]["positive"]}
    named.update({f"task/summaries/{k}": v for k, v in config["task"]["summaries"].items()})
    for key, members in named.items():
        unknown = [c for c in members if c not in classes]
        if unknown:
            raise ConfigError(f"config key '{key}': {unknown} not in task/classes {classes}")
        if set(members) == set(classes):
            raise ConfigError(f"config key '{key}': cannot name every class as positive")
    fusion = config.get("fusion") or {}
    unknown = sorted(set(fusion.get("sequences") or []) - set(config["sequences"]["use"]))
    if unknown:
        raise ConfigError(f"config key 'fusion/sequences': {unknown} not in sequences/use")
    folds = config["folds"]
    if folds["scheme"] != "centre" and "k" not in folds:
        raise ConfigError(f"config key 'folds/k': required with folds/scheme {folds['scheme']}")
    guide = config["detect"]["guide"]
    if guide is not None and guide not in config["sequences"]["use"]:
        raise ConfigError(f"config key 'detect/guide': {guide!r} not in sequences/use")
    synthetic = config["cohort"].get("synthetic")
    if synthetic:
        extra = sorted(set(synthetic["patients_per_class"]) - set(classes))
        if extra:
            raise ConfigError(
                f"config key 'cohort/synthetic/patients_per_class': {extra} not in task/classes"
            )
        # a sequence the synthetic cohort does not write would fail late, with no slices
        missing = [s for s in config["sequences"]["use"] if s not in synthetic["sequences"]]
        if missing:
            raise ConfigError(
                f"config key 'sequences/use': {missing} not written by the synthetic cohort "
                f"(add them to cohort/synthetic/sequences: {synthetic['sequences']})"
            )


def load_config(path: str | Path) -> dict:
    """Return the validated configuration read from a YAML file."""
    with open(path) as fh:
        config = yaml.safe_load(fh) or {}
    return validate_config(config)


#: config detect keys that shape the localiser's network and its training batches.
LOCALISER_KEYS = (
    "network",
    "base",
    "levels",
    "stem_stride",
    "width",
    "decoder",
    "patch",
    "tumour_share",
)


def localiser_cfg(train_cfg: dict, detect_cfg: dict, model_cfg: dict | None = None) -> dict:
    """Return the settings of the tumour localiser (gynmri.localise): the classifier's training
    settings (config train: batch size, learning rate, weight decay, seed), detect/epochs and
    detect/images_per_epoch where set, the network keys of config detect, and the classifier's
    BatchNorm momentum."""
    cfg = {
        k: train_cfg[k]
        for k in (
            "batch_size",
            "epochs",
            "images_per_epoch",
            "learning_rate",
            "weight_decay",
            "seed",
        )
    }
    for key in ("epochs", "images_per_epoch"):
        if detect_cfg[key]:
            cfg[key] = detect_cfg[key]
    cfg.update({k: detect_cfg[k] for k in LOCALISER_KEYS})
    cfg["bn_momentum"] = float((model_cfg or {}).get("bn_momentum", 0.9))
    return cfg
