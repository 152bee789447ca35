"""Programs traced once for all jobs: a jitted function is exported (``jax.export``) into the
compilation cache by the first job that needs it, and later jobs load it instead of tracing it.

Tracing the MobileNetV2 training step through flax.nnx costs 3-4 s on an idle core (up to 10 s
when two jobs share the machine), in every job, before XLA's persistent cache can even be asked
for the compiled program; loading the exported program costs milliseconds. The key of an
exported program names everything its trace depends on: the model's structure, the arguments'
shapes and dtypes, the versions of jax, jaxlib, flax and optax, the platform, and a hash of this
package's source (a changed module traces again). Without a persistent cache (library use), the
function is simply jitted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import jax

from gynmri.training.runtime import compiling_once

log = logging.getLogger(__name__)

#: Sub-folder of the compilation cache that holds the exported (traced) programs.
EXPORTED = "exported"
_PACKAGES = ("jax", "jaxlib", "flax", "optax")


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Return a sha256 of this package's Python sources and of the versions it traces with."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]  # the gynmri package
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    for name in _PACKAGES:
        digest.update(f"{name}=={metadata.version(name)}".encode())
    return digest.hexdigest()


def describe_structure(graphdef: Any) -> str:
    """Return ``graphdef``'s description without the memory addresses of its static functions
    (stable from one process to the next)."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(graphdef))


def _shapes(args: Sequence[Any]) -> Any:
    """Return ``args`` as shapes and dtypes only (what a trace sees)."""
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(jax.numpy.shape(a), _dtype(a)), args)


def on_device(tree: Any) -> list[jax.Array]:
    """Return the leaves of ``tree`` committed to the default device: a program called with
    committed state compiles once (uncommitted first arguments would make a second program)."""
    return jax.device_put(jax.tree.leaves(tree), jax.devices()[0])


def _dtype(a: Any) -> Any:
    return a.dtype if hasattr(a, "dtype") else jax.numpy.asarray(a).dtype


class SharedProgram:
    """``fn`` jitted (``donate_argnums`` donated), traced at most once across all jobs that
    share the compilation cache.

    ``fn`` takes and returns pytrees of arrays only (flat lists of leaves, keys as raw key data);
    ``description`` names what its trace depends on beyond the arguments' shapes (the model's
    structure, static settings). The first call exports ``fn`` (or loads its export) while
    holding the program's lock, so that jobs starting together trace and compile it once.
    """

    def __init__(
        self, fn: Callable[..., Any], description: str, donate_argnums: tuple[int, ...] = ()
    ):
        self.fn, self.description, self.donate_argnums = fn, description, donate_argnums
        self._call: Callable[..., Any] | None = None

    def __call__(self, *args: Any) -> Any:
        if self._call is None:
            cache = jax.config.jax_compilation_cache_dir
            if not cache:  # no persistent cache: nothing to share with later jobs
                self._call = jax.jit(self.fn, donate_argnums=self.donate_argnums)
                return self._call(*args)
            key = self.key(args)
            with compiling_once(key):
                self._call = self._load_or_export(Path(cache) / EXPORTED / f"{key}.jaxexport", args)
                return self._call(*args)  # compiles, or loads from the persistent cache
        return self._call(*args)

    def key(self, args: Sequence[Any]) -> str:
        """Return the name of this program's export for ``args``."""
        text = "\n".join(
            (
                self.fn.__name__,
                self.description,
                str(_shapes(args)),
                jax.default_backend(),
                code_fingerprint(),
            )
        )
        return f"{self.fn.__name__}-{hashlib.sha256(text.encode()).hexdigest()[:32]}"

    def _load_or_export(self, path: Path, args: Sequence[Any]) -> Callable[..., Any]:
        exported = None
        if path.exists():
            try:
                exported = jax.export.deserialize(bytearray(path.read_bytes()))
                log.info("XLA: %s: traced program loaded (%s)", self.fn.__name__, path.name)
            except Exception as err:  # noqa: BLE001 (a truncated or foreign file: trace again)
                log.warning(
                    "XLA: %s: unreadable export %s (%s); tracing again", self.fn.__name__, path, err
                )
        if exported is None:
            exported = jax.export.export(jax.jit(self.fn))(*_shapes(args))
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.part")
            partial.write_bytes(exported.serialize())
            os.replace(partial, path)  # readers never see half a file
            log.info(
                "XLA: %s: traced and exported for later jobs (%s)", self.fn.__name__, path.name
            )

        def call(*args: Any) -> Any:
            return exported.call(*args)

        call.__name__ = self.fn.__name__  # the compilation log names the program
        return jax.jit(call, donate_argnums=self.donate_argnums)
