"""Where the deployment files are, and the tools that check them (each test skips, naming why,
where its tool is missing)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("small", "ha")


def kustomize(overlay: str) -> list[dict]:
    """The overlay rendered by `kubectl kustomize` (or a `kustomize` binary), as documents."""
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        version = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True).stdout
        found = re.search(r"Kustomize Version: v(\d+)", version)
        if found and int(found.group(1)) >= 4:
            command = [kubectl, "kustomize", str(K8S / "overlays" / overlay)]
        else:
            kubectl = None
    if kubectl is None:
        binary = shutil.which("kustomize")
        if binary is None:
            pytest.skip("needs kubectl >= 1.21 (Kustomize v4+) or kustomize; Debian's kubernetes-client is 1.20")
        command = [binary, "build", str(K8S / "overlays" / overlay)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian: {'prometheus' if name == 'promtool' else name})")
    return path
