"""Per-epoch orbax checkpoints of a training run, and the fingerprint that names the run.

A checkpoint is resumed only into a run with the same fingerprint (classes, settings, a sha256
of the data), so a killed job restarted by Snakemake continues exactly where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from gynmri.config import result_settings

CHECKPOINT_FORMAT = 1
#: Columns of a training history (one row per epoch), as fit returns and checkpoints keep it.
HISTORY_COLUMNS = [
    "epoch",
    "train_loss",
    "val_loss",
    "val_balanced_accuracy",
    "seconds",
    "images_per_second",
]


def _sha256_array(h: Any, a: np.ndarray | None) -> None:
    if a is None:
        h.update(b"none")
        return
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())


def run_fingerprint(
    n_classes: int,
    model_cfg: Mapping[str, Any],
    train_cfg: Mapping[str, Any],
    train_images: np.ndarray,
    train_labels: np.ndarray,
    val_images: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
) -> str:
    """Return a canonical JSON string naming a training run (config and data sha256s).

    A checkpoint is resumed only into a run with the same fingerprint.
    """
    data = hashlib.sha256()
    _sha256_array(data, np.asarray(train_images, np.float32))
    _sha256_array(data, np.asarray(train_labels).astype(np.int64))
    val = hashlib.sha256()
    _sha256_array(val, None if val_images is None else np.asarray(val_images, np.float32))
    _sha256_array(val, None if val_labels is None else np.asarray(val_labels).astype(np.int64))
    doc = {
        "checkpoint_format": CHECKPOINT_FORMAT,
        "n_classes": int(n_classes),
        "model_cfg": dict(model_cfg),
        "train_cfg": result_settings(train_cfg),  # resources (threads, GPUs...) left out
        "train_data_sha256": data.hexdigest(),
        "val_data_sha256": val.hexdigest(),
    }
    return json.dumps(doc, sort_keys=True, default=str)


class Checkpoints:
    """Per-epoch orbax checkpoints of one fit() run in a directory (steps = epochs, last 2 kept)."""

    def __init__(
        self,
        directory: Path,
        fingerprint: str,
        log: Callable[[str], None],
        every_seconds: float = 0.0,
    ):
        import orbax.checkpoint as ocp  # imported lazily: only runs that checkpoint pay for it

        self.ocp = ocp
        self.directory = Path(directory).absolute()
        self.fingerprint = fingerprint
        self.log = log
        self.manager = self._open()
        self.every_seconds = float(every_seconds)
        self.seconds = 0.0  # spent saving
        self._last = time.perf_counter()

    def save_if_due(
        self, epoch: int, last: bool, state: Any, data_key: jax.Array, rows: list, step: int
    ) -> None:
        """Save after ``epoch`` when ``every_seconds`` have passed since the last save (or the
        start), never after the ``last`` epoch: a checkpoint only serves to resume a killed job,
        and the finished model is saved anyway."""
        if last or time.perf_counter() - self._last < self.every_seconds:
            return
        start = time.perf_counter()
        self.save(epoch, state, data_key, rows, step)
        self._last = time.perf_counter()
        self.seconds += self._last - start

    def _open(self) -> Any:
        ocp = self.ocp
        self.directory.mkdir(parents=True, exist_ok=True)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=2, create=True, enable_async_checkpointing=False
        )
        return ocp.CheckpointManager(self.directory, options=options)

    def restore(self, state: Any, data_key: jax.Array) -> tuple | None:
        """Return (state, data_key, history rows, global_step) of the latest matching checkpoint."""
        ocp = self.ocp
        latest = self.manager.latest_step()
        if latest is None:
            return None
        try:
            meta = self.manager.restore(
                latest, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
            )
            meta = meta["meta"]
        except Exception as err:  # unreadable or foreign: never resume from it
            meta = None
            reason = f"cannot read its metadata ({type(err).__name__}: {err})"
        else:
            reason = "it was written by a run with a different configuration or data"
        if meta is None or meta.get("fingerprint") != self.fingerprint:
            self.log(
                f"ignoring checkpoint {self.directory} (epoch {latest}): {reason}; "
                "starting from scratch and replacing it"
            )
            self.manager.close()
            shutil.rmtree(self.directory)
            self.manager = self._open()
            return None
        target = {
            "state": nnx.to_pure_dict(state),
            "data_key": jax.random.key_data(data_key),
        }
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        restored = self.manager.restore(
            latest, args=ocp.args.Composite(train=ocp.args.StandardRestore(abstract))
        )["train"]
        # orbax returns committed arrays; fresh ones are uncommitted, and jit keys its cache on
        # that, so rebuilding them (via the host) lets the resumed run reuse the compiled step.
        nnx.replace_by_pure_dict(
            state, jax.tree.map(lambda a: jnp.asarray(np.asarray(a)), restored["state"])
        )
        rows = [tuple(math.nan if v is None else v for v in row) for row in meta["history"]]
        rows = [(int(r[0]), *r[1:]) for r in rows]
        key = jax.random.wrap_key_data(
            jnp.asarray(np.asarray(restored["data_key"])), impl=jax.random.key_impl(data_key)
        )
        return state, key, rows, int(meta["global_step"])

    def save(
        self, epoch: int, state: Any, data_key: jax.Array, rows: list[tuple], global_step: int
    ) -> None:
        ocp = self.ocp
        history = [[None if isinstance(v, float) and math.isnan(v) else v for v in r] for r in rows]
        meta = {
            "fingerprint": self.fingerprint,
            "epoch": int(epoch),
            "global_step": int(global_step),
            "history": history,
            "history_columns": HISTORY_COLUMNS,
        }
        train = {"state": nnx.to_pure_dict(state), "data_key": jax.random.key_data(data_key)}
        self.manager.save(
            int(epoch),
            args=ocp.args.Composite(
                train=ocp.args.StandardSave(train), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
