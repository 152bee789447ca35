"""Training-step throughput: our flax.nnx MobileNetV2 against the same network in PyTorch (CPU).

    pip install -e '.[bench]'          # torch==2.13.0 (CPU wheel; see pyproject's `bench` extra)
    python bench/train.py              # 128x128, batch 32, width 1.0, 1 thread each
    python bench/train.py --threads 2 --steps 10 --variants shifted,grouped

Both frameworks run a full training step (forward, cross-entropy, backward, Adam update, BatchNorm
statistics) on a batch of 3-channel images, limited to the same number of threads. For jax we
time the model step alone (a fixed batch, like PyTorch's) AND fit's full step (class-balanced
gather + on-the-fly augmentation inside the jitted step). PyTorch's MobileNetV2 is written out
below (torchvision does not import beside the torch 2.13.0 CPU wheel): Keras' architecture,
BatchNorm eps 1e-3, no conv biases, grouped depthwise convs.

The last line is ``ratio: <nnx images/s / PyTorch images/s>`` for the best nnx model-step variant.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=6, help="timed steps per variant")
    p.add_argument("--variants", default="shifted,grouped", help="nnx depthwise modes to time")
    p.add_argument("--dtype", default="float32", help="nnx compute dtype(s), comma-separated")
    p.add_argument("--no-full", action="store_true", help="skip fit's full step (augmentation)")
    p.add_argument("--no-torch", action="store_true")
    return p.parse_args()


ARGS = _args() if __name__ == "__main__" else None
if ARGS is not None:
    # XLA reads its thread settings at import time.
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + f" --xla_cpu_multi_thread_eigen={'true' if ARGS.threads > 1 else 'false'}"
        + f" intra_op_parallelism_threads={ARGS.threads}"
    ).strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


def torch_mobilenet_v2(num_classes: int, width: float = 1.0):  # noqa: ANN201
    """Return a PyTorch MobileNetV2 with Keras' layer structure (same parameter count)."""
    import torch
    from torch import nn

    from gynmri.training.model import BLOCK_SPECS, _make_divisible

    def conv_bn(cin: int, cout: int, k: int, stride: int, groups: int = 1, act: bool = True):
        layers = [
            nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout, eps=1e-3, momentum=0.001),
        ]
        if act:
            layers.append(nn.ReLU6(inplace=True))
        return nn.Sequential(*layers)

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int, t: int):
            super().__init__()
            hidden = cin * t
            layers = [conv_bn(cin, hidden, 1, 1)] if t != 1 else []
            layers += [
                conv_bn(hidden, hidden, 3, stride, groups=hidden),
                conv_bn(hidden, cout, 1, 1, act=False),
            ]
            self.body = nn.Sequential(*layers)
            self.residual = stride == 1 and cin == cout

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.body(x)
            return x + y if self.residual else y

    first = _make_divisible(32 * width, 8)
    layers = [conv_bn(3, first, 3, 2)]
    cin = first
    for t, c, n, s in BLOCK_SPECS:
        cout = _make_divisible(int(c * width), 8)
        for i in range(n):
            layers.append(Block(cin, cout, s if i == 0 else 1, t))
            cin = cout
    last = _make_divisible(1280 * width, 8) if width > 1.0 else 1280
    layers += [conv_bn(cin, last, 1, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers, nn.Linear(last, num_classes))


def bench_torch(args: argparse.Namespace, channels_last: bool) -> float:
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torch_mobilenet_v2(3, args.width)
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, 3, (args.batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    return args.steps * args.batch / (time.perf_counter() - t0)


def bench_nnx_model_step(
    args: argparse.Namespace, depthwise: str, dtype: str
) -> tuple[float, float]:
    """Return (images/s, first-step seconds) of a jitted model step on a fixed batch."""
    from functools import partial

    import jax
    import optax
    from flax import nnx

    from gynmri.training.model import build_model
    from gynmri.training.step import make_optimizer

    model = build_model(
        3, {"width": args.width, "stem": "replicate", "depthwise": depthwise, "dtype": dtype}
    )
    optimizer = make_optimizer(model, 1e-3, 0.0, 1000)
    model.train()
    graphdef, state = nnx.split((model, optimizer))

    @partial(jax.jit, donate_argnums=(0,))
    def step(state, x, y):  # noqa: ANN001, ANN202
        model, optimizer = nnx.merge(graphdef, state)

        def loss_fn(m):  # noqa: ANN001, ANN202
            return optax.softmax_cross_entropy_with_integer_labels(m(x), y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer)), loss

    x = jax.random.normal(jax.random.key(0), (args.batch, args.size, args.size, 3))
    y = jax.random.randint(jax.random.key(1), (args.batch,), 0, 3)
    t0 = time.perf_counter()
    state, loss = step(state, x, y)
    jax.block_until_ready(loss)
    first = time.perf_counter() - t0
    state, loss = step(state, x, y)
    jax.block_until_ready(loss)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        state, loss = step(state, x, y)
    jax.block_until_ready((state, loss))
    return args.steps * args.batch / (time.perf_counter() - t0), first


def bench_nnx_full_step(args: argparse.Namespace, depthwise: str, dtype: str) -> float:
    """Return images/s of fit's own jitted step (class-balanced gather + augmentation)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from gynmri.training.model import build_model
    from gynmri.training.sampler import BatchSampler
    from gynmri.training.step import make_optimizer, make_train_step

    aug = {
        "rotate_deg": 12,
        "flip_lr": True,
        "scale": [0.9, 1.1],
        "translate_frac": 0.05,
        "contrast": 0.1,
        "intensity": 0.1,
    }
    model = build_model(
        3, {"width": args.width, "stem": "replicate", "depthwise": depthwise, "dtype": dtype}
    )
    optimizer = make_optimizer(model, 1e-3, 0.0, 1000)
    model.train()
    graphdef, state = nnx.split((model, optimizer))
    step = make_train_step(graphdef, args.batch, aug, 3, images_per_class=875_000)
    n = 4 * args.batch
    images = np.asarray(jax.random.normal(jax.random.key(0), (n, args.size, args.size)))
    sampler = BatchSampler(images, np.arange(n) % 3, 3, args.batch, pool=875_000)
    rest = tuple(jnp.asarray(a) for a in sampler.batch((0,), 0))
    key = jax.random.key(0)
    for i in range(2):
        state, loss = step(state, jax.random.fold_in(key, i), *rest)
    jax.block_until_ready(loss)
    t0 = time.perf_counter()
    for i in range(args.steps):
        state, loss = step(state, jax.random.fold_in(key, i + 2), *rest)
    jax.block_until_ready((state, loss))
    return args.steps * args.batch / (time.perf_counter() - t0)


def main(args: argparse.Namespace) -> None:
    import jax

    print(
        f"MobileNetV2 width {args.width}, {args.size}x{args.size}x3, batch {args.batch}, "
        f"{args.threads} thread(s), {args.steps} timed steps; jax {jax.__version__} "
        f"{jax.devices()[0].platform}; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"
    )
    results: dict[str, float] = {}
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            sys.exit("PyTorch is not installed: pip install -e '.[bench]' (torch==2.13.0, CPU)")
        for cl in (False, True):
            name = f"pytorch {torch.__version__} {'channels_last' if cl else 'NCHW'}"
            results[name] = bench_torch(args, cl)
            print(f"{name:44s} {results[name]:8.1f} img/s", flush=True)
    best_nnx = 0.0
    for dtype in args.dtype.split(","):
        for dw in args.variants.split(","):
            ips, first = bench_nnx_model_step(args, dw, dtype)
            best_nnx = max(best_nnx, ips)
            name = f"nnx model step {dw} {dtype}"
            results[name] = ips
            print(f"{name:44s} {ips:8.1f} img/s (first step {first:.1f}s)", flush=True)
            if not args.no_full:
                name = f"nnx full step (gather+augment) {dw} {dtype}"
                results[name] = bench_nnx_full_step(args, dw, dtype)
                print(f"{name:44s} {results[name]:8.1f} img/s", flush=True)
    torch_best = max(
        (v for k, v in results.items() if k.startswith("pytorch")), default=float("nan")
    )
    print(f"best nnx model step {best_nnx:.1f} img/s, best PyTorch {torch_best:.1f} img/s")
    print(f"ratio: {best_nnx / torch_best:.3f}")


if __name__ == "__main__":
    main(ARGS)
