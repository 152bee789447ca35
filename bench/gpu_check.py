"""GPU check of the MobileNetV2 training code: devices, GPU-vs-CPU logits, training images/s.

On a machine with an NVIDIA GPU:

    # jax with CUDA (the plugin wheels exist on PyPI for jax 0.10.2, CUDA 12 and 13):
    pip install -e . "jax[cuda13]==0.10.2"     # or "jax[cuda12]==0.10.2" for a CUDA 12 driver
    python bench/gpu_check.py                   # at most ~8 minutes; --budget-s to change
    # On an image that already has jax with CUDA (e.g. Python 3.12, where `pip install -e .`
    # refuses this package's Python pin) no install is needed: bench/gpu_check.sh runs it with
    # PYTHONPATH=src.

It prints the devices; checks that a fixed-weight MobileNetV2 (width 1.0, random non-trivial
BatchNorm statistics, eval mode) gives the same logits on the GPU and on the CPU: tightly for
float32 (matmul precision "highest"; the default lets XLA use TF32 on the GPU, reported too) and
within bfloat16's ~3 significant digits for dtype bfloat16; then times fit's own jitted training
step (class-balanced gather + augmentation + forward/backward + Adam) at 224x224, width 1.0, in
float32 and bfloat16 for batch sizes 32, 64 and 128, and prints a table. Results go to
$OUT/gpu_check.json when OUT is set.

Without a GPU it says "no GPU" and, with --quick (< 2 minutes on 2 CPU cores), runs the same
code on the CPU at a small size so the script itself stays tested.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

try:
    import gynmri  # noqa: F401
except ImportError:  # not installed (e.g. another Python on the GPU machine): use the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from gynmri.training.model import build_model  # noqa: E402
from gynmri.training.sampler import BatchSampler  # noqa: E402
from gynmri.training.step import make_optimizer, make_train_step  # noqa: E402

AUGMENT = {
    "rotate_deg": 12,
    "flip_lr": True,
    "scale": [0.9, 1.1],
    "translate_frac": 0.05,
    "contrast": 0.1,
    "intensity": 0.1,
}
# Relative (to max |logit|) tolerances, GPU vs CPU.
TOL = {"float32": 1e-4, "bfloat16": 3e-2}


def _randomize_batchnorm(model: nnx.Module, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    for _, m in nnx.iter_graph(model):
        if isinstance(m, nnx.BatchNorm):
            c = m.scale.shape
            m.scale.set_value(jnp.asarray(rng.uniform(0.5, 1.5, c), jnp.float32))
            m.bias.set_value(jnp.asarray(rng.normal(0.0, 0.1, c), jnp.float32))
            m.mean.set_value(jnp.asarray(rng.normal(0.0, 0.1, c), jnp.float32))
            m.var.set_value(jnp.asarray(rng.uniform(0.5, 1.5, c), jnp.float32))


def _logits_on(device: jax.Device, graphdef, state, x: np.ndarray, precision: str | None):  # noqa: ANN001
    state = jax.device_put(state, device)
    xd = jax.device_put(jnp.asarray(x), device)
    f = jax.jit(lambda s, v: nnx.merge(graphdef, s)(v))
    if precision:
        with jax.default_matmul_precision(precision):
            return np.asarray(f(state, xd))
    return np.asarray(f(state, xd))


def check_logits(gpu: jax.Device | None, cpu: jax.Device, width: float, size: int) -> list[dict]:
    rows = []
    x = np.random.default_rng(2).standard_normal((8, size, size, 3)).astype(np.float32)
    reference = None
    for dtype in ("float32", "bfloat16"):
        model = build_model(1000, {"width": width, "stem": "replicate", "dtype": dtype})
        _randomize_batchnorm(model)
        model.eval()
        graphdef, state = nnx.split(model)
        cpu_logits = _logits_on(cpu, graphdef, state, x, "highest")
        if dtype == "float32":
            reference = cpu_logits
        scale = float(np.abs(cpu_logits).max())
        row = {
            "dtype": dtype,
            "max_abs_logit": scale,
            "cpu_vs_cpu_float32": float(np.abs(cpu_logits - reference).max() / scale),
        }
        if gpu is not None:
            for precision in ("highest", None):
                g = _logits_on(gpu, graphdef, state, x, precision)
                row[f"gpu_vs_cpu_{precision or 'default'}"] = float(
                    np.abs(g - cpu_logits).max() / scale
                )
            row["ok"] = row["gpu_vs_cpu_highest"] < TOL[dtype]
        rows.append(row)
        print(
            "logits "
            + ", ".join(
                f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
            ),
            flush=True,
        )
    return rows


def time_training(
    device: jax.Device, width: float, size: int, batch: int, dtype: str, steps: int
) -> dict:
    with jax.default_device(device):
        model = build_model(
            3, {"width": width, "stem": "single", "dtype": dtype, "bn_momentum": 0.9}
        )
        optimizer = make_optimizer(model, 1e-3, 0.0, 10_000)
        model.train()
        graphdef, state = nnx.split((model, optimizer))
        state = jax.device_put(state, device)
        step = make_train_step(graphdef, batch, AUGMENT, 1, images_per_class=875_000)
        n = 4 * batch
        images = np.asarray(jax.random.normal(jax.random.key(0), (n, size, size)))
        sampler = BatchSampler(images, np.arange(n) % 3, 3, batch, pool=875_000)
        rest = jax.device_put(sampler.batch((0,), 0), device)
        key = jax.random.key(0)
        t0 = time.perf_counter()
        state, loss = step(state, key, *rest)
        jax.block_until_ready(loss)
        first = time.perf_counter() - t0
        state, loss = step(state, jax.random.fold_in(key, 1), *rest)
        jax.block_until_ready(loss)
        t0 = time.perf_counter()
        for i in range(steps):
            state, loss = step(state, jax.random.fold_in(key, i + 2), *rest)
        jax.block_until_ready((state, loss))
        seconds = time.perf_counter() - t0
    stats = device.memory_stats() or {}
    return {
        "batch": batch,
        "dtype": dtype,
        "size": size,
        "width": width,
        "steps": steps,
        "first_step_s": round(first, 2),
        "images_per_s": round(steps * batch / seconds, 1),
        "loss_finite": bool(np.isfinite(float(loss))),
        "peak_mib": round(stats.get("peak_bytes_in_use", 0) / 2**20, 1) or None,
    }


#: Start-up of a network job that loads its programs from the compilation cache (imports ~3 s,
#: cache loads ~1.5 s: measured on CPU jobs, tests/test_runtime.py's log lines).
JOB_START_S = 5.0


def paper_hours(images_per_s: float, first_step_s: float, config: Path | None = None) -> dict:
    """Return the predicted hours of config/paper.yaml's network jobs on one device: every
    classifier and detector's training images at ``images_per_s`` (one job at a time: jobs
    sharing the GPU can only do better), the training step compiled once (``first_step_s``;
    classifiers and detectors share it, the others load it from the cache) and
    :data:`JOB_START_S` per network job."""
    from gynmri.config import load_config, localiser_cfg

    cfg = load_config(config or Path(__file__).resolve().parents[1] / "config/paper.yaml")
    train, models = cfg["train"], len(cfg["sequences"]["use"]) * cfg["folds"]["k"]
    detector = localiser_cfg(train, cfg["detect"])
    # with detect/guide one localiser network per fold; the other sequences carry its tumour
    detectors = cfg["folds"]["k"] if cfg["detect"]["guide"] else models
    classifier_images = models * train["epochs"] * train["images_per_epoch"]
    detector_images = detectors * detector["epochs"] * detector["images_per_epoch"]
    # train, predict, predict_auto and train_detector or carry_detector per model; Grad-CAM
    jobs = 4 * models + 1
    seconds = (classifier_images + detector_images) / images_per_s + first_step_s
    seconds += jobs * JOB_START_S
    return {
        "models": models,
        "detectors": detectors,
        "classifier_images": classifier_images,
        "detector_images": detector_images,
        "network_jobs": jobs,
        "hours": round(seconds / 3600, 2),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes (also the CPU self-test)")
    p.add_argument("--batches", default="32,64,128")
    p.add_argument("--steps", type=int, default=20, help="timed steps per configuration")
    p.add_argument("--budget-s", type=float, default=420.0, help="stop timing after this")
    args = p.parse_args()
    t_start = time.perf_counter()

    devices = jax.devices()
    print(f"jax {jax.__version__}; default backend {jax.default_backend()}; devices {devices}")
    gpus = [d for d in devices if d.platform == "gpu"]
    cpu = jax.devices("cpu")[0]
    gpu = gpus[0] if gpus else None
    if gpu is None:
        print(
            "no GPU: jax sees no CUDA device (install jax[cuda13]==0.10.2 on a GPU machine); "
            "running the CPU self-test" + ("" if args.quick else " at full size")
        )
    else:
        print(f"GPU: {gpu.device_kind}")
    width, size = (0.35, 64) if args.quick else (1.0, 224)
    batches = [8] if args.quick and gpu is None else [int(b) for b in args.batches.split(",")]
    steps = 2 if args.quick else args.steps
    target = gpu or cpu

    result: dict = {
        "jax": jax.__version__,
        "devices": [str(d) for d in devices],
        "gpu": gpu.device_kind if gpu else None,
        "quick": args.quick,
    }
    result["logits"] = check_logits(gpu, cpu, width, size)
    result["training"] = []
    for dtype in ("float32", "bfloat16"):
        for batch in batches:
            if time.perf_counter() - t_start > args.budget_s:
                print(f"time budget {args.budget_s:.0f}s spent: skipping {dtype} batch {batch}")
                continue
            row = time_training(target, width, size, batch, dtype, steps)
            result["training"].append(row)
            print(
                f"train {dtype} batch {batch}: {row['images_per_s']} img/s "
                f"(first step {row['first_step_s']}s)",
                flush=True,
            )

    print(
        f"\n{target.platform} {getattr(target, 'device_kind', '')}: training step "
        f"(gather + augmentation + fwd/bwd + Adam), {size}x{size}, width {width}"
    )
    print(f"{'dtype':9s} {'batch':>5s} {'img/s':>9s} {'first step s':>13s} {'peak MiB':>9s}")
    for r in result["training"]:
        print(
            f"{r['dtype']:9s} {r['batch']:5d} {r['images_per_s']:9.1f} {r['first_step_s']:13.2f} "
            f"{r['peak_mib'] if r['peak_mib'] else '-':>9}"
        )
    bf16 = [r for r in result["training"] if r["dtype"] == "bfloat16"] or result["training"]
    fastest = max(bf16, key=lambda r: r["images_per_s"])
    study = paper_hours(fastest["images_per_s"], fastest["first_step_s"])
    result["paper_study"] = study
    print(
        f"\nconfig/paper.yaml on this {target.platform}: {study['models']} classifiers "
        f"({study['classifier_images']:,} training images) + {study['detectors']} detectors "
        f"({study['detector_images']:,}) at {fastest['images_per_s']} img/s "
        f"({fastest['dtype']}, batch {fastest['batch']}, {size} px, one job at a time), "
        f"+ one compilation ({fastest['first_step_s']} s) + {study['network_jobs']} job "
        f"start-ups of {JOB_START_S:g} s"
        + ("" if gpu else " (no GPU: this CPU's figure, not a GPU's)")
    )
    ok = all(r.get("ok", True) for r in result["logits"]) and all(
        r["loss_finite"] for r in result["training"]
    )
    result["ok"] = ok
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    if os.environ.get("OUT"):
        out = Path(os.environ["OUT"]) / "gpu_check.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
        print(f"wrote {out}")
    print(f"{'OK' if ok else 'FAILED'} in {result['seconds']}s" + ("" if gpu else " (no GPU)"))
    print(f"paper_hours_one_gpu: {study['hours'] if gpu else 'nan'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
