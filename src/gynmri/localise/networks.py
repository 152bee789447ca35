"""Tumour segmentation networks in flax.nnx: a small U-Net and a MobileNetV2-encoder U-Net.

Both map wide slices (N, H, W) to per-pixel tumour logits (N, H, W), plus coarser logits for deep
supervision (nnU-Net: the decoder's lower resolutions are trained on downsampled masks too).
Sizes that are not a multiple of the network's total stride are padded with the slice's minimum
(background after normalization) and cropped back.

- ``unet``: nnU-Net's plain 2-D U-Net at a CPU size: per level two 3x3 conv + BatchNorm + ReLU,
  max-pool down, nearest-neighbour upsampling + 3x3 conv up, skip concatenation; optionally (``stem_stride`` 2) its
  first level at half resolution with a full-resolution refinement from the slice.
- ``mobile``: the classifier's MobileNetV2 blocks as encoder (features at strides 2, 4, 8, 16)
  and a light decoder (1x1 projections, upsampling, one 3x3 conv per level), DeepLabV3+-like.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from gynmri.training.model import (
    BLOCK_SPECS,
    InvertedResidual,
    _make_divisible,
    correct_pad,
    relu6,
)

NETWORKS = ("unet", "mobile")


def lecun_normal(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
    """Return flax's default kernel draw (variance 1 / fan_in, normal truncated at 2 standard
    deviations), made eagerly with numpy from the key's bits as glorot_uniform does: jax's own
    draw compiles one XLA program per kernel shape (~20 s of a first localiser job on 2 cores).
    He's variance (2 / fan_in, nnU-Net's; tried with transposed 2x2 convs up) fitted the demo's
    training patients closer but
    selected DWI slices worse (sensitivity 0.79 against 0.86)."""
    if isinstance(key, jax.core.Tracer):
        return nnx.initializers.lecun_normal()(key, shape, dtype)
    fan_in = (math.prod(shape[:-2]) if len(shape) > 2 else 1) * shape[-2]
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().astype(np.uint32))
    # scipy's truncnorm(-2, 2) has standard deviation 0.8796: flax divides it out likewise
    draw = rng.standard_normal(size=shape)
    while (bad := np.abs(draw) > 2).any():
        draw[bad] = rng.standard_normal(size=int(bad.sum()))
    return jnp.asarray((draw / 0.87962566103423978 * math.sqrt(1.0 / fan_in)).astype(dtype))


_INIT = {"kernel_init": lecun_normal}


def _conv_bn(
    cin: int, cout: int, rngs: nnx.Rngs, momentum: float
) -> tuple[nnx.Conv, nnx.BatchNorm]:
    conv = nnx.Conv(cin, cout, (3, 3), padding="SAME", use_bias=False, rngs=rngs, **_INIT)
    return conv, nnx.BatchNorm(cout, momentum=momentum, epsilon=1e-3, rngs=rngs)


class ConvBlock(nnx.Module):
    """Two 3x3 conv + BatchNorm + ReLU (nnU-Net's stage)."""

    def __init__(self, cin: int, cout: int, momentum: float, rngs: nnx.Rngs):
        self.conv1, self.bn1 = _conv_bn(cin, cout, rngs, momentum)
        self.conv2, self.bn2 = _conv_bn(cout, cout, rngs, momentum)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jax.nn.relu(self.bn1(self.conv1(x)))
        return jax.nn.relu(self.bn2(self.conv2(x)))


def _up(x: jax.Array) -> jax.Array:
    """Return x (N, h, w, C) upsampled x2 (nearest neighbour: cheap, no checkerboard)."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _pool(x: jax.Array) -> jax.Array:
    return nnx.max_pool(x, (2, 2), strides=(2, 2))


def _head(cin: int, rngs: nnx.Rngs) -> nnx.Conv:
    return nnx.Conv(cin, 1, (1, 1), rngs=rngs, **_INIT)


class UNet(nnx.Module):
    """Plain 2-D U-Net: ``levels`` poolings, ``base`` channels at the first level, doubled per
    level (capped at 8 x base); nearest-neighbour upsampling and a 3x3 conv up.

    ``stem_stride`` 2: the first level works at half resolution (a strided 3x3 conv in), and the
    full-resolution output adds a 3x3 conv of the slice itself to the upsampled decoder features
    before the head: a quarter of the arithmetic of the full-resolution first level, which holds
    most of a U-Net's cost once channels double per level.
    """

    def __init__(
        self, *, base: int, levels: int, momentum: float, rngs: nnx.Rngs, stem_stride: int = 1
    ):
        if stem_stride not in (1, 2):
            raise ValueError(f"unet stem_stride must be 1 or 2, got {stem_stride}")
        self.levels, self.stem_stride = levels, stem_stride
        widths = [min(base * 2**k, base * 8) for k in range(levels + 1)]
        if stem_stride == 2:
            self.stem_conv = nnx.Conv(
                1, base, (3, 3), strides=2, padding="SAME", use_bias=False, rngs=rngs, **_INIT
            )
            self.stem_bn = nnx.BatchNorm(base, momentum=momentum, epsilon=1e-3, rngs=rngs)
            self.fine_conv, self.fine_bn = _conv_bn(1, base, rngs, momentum)
        first_in = base if stem_stride == 2 else 1
        self.down = nnx.List(
            [
                ConvBlock(first_in if k == 0 else widths[k - 1], widths[k], momentum, rngs)
                for k in range(levels + 1)
            ]
        )
        self.up_conv = nnx.List(
            [
                nnx.Conv(widths[k + 1], widths[k], (3, 3), padding="SAME", rngs=rngs, **_INIT)
                for k in range(levels)
            ]
        )
        self.up = nnx.List(
            [ConvBlock(2 * widths[k], widths[k], momentum, rngs) for k in range(levels)]
        )
        self.heads = nnx.List([_head(widths[k], rngs) for k in range(min(3, levels))])
        if stem_stride == 2:
            self.fine_head = _head(base, rngs)

    @property
    def stride(self) -> int:
        """The factor a slice's size must be a multiple of."""
        return self.stem_stride * 2**self.levels

    def __call__(self, x: jax.Array) -> list[jax.Array]:
        image = x
        if self.stem_stride == 2:
            x = jax.nn.relu(self.stem_bn(self.stem_conv(x)))
        skips = []
        for k, block in enumerate(self.down):
            x = block(x if k == 0 else _pool(x))
            skips.append(x)
        outputs = []
        x = skips[-1]
        for k in reversed(range(self.levels)):
            x = self.up[k](jnp.concatenate([skips[k], self.up_conv[k](_up(x))], axis=-1))
            if k < len(self.heads):
                outputs.append(self.heads[k](x)[..., 0])
        outputs = outputs[::-1]  # finest first
        if self.stem_stride == 2:
            fine = jax.nn.relu(_up(x) + self.fine_bn(self.fine_conv(image)))
            outputs = [self.fine_head(fine)[..., 0], *outputs[:2]]
        return outputs


class MobileUNet(nnx.Module):
    """MobileNetV2 blocks (width ``width``) as encoder to stride 16, light U-Net decoder."""

    # stride of the features after each block group of BLOCK_SPECS: 2, 4, 8, 16, 16 (t, c, n, s)
    _GROUPS = 5

    def __init__(self, *, width: float, decoder: int, momentum: float, rngs: nnx.Rngs):
        first = _make_divisible(32 * width, 8)
        self.stem_conv = nnx.Conv(
            1, first, (3, 3), strides=2, padding="VALID", use_bias=False, rngs=rngs, **_INIT
        )
        self.stem_bn = nnx.BatchNorm(first, momentum=momentum, epsilon=1e-3, rngs=rngs)
        blocks, taps, cin = [], [], first
        for t, c, n, s in BLOCK_SPECS[: self._GROUPS]:
            for i in range(n):
                block = InvertedResidual(
                    cin, c, expansion=t, stride=s if i == 0 else 1, alpha=width,
                    expand=len(blocks) > 0, depthwise="shifted", bn_momentum=momentum,
                    dtype=jnp.float32, rngs=rngs,
                )  # fmt: skip
                blocks.append(block)
                cin = block.out_channels
            taps.append((len(blocks) - 1, cin))
        self.blocks = nnx.List(blocks)
        # skips at strides 2, 4, 8; the deepest features (stride 16: groups 4-5) start the decoder
        self.taps = tuple(i for i, _ in taps[:3]) + (taps[4][0],)
        channels = [c for _, c in taps[:3]] + [taps[4][1]]
        self.project = nnx.List(
            [nnx.Conv(c, decoder, (1, 1), rngs=rngs, **_INIT) for c in channels]
        )
        self.fuse = nnx.List([ConvBlock(2 * decoder, decoder, momentum, rngs) for _ in range(3)])
        self.heads = nnx.List([_head(decoder, rngs) for _ in range(3)])

    def __call__(self, x: jax.Array) -> list[jax.Array]:
        pad = correct_pad((x.shape[1], x.shape[2]), 3)
        x = jnp.pad(x, ((0, 0), pad[0], pad[1], (0, 0)))
        x = relu6(self.stem_bn(self.stem_conv(x)))
        features = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.taps:
                features.append(x)
        x = self.project[3](features[3])
        outputs = []
        for k in (2, 1, 0):  # strides 8, 4, 2
            x = self.fuse[k](jnp.concatenate([self.project[k](features[k]), _up(x)], axis=-1))
            outputs.append(self.heads[k](x)[..., 0])
        full = jnp.repeat(jnp.repeat(outputs[-1], 2, axis=1), 2, axis=2)  # stride 2 -> 1
        return [full, outputs[-1], outputs[-2]]


def total_stride(net: nnx.Module) -> int:
    """Return the factor a slice's size must be a multiple of for ``net``."""
    return net.stride if isinstance(net, UNet) else 16


def build_network(cfg: Mapping[str, Any], seed: int = 0) -> nnx.Module:
    """Return a fresh segmentation network for config ``localise`` (network, base/levels or
    width/decoder, bn_momentum)."""
    rngs = nnx.Rngs(seed)
    momentum = float(cfg.get("bn_momentum", 0.9))
    if cfg["network"] == "unet":
        return UNet(
            base=int(cfg["base"]), levels=int(cfg["levels"]), momentum=momentum, rngs=rngs,
            stem_stride=int(cfg.get("stem_stride", 1)),
        )  # fmt: skip
    if cfg["network"] == "mobile":
        return MobileUNet(
            width=float(cfg["width"]), decoder=int(cfg["decoder"]), momentum=momentum, rngs=rngs
        )
    raise ValueError(f"localise network must be one of {NETWORKS}, got {cfg['network']!r}")


def segment_logits(net: nnx.Module, images: jax.Array) -> list[jax.Array]:
    """Return the network's logits for slices (N, H, W): full resolution first, then the deep
    supervision outputs; the slices are padded to the network's stride and cropped back."""
    n, h, w = images.shape
    stride = total_stride(net)
    ph, pw = (-h) % stride, (-w) % stride
    fill = jnp.min(images)
    x = jnp.pad(images, ((0, 0), (0, ph), (0, pw)), constant_values=fill)[..., None]
    outputs = net(x)
    return [
        o[:, : -(-h // (x.shape[1] // o.shape[1])), : -(-w // (x.shape[2] // o.shape[2]))]
        for o in outputs
    ]
