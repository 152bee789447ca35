"""Peak memory of a training job: set by the training set and batch, not by the augmented pool.

    python bench/memory.py                 # pools of 1,000 and 875,000 images per class
    python bench/memory.py --also-data 4   # plus a run on 4x the training images (memory grows)

The paper's protocol augments to 875,000 images per class. Here that pool is virtual: draw i of
class c (``train.images_per_class``) is training image ``i mod count_c`` augmented with
``fold_in(fold_in(aug_key, c), i)`` inside the jitted step, so the pool's size only bounds how
many distinct draws exist. Each run is ``train.fit`` in its own subprocess; its peak RSS comes
from ``os.wait4`` (ru_maxrss of that child). The last line is ``ratio: <peak at the largest pool /
peak at the smallest>`` (expected ~1.0).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, time
import numpy as np
from gynmri.runlog import enable_compilation_cache
from gynmri.training.loop import fit
cfg = json.loads(sys.argv[1])
enable_compilation_cache(cfg["cache"])
rng = np.random.default_rng(0)
n, size = cfg["n"], cfg["size"]
labels = np.arange(n) % 2
images = rng.standard_normal((n, size, size)).astype(np.float32)
train_cfg = {"batch_size": cfg["batch"], "epochs": cfg["epochs"], "learning_rate": 1e-3,
             "images_per_epoch": cfg["images_per_epoch"], "seed": 0,
             "images_per_class": cfg["images_per_class"],
             "augment": {"rotate_deg": 12, "flip_lr": True, "scale": [0.9, 1.1],
                         "translate_frac": 0.05, "contrast": 0.1, "intensity": 0.1}}
t = time.time()
fit(images, labels, 2, {"width": cfg["width"], "stem": "single", "bn_momentum": 0.9}, train_cfg,
    log=lambda m: print(m, flush=True))
print(f"fit {time.time() - t:.1f}s", flush=True)
"""


def run_child(cfg: dict) -> tuple[float, str]:
    """Return (peak RSS in MiB, output) of one fit() in a fresh subprocess."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"child failed ({proc.returncode}):\n{out}")
    return usage.ru_maxrss / 1024.0, out  # ru_maxrss is in KiB on Linux


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--pools", default="1000,875000", help="images_per_class values")
    p.add_argument("--n", type=int, default=400, help="training images")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--width", type=float, default=0.35)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--images-per-epoch", type=int, default=128)
    p.add_argument("--also-data", type=int, default=0, help="also run on N x the training images")
    args = p.parse_args()

    pools = [int(v) for v in args.pools.split(",")]
    with tempfile.TemporaryDirectory() as cache:
        base = {
            "n": args.n,
            "size": args.size,
            "batch": args.batch,
            "width": args.width,
            "epochs": args.epochs,
            "images_per_epoch": args.images_per_epoch,
            "cache": cache,
        }
        print(
            f"fit: {args.n} training images {args.size}x{args.size}, 2 classes, batch "
            f"{args.batch}, width {args.width}, {args.epochs} epochs x {args.images_per_epoch} "
            "images, full augmentation"
        )
        peaks = {}
        for pool in pools:
            t = time.time()
            peaks[pool], out = run_child({**base, "images_per_class": pool})
            virtual_gib = 2 * pool * args.size * args.size * 4 / 2**30
            print(
                f"images_per_class {pool:>9,}: peak RSS {peaks[pool]:7.1f} MiB "
                f"({time.time() - t:.0f}s; the pool materialized would take {virtual_gib:,.1f} GiB)",
                flush=True,
            )
        if args.also_data:
            n = args.n * args.also_data
            peak, _ = run_child({**base, "n": n, "images_per_class": pools[0]})
            data_mib = n * args.size * args.size * 4 / 2**20
            print(
                f"{n} training images (x{args.also_data}, +{data_mib - args.n * args.size**2 * 4 / 2**20:.0f} "
                f"MiB of float32 data), images_per_class {pools[0]:,}: peak RSS {peak:7.1f} MiB"
            )
    print(f"ratio: {peaks[pools[-1]] / peaks[pools[0]]:.3f}")


if __name__ == "__main__":
    main()
