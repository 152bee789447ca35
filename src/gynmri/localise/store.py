"""A trained localiser on disk: the network's state (state.npz), its settings and the slice-area
threshold chosen on the training patients (meta.json), in the classifier's folder format; or,
for a sequence read where the guide's localiser finds the tumour, that threshold alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from flax import nnx

from gynmri.localise.networks import build_network
from gynmri.training.weights import META_FILE, STATE_FILE, flat_state, restore_state

#: The network settings a localiser is rebuilt from.
NETWORK_KEYS = ("network", "base", "levels", "stem_stride", "width", "decoder", "bn_momentum")


def save_localiser(net: nnx.Module, path: Path, cfg: dict, meta: dict) -> None:
    """Write the network's state and ``meta`` plus its settings (``cfg``'s network keys)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    np.savez(path / STATE_FILE, **{k: np.asarray(v) for k, v in flat_state(net).items()})
    network = {k: cfg[k] for k in NETWORK_KEYS if k in cfg}
    full = {**meta, "role": "localiser", "network_cfg": network}
    (path / META_FILE).write_text(json.dumps(full, indent=2, sort_keys=True, default=str))


def save_carried(path: Path, meta: dict) -> None:
    """Write the folder of a sequence read by another sequence's localiser (``meta["guide"]``):
    no network, only ``meta`` (its slice-area threshold)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    full = {**meta, "role": "carried"}
    (path / META_FILE).write_text(json.dumps(full, indent=2, sort_keys=True, default=str))


def load_meta(path: Path) -> dict:
    """Return the meta of a localiser folder, own network (role "localiser") or carried."""
    path = Path(path)
    meta = json.loads((path / META_FILE).read_text())
    if meta.get("role") not in ("localiser", "carried"):
        raise ValueError(
            f"{path}: not a localiser (role {meta.get('role')!r}): trained by an older version?"
        )
    return meta


def load_localiser(path: Path) -> tuple[nnx.Module, dict]:
    """Return (network in eval mode, meta) of a :func:`save_localiser` folder."""
    path = Path(path)
    meta = load_meta(path)
    if meta["role"] != "localiser":
        raise ValueError(f"{path}: no network: the tumour is carried from {meta.get('guide')}")
    net = build_network(meta["network_cfg"])
    restore_state(net, path)
    return net, meta
