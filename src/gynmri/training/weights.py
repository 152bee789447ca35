"""Weights on disk: a trained model's state and metadata, and Keras' MobileNetV2 weights."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx

from gynmri.training.model import MobileNetV2, build_model

STATE_FILE = "state.npz"
META_FILE = "meta.json"
FORMAT_VERSION = 1


def flat_state(model: nnx.Module) -> dict[str, Any]:
    """Return the model's full state (params + batch stats) as {'a/b/0/kernel': array}."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: tuple[str, ...]) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, (*prefix, str(k)))
        else:
            flat["/".join(prefix)] = node

    walk(nnx.to_pure_dict(nnx.state(model)), ())
    return flat


def save_model(model: MobileNetV2, path: Path, meta: dict) -> None:
    """Write state.npz (flattened params and batch stats) and meta.json into directory path."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if "n_classes" in meta and int(meta["n_classes"]) != model.num_classes:
        raise ValueError(f"meta n_classes {meta['n_classes']} != model's {model.num_classes}")
    arrays = {k: np.asarray(v) for k, v in flat_state(model).items()}
    np.savez(path / STATE_FILE, **arrays)
    full_meta = {**meta, "n_classes": model.num_classes, "format_version": FORMAT_VERSION}
    # The architecture, read back from the model itself (the caller's settings may be partial).
    full_meta["model_cfg"] = {
        "width": model.width,
        "stem": "replicate" if model.in_channels == 3 else "single",
        "bn_momentum": model.bn_momentum,
        "dtype": model.dtype,
    }
    (path / META_FILE).write_text(json.dumps(full_meta, indent=2, sort_keys=True, default=str))


def load_model(path: Path) -> tuple[MobileNetV2, dict]:
    """Return (model in eval mode with the saved state, meta dict) from a save_model directory."""
    path = Path(path)
    meta = json.loads((path / META_FILE).read_text())
    model = build_model(int(meta["n_classes"]), meta["model_cfg"])
    restore_state(model, path)
    return model, meta


def restore_state(model: nnx.Module, path: Path) -> None:
    """Fill ``model`` (any nnx module) with the state saved in ``path``/state.npz and put it in
    eval mode; ValueError when the saved state is not of the model's architecture."""
    state = nnx.state(model)
    target = flat_state(model)
    with np.load(Path(path) / STATE_FILE) as saved:
        if set(saved.files) != set(target):
            diff = sorted(set(saved.files) ^ set(target))[:5]
            raise ValueError(f"{path}: saved state does not match the architecture in meta: {diff}")
        for k, v in target.items():
            if saved[k].shape != v.shape:
                raise ValueError(f"{path}: {k} has shape {saved[k].shape}, expected {v.shape}")
        pure = nnx.to_pure_dict(state)
        for k in target:
            node = pure
            *parents, leaf = k.split("/")
            for p in parents:
                node = node[_key_of(node, p)]
            node[_key_of(node, leaf)] = jnp.asarray(saved[k])
    nnx.replace_by_pure_dict(state, pure)
    nnx.update(model, state)
    model.eval()


class ModelMismatch(ValueError):
    """A saved model was trained for other classes or another image size than asked for."""


def load_checked(
    path: Path, classes: list[str], size: int | None = None
) -> tuple[MobileNetV2, dict]:
    """Return :func:`load_model` of ``path`` after checking that it was trained for ``classes``
    (in this order) and, when given, on ``size``-pixel slices; raise ModelMismatch otherwise."""
    model, meta = load_model(path)
    if meta.get("classes") != list(classes):
        raise ModelMismatch(
            f"model {path} was trained for classes {meta.get('classes')}, but "
            f"{list(classes)} are needed: models of another task"
        )
    if size is not None and int(meta["size"]) != int(size):
        raise ModelMismatch(
            f"model {path} was trained on {meta['size']}-pixel slices, but "
            f"{size} are needed: models of another image size"
        )
    return model, meta


def _key_of(node: Mapping, name: str) -> Any:
    # Pure-dict keys of list entries are ints; the npz names store them as strings.
    for k in node:
        if str(k) == name:
            return k
    raise KeyError(name)


def _keras_layer_names(model: MobileNetV2) -> list[tuple[str, nnx.Module, str]]:
    """Return (keras layer name, our module, kind) for every weighted layer, in Keras order."""
    names: list[tuple[str, nnx.Module, str]] = [
        ("Conv1", model.stem_conv, "conv"),
        ("bn_Conv1", model.stem_bn, "bn"),
    ]
    for i, block in enumerate(model.blocks):
        prefix = "expanded_conv_" if i == 0 else f"block_{i}_"
        if block.expand:
            names += [
                (prefix + "expand", block.expand_conv, "conv"),
                (prefix + "expand_BN", block.expand_bn, "bn"),
            ]
        names += [
            (prefix + "depthwise", block.depthwise.conv, "depthwise"),
            (prefix + "depthwise_BN", block.depthwise_bn, "bn"),
            (prefix + "project", block.project_conv, "conv"),
            (prefix + "project_BN", block.project_bn, "bn"),
        ]
    names += [
        ("Conv_1", model.head_conv, "conv"),
        ("Conv_1_bn", model.head_bn, "bn"),
        ("predictions", model.classifier, "dense"),
    ]
    return names


def load_keras_weights(model: MobileNetV2, keras_model: Any) -> MobileNetV2:
    """Copy the weights of a ``keras.applications.MobileNetV2`` into `model` (in place) and return it.

    The Keras model must have the same width (alpha), input channels and classes, and include its
    top (``include_top=True``). Layers are matched by Keras' layer names (``Conv1``,
    ``block_<i>_expand``, ``..._BN`` ...); BatchNorm gamma/beta and moving mean/variance are all
    copied; depthwise kernels (3, 3, C, 1) are reshaped to our (3, 3, 1, C). Any missing layer or
    shape mismatch raises ValueError naming the layer.
    """
    for name, module, kind in _keras_layer_names(model):
        try:
            layer = keras_model.get_layer(name)
        except ValueError as err:
            raise ValueError(f"Keras model has no layer {name!r} (not a MobileNetV2?)") from err
        weights = [np.asarray(w, np.float32) for w in layer.get_weights()]
        if kind == "bn":
            if len(weights) != 4:
                raise ValueError(
                    f"{name}: expected gamma, beta, mean, variance; got {len(weights)}"
                )
            targets = [module.scale, module.bias, module.mean, module.var]
        elif kind == "dense":
            targets = [module.kernel, module.bias]
        else:
            targets = [module.kernel]
            if kind == "depthwise" and weights:
                k = weights[0]  # Keras (3, 3, C, 1) -> ours (3, 3, 1, C)
                weights[0] = k.reshape(k.shape[0], k.shape[1], 1, k.shape[2] * k.shape[3])
        if len(weights) != len(targets):
            raise ValueError(f"{name}: Keras has {len(weights)} weights, we expect {len(targets)}")
        for target, value in zip(targets, weights, strict=True):
            if tuple(target.shape) != value.shape:
                raise ValueError(
                    f"{name}: Keras weight of shape {value.shape} does not fit ours {target.shape}"
                )
            target.set_value(jnp.asarray(value, target.get_value().dtype))
    return model
