"""MobileNetV2 in flax.nnx, layer for layer the function of ``keras.applications.MobileNetV2``.

Keras conventions kept on purpose, so that results can be compared with the Keras literature:
``_make_divisible`` channel rounding, BatchNorm epsilon 1e-3 / momentum 0.999, no conv biases,
glorot-uniform kernels, asymmetric zero padding (``correct_pad``) before stride-2 depthwise convs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from gynmri.config import section

#: (expansion t, output channels c, repeats n, first stride s), as in the paper and Keras.
BLOCK_SPECS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)

DEPTHWISE_MODES = ("shifted", "grouped")
#: Compute dtypes; parameters and BatchNorm statistics stay float32 ("master weights") in both.
DTYPES = ("float32", "bfloat16")


def compute_dtype(dtype: Any) -> Any:
    """Return the jnp dtype for a model_cfg ``dtype`` name (None = float32)."""
    name = "float32" if dtype is None else jnp.dtype(dtype).name
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return jnp.dtype(name)


def glorot_uniform(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
    """Return a Keras glorot_uniform draw of `shape`, seeded by the jax `key`.

    Eagerly, the draw is made with numpy from the key's bits: an eager jax draw compiles one XLA
    program per weight shape (~0.1 s each, ~9 s to build a width-1.0 net on 2 cores). Under a
    trace (jit / eval_shape) the key has no value, so jax draws it.
    """
    receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
    fan_in = receptive * (shape[-2] if len(shape) > 1 else shape[-1])
    fan_out = receptive * shape[-1]
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    if isinstance(key, jax.core.Tracer):
        return jax.random.uniform(key, shape, dtype, -limit, limit)
    seed = np.asarray(jax.random.key_data(key)).ravel().astype(np.uint32)
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.uniform(-limit, limit, size=shape).astype(dtype))


# Keras' defaults; flax's would be lecun_normal and BN eps 1e-5 / momentum 0.99.
_KERNEL_INIT = glorot_uniform
_BN_EPS = 1e-3


def _make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Return v rounded to a multiple of divisor, never more than 10% below v (Keras rule)."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def correct_pad(size: tuple[int, int], kernel_size: int = 3) -> tuple[tuple[int, int], ...]:
    """Return Keras' ((top, bottom), (left, right)) zero padding before a stride-2 VALID conv."""
    adjust = (1 - size[0] % 2, 1 - size[1] % 2)
    correct = (kernel_size // 2, kernel_size // 2)
    return ((correct[0] - adjust[0], correct[0]), (correct[1] - adjust[1], correct[1]))


class PointwiseConv(nnx.Conv):
    """A 1x1 convolution computed as a matrix product over the channels.

    Same kernel (1, 1, Cin, Cout) and result as ``nnx.Conv`` (so weights are interchangeable),
    but XLA's CPU convolution of a 1x1 kernel, with its gradient, is about 3x slower than the
    equivalent dot, and 1x1 convolutions are most of MobileNetV2's arithmetic.
    """

    def __call__(self, inputs: jax.Array) -> jax.Array:
        dtype = self.dtype or jnp.result_type(inputs, self.kernel[...])
        kernel = jnp.asarray(self.kernel[...], dtype)[0, 0]
        return jnp.einsum("...c,cd->...d", jnp.asarray(inputs, dtype), kernel)


def _conv1x1(cin: int, cout: int, rngs: nnx.Rngs, dtype: Any = jnp.float32) -> nnx.Conv:
    return PointwiseConv(
        cin,
        cout,
        (1, 1),
        use_bias=False,
        kernel_init=_KERNEL_INIT,
        dtype=dtype,
        param_dtype=jnp.float32,
        rngs=rngs,
    )


def _promote_float32(args: tuple, dtype: Any = None) -> tuple:
    # BatchNorm normalizes in float32 whatever the compute dtype (as Keras' mixed precision):
    # bfloat16 running statistics and (x - mean) lose too much over 50 layers.
    return tuple(None if a is None else jnp.asarray(a, jnp.float32) for a in args)


def _bn(c: int, momentum: float, rngs: nnx.Rngs, dtype: Any = jnp.float32) -> nnx.BatchNorm:
    # Statistics are computed and kept in float32; only the output is in the compute dtype.
    return nnx.BatchNorm(
        c,
        epsilon=_BN_EPS,
        momentum=momentum,
        dtype=dtype,
        param_dtype=jnp.float32,
        promote_dtype=_promote_float32,
        rngs=rngs,
    )


def relu6(x: jax.Array) -> jax.Array:
    """Return min(max(x, 0), 6)."""
    return jnp.clip(x, 0.0, 6.0)


class DepthwiseConv3x3(nnx.Module):
    """3x3 depthwise conv, Keras padding; 'grouped' (XLA grouped conv) or 'shifted' (9 taps).

    Both modes own the same ``nnx.Conv`` (kernel shape (3, 3, 1, C)), so weights are
    interchangeable; 'shifted' only reads that kernel, because XLA's CPU grouped convolution
    (and its gradient) is several times slower than nine fused multiply-adds.
    """

    def __init__(
        self,
        channels: int,
        stride: int,
        *,
        depthwise: str,
        dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ):
        if depthwise not in DEPTHWISE_MODES:
            raise ValueError(f"depthwise must be one of {DEPTHWISE_MODES}, got {depthwise!r}")
        self.stride = stride
        self.depthwise = depthwise
        self.conv = nnx.Conv(
            channels,
            channels,
            (3, 3),
            strides=stride,
            padding="VALID",  # padding is applied explicitly in __call__, identical for both modes
            feature_group_count=channels,
            use_bias=False,
            kernel_init=_KERNEL_INIT,
            dtype=dtype,
            param_dtype=jnp.float32,
            rngs=rngs,
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        h, w = x.shape[1], x.shape[2]
        if self.stride == 2:
            pad = correct_pad((h, w), 3)
        else:
            pad = ((1, 1), (1, 1))  # 'same' for a 3x3 stride-1 kernel
        x = jnp.pad(x, ((0, 0), pad[0], pad[1], (0, 0)))
        if self.depthwise == "grouped":
            return self.conv(x)
        s = self.stride
        hp, wp = x.shape[1], x.shape[2]
        ho, wo = (hp - 3) // s + 1, (wp - 3) // s + 1
        kernel = self.conv.kernel[...].astype(self.conv.dtype or x.dtype)  # (3, 3, 1, C)
        x = x.astype(kernel.dtype)
        out = None
        for di in range(3):
            for dj in range(3):
                tap = jax.lax.slice(
                    x,
                    (0, di, dj, 0),
                    (x.shape[0], di + s * (ho - 1) + 1, dj + s * (wo - 1) + 1, x.shape[3]),
                    (1, s, s, 1),
                )
                term = tap * kernel[di, dj, 0]
                out = term if out is None else out + term
        return out


class InvertedResidual(nnx.Module):
    """Keras ``_inverted_res_block``: expand 1x1, depthwise 3x3, linear project 1x1, add."""

    def __init__(
        self,
        in_channels: int,
        filters: int,
        *,
        expansion: int,
        stride: int,
        alpha: float,
        expand: bool,
        depthwise: str,
        bn_momentum: float,
        dtype: Any,
        rngs: nnx.Rngs,
    ):
        # Keras truncates with int() before rounding; kept so odd widths match exactly.
        out_channels = _make_divisible(int(filters * alpha), 8)
        hidden = expansion * in_channels
        self.expand = expand
        if expand:
            self.expand_conv = _conv1x1(in_channels, hidden, rngs, dtype)
            self.expand_bn = _bn(hidden, bn_momentum, rngs, dtype)
        self.depthwise = DepthwiseConv3x3(
            hidden, stride, depthwise=depthwise, dtype=dtype, rngs=rngs
        )
        self.depthwise_bn = _bn(hidden, bn_momentum, rngs, dtype)
        self.project_conv = _conv1x1(hidden, out_channels, rngs, dtype)
        self.project_bn = _bn(out_channels, bn_momentum, rngs, dtype)
        self.residual = in_channels == out_channels and stride == 1
        self.out_channels = out_channels

    def __call__(self, x: jax.Array) -> jax.Array:
        y = x
        if self.expand:
            y = relu6(self.expand_bn(self.expand_conv(y)))
        y = relu6(self.depthwise_bn(self.depthwise(y)))
        y = self.project_bn(self.project_conv(y))  # linear bottleneck: no activation
        return x + y if self.residual else y


class MobileNetV2(nnx.Module):
    """MobileNetV2 classifier; NHWC float images in, float32 logits (N, num_classes) out.

    ``dtype`` is the compute dtype ("float32" or "bfloat16"): with bfloat16 the convolutions,
    BatchNorm outputs and activations are bfloat16 while every parameter and BatchNorm
    statistic stays float32 (mixed precision with float32 master weights; the optimizer
    updates float32). The classifier runs in float32.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        width: float,
        in_channels: int,
        depthwise: str,
        bn_momentum: float,
        dtype: Any,
        rngs: nnx.Rngs,
    ):
        # bn_momentum 0.999 is Keras'; its running statistics need thousands of steps to settle,
        # so short CPU runs may want ~0.9 (eval-mode outputs are otherwise near-constant).
        self.num_classes = num_classes
        self.width = width
        self.in_channels = in_channels
        self.bn_momentum = bn_momentum
        cdtype = compute_dtype(dtype)
        self.dtype = cdtype.name
        first = _make_divisible(32 * width, 8)
        self.stem_conv = nnx.Conv(
            in_channels,
            first,
            (3, 3),
            strides=2,
            padding="VALID",
            use_bias=False,
            kernel_init=_KERNEL_INIT,
            dtype=cdtype,
            param_dtype=jnp.float32,
            rngs=rngs,
        )
        self.stem_bn = _bn(first, bn_momentum, rngs, cdtype)
        blocks = []
        cin = first
        for t, c, n, s in BLOCK_SPECS:
            for i in range(n):
                block = InvertedResidual(
                    cin,
                    c,
                    expansion=t,
                    stride=s if i == 0 else 1,
                    alpha=width,
                    expand=len(blocks) > 0,
                    depthwise=depthwise,
                    bn_momentum=bn_momentum,
                    dtype=cdtype,
                    rngs=rngs,
                )
                blocks.append(block)
                cin = block.out_channels
        self.blocks = nnx.List(blocks)
        # Keras widens the head only for alpha > 1; narrow nets keep 1280 features.
        last = _make_divisible(1280 * width, 8) if width > 1.0 else 1280
        self.head_conv = _conv1x1(cin, last, rngs, cdtype)
        self.head_bn = _bn(last, bn_momentum, rngs, cdtype)
        self.classifier = nnx.Linear(last, num_classes, kernel_init=_KERNEL_INIT, rngs=rngs)

    def features(self, x: jax.Array) -> jax.Array:
        """Return the last conv block's activations (N, h, w, C) in the compute dtype.

        h, w = ceil(H / 32), ceil(W / 32). This is the layer Grad-CAM explains (gynmri.inference.explain).
        """
        # Keras 'same' for stride 2 equals correct_pad: (0, 1) on even sides, (1, 1) on odd ones.
        pad = correct_pad((x.shape[1], x.shape[2]), 3)
        x = jnp.pad(x.astype(self.dtype), ((0, 0), pad[0], pad[1], (0, 0)))
        x = relu6(self.stem_bn(self.stem_conv(x)))
        for block in self.blocks:
            x = block(x)
        return relu6(self.head_bn(self.head_conv(x)))

    def head(self, f: jax.Array) -> jax.Array:
        """Return float32 logits (N, num_classes) from ``features``' output (global pool + dense)."""
        f = jnp.mean(f.astype(jnp.float32), axis=(1, 2))  # pooled and classified in float32
        return self.classifier(f)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.features(x))


def count_parameters(model: nnx.Module, include_batch_stats: bool = True) -> int:
    """Return the number of scalars in the model's params (plus BN running stats, like Keras)."""
    filters = (nnx.Param, nnx.BatchStat) if include_batch_stats else (nnx.Param,)
    state = nnx.state(model, nnx.Any(*filters))
    return int(sum(x.size for x in jax.tree_util.tree_leaves(state)))


def build_model(n_classes: int, model_cfg: Mapping[str, Any], seed: int = 0) -> MobileNetV2:
    """Return a freshly initialized MobileNetV2 for the config section ``model``.

    Keys the caller leaves out take the schema's defaults. ``dtype`` is the compute dtype:
    float32 or bfloat16 (mixed precision; parameters, BatchNorm statistics and optimizer state
    stay float32). ``stem``: 'replicate' copies the slice to 3 channels, 'single' uses one.
    """
    cfg = section("model", model_cfg)
    return MobileNetV2(
        n_classes,
        width=float(cfg["width"]),
        in_channels=3 if cfg["stem"] == "replicate" else 1,
        depthwise=cfg["depthwise"],
        bn_momentum=float(cfg["bn_momentum"]),
        dtype=cfg["dtype"],
        rngs=nnx.Rngs(seed),
    )


def to_nhwc(images: jax.Array, in_channels: int) -> jax.Array:
    """Return (N, H, W) slices as (N, H, W, in_channels), repeating the slice for a 3-channel stem."""
    x = images[..., None]
    return jnp.broadcast_to(x, (*images.shape, in_channels)) if in_channels > 1 else x
