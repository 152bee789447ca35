"""The package as users install it: a wheel carries what the package reads (the config schema),
and no workflow script reaches around the installed package."""

import re
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_wheel_install_validates_a_config(tmp_path):
    dist, site = tmp_path / "dist", tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(ROOT)],
        check=True,
        timeout=600,
    )
    wheel = next(dist.glob("gynmri-*.whl"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        timeout=600,
    )
    # -S: no site initialisation, so the editable install of the checkout (a .pth finder) is not
    # loaded; the wheel's copy comes first, the dependencies from this environment after it.
    env = {"PYTHONPATH": f"{site}:{sysconfig.get_paths()['purelib']}"}
    where = subprocess.run(
        [sys.executable, "-S", "-c", "import gynmri; print(gynmri.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    assert where.stdout.startswith(str(site)), where.stdout
    proc = subprocess.run(
        [
            sys.executable,
            "-S",
            "-m",
            "gynmri.cli",
            "check-config",
            str(ROOT / "config/config.yaml"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "bn_momentum: 0.9" in proc.stdout and "center_on: tumour" in proc.stdout


def test_workflow_scripts_read_params_not_the_config_and_do_not_edit_sys_path():
    scripts = sorted((ROOT / "workflow" / "scripts").glob("*.py"))
    assert len(scripts) >= 18
    for script in scripts:
        text = script.read_text()
        assert "snakemake.config" not in text, script.name
        assert not re.search(r"sys\.path", text), script.name
