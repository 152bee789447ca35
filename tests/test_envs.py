"""The conda environments of the rules: complete for what each rule's script imports, pinned as
pyproject.toml pins, and installing the package itself.

Conda channels are not reachable here, so the environments are not built; instead every module
a rule's script imports (transitively inside the package, lazy imports included) is resolved to
its distribution, which the rule's environment must provide.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
ENVS = ROOT / "workflow" / "envs"


def _name(spec: str) -> tuple[str, str | None]:
    """Return (normalized distribution name, pinned version or None) of a conda/pip spec."""
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:==?\s*([^\s,;]+))?", spec)
    return match.group(1).lower().replace("_", "-"), match.group(2)


def env_specs(path: Path) -> dict[str, str | None]:
    """Return {distribution: version} of an environment file (conda and pip entries)."""
    out = {}
    for dep in yaml.safe_load(path.read_text())["dependencies"]:
        for spec in dep["pip"] if isinstance(dep, dict) else [dep]:
            name, version = _name(spec)
            out[name] = version
    return out


def rule_scripts() -> dict[str, tuple[Path, Path | None]]:
    """Return {rule: (script, conda env or None)} from workflow/rules/*.smk."""
    out = {}
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=\s*rule \w+:)", smk.read_text()):
            rule = re.search(r"^\s*rule (\w+):", block, re.M)
            script = re.search(r'script:\s*\n\s*"([^"]+)"', block)
            if rule and script:
                env = re.search(r'conda:\s*\n\s*"([^"]+)"', block)
                out[rule.group(1)] = (
                    (smk.parent / script.group(1)).resolve(),
                    (smk.parent / env.group(1)).resolve() if env else None,
                )
    return out


def _module_file(name: str) -> Path | None:
    """Return the source file of a gynmri module (package __init__ for packages), or None."""
    path = SRC.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str | None) -> set[str]:
    """Return every module name imported anywhere in a file (function bodies included)."""
    names = set()
    package = module if path.name == "__init__.py" else (module or "").rpartition(".")[0]
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):  # imports for annotations only are not needed at run time
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # submodules
    return names


def third_party_imports(script: Path) -> set[str]:
    """Return the top-level third-party modules a script needs, following gynmri's modules."""
    seen, todo, outside = set(), [(script, None)], set()
    while todo:
        path, module = todo.pop()
        for name in _imports(path, module):
            top = name.split(".")[0]
            if top == "gynmri":
                for part in (name, *[name.rsplit(".", k)[0] for k in range(1, name.count("."))]):
                    found = _module_file(part)
                    if found and part not in seen:
                        seen.add(part)
                        todo.append((found, part))
            elif top and top not in sys.stdlib_module_names and top != "snakemake":
                outside.add(top)
    return outside


def test_every_rule_script_runs_in_a_pinned_environment_that_has_what_it_imports():
    rules = rule_scripts()
    assert len(rules) >= 20, sorted(rules)
    distributions = packages_distributions()
    missing = []
    for rule, (script, env) in rules.items():
        assert script.is_file(), f"rule {rule}: {script} not found"
        assert env is not None and env.is_file(), f"rule {rule}: no conda environment file"
        provided = env_specs(env)
        for module in sorted(third_party_imports(script)):
            dists = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
            if not dists & set(provided):
                missing.append(f"rule {rule} ({env.name}) imports {module} ({', '.join(dists)})")
    assert not missing, "\n".join(missing)


def test_the_import_resolution_sees_lazy_imports_inside_the_package():
    """The check above is only as good as its resolution: the training script needs jax (imported
    inside functions of the package), orbax (inside the checkpoint class) and the config's
    jsonschema."""
    needed = third_party_imports(ROOT / "workflow/scripts/train.py")
    assert {"jax", "flax", "optax", "orbax", "jsonschema", "yaml", "pandas"} <= needed, needed
    assert "highdicom" in third_party_imports(ROOT / "workflow/scripts/ingest.py")


def _pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return dict(_name(spec) for spec in project["dependencies"])


@pytest.mark.parametrize("env", sorted(ENVS.glob("*.yaml")), ids=lambda p: p.name)
def test_environment_pins_agree_with_pyproject_and_install_the_package(env):
    pins = _pyproject_pins()
    specs = env_specs(env)
    assert specs.pop("python") == "3.11"
    specs.pop("pip")
    unknown = sorted(set(specs) - set(pins))
    assert not unknown, f"{env.name}: {unknown} are not dependencies in pyproject.toml"
    wrong = {n: (v, pins[n]) for n, v in specs.items() if v != pins[n]}
    assert not wrong, f"{env.name}: pins differ from pyproject.toml (env, pyproject): {wrong}"
    deploy = env.with_name(env.stem + ".post-deploy.sh")
    assert deploy.is_file(), f"{env.name}: no post-deploy script installing the package"
    text = deploy.read_text()
    assert "pip install --no-deps" in text and "GYNMRI_SOURCE" in text


def test_gpu_extras_pin_the_cuda_plugin_to_the_installed_jax():
    """pip install -e '.[cuda]' must give the CUDA plugin of the very jax version the package
    pins (a plugin of another version does not load, and jax falls back to the CPU)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    jax_version = _pyproject_pins()["jax"]
    extras = project["optional-dependencies"]
    assert extras["cuda"] == [f"jax[cuda12]=={jax_version}"]
    assert extras["cuda13"] == [f"jax[cuda13]=={jax_version}"]
