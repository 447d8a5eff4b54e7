"""The image (issue 23, item 1): built by scripts/build-image with buildah or podman from a local
Debian root made by debootstrap (no registry), then checked: the labels, the non-root user, the
HEALTHCHECK, no compiler and no torch in the CPU image, and a gateway started from it answering
/healthz. Skips, naming why, where no builder can run (no privileges) or debootstrap is missing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest
from deploy_files import REPO

pytestmark = pytest.mark.slow

BUILD_ENV = {**os.environ, "BUILDAH_ISOLATION": os.environ.get("BUILDAH_ISOLATION", "chroot")}


def _builder() -> str:
    for name in ("buildah", "podman"):
        if shutil.which(name):
            break
    else:
        pytest.skip("neither buildah nor podman is installed (Debian: apt-get install buildah)")
    if shutil.which("buildah") is None:
        pytest.skip("the checks read the image with buildah (apt-get install buildah)")
    probe = subprocess.run(["buildah", "from", "scratch"], capture_output=True, text=True, env=BUILD_ENV)
    if probe.returncode != 0:
        pytest.skip(f"buildah cannot make a container here (no privileges?): {probe.stderr.strip()[:200]}")
    subprocess.run(["buildah", "rm", probe.stdout.strip()], capture_output=True)
    return "buildah"


def _base_root(tmp: Path) -> Path:
    """$MEDOPS_TEST_BASE_ROOT (an existing debootstrap root), else one made now (needs a Debian mirror)."""
    given = os.environ.get("MEDOPS_TEST_BASE_ROOT")
    if given:
        return Path(given)
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed (apt-get install debootstrap)")
    root = tmp / "root"
    done = subprocess.run(
        ["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates", "bookworm", str(root),
         os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")],
        capture_output=True, text=True, timeout=1200)
    if done.returncode != 0:
        pytest.skip(f"debootstrap could not make a Debian root (no mirror reachable?): {done.stderr.strip()[-300:]}")
    return root


def _root_python(root: Path) -> str:
    """The root's Python version (X.Y.Z), from dpkg's records: the wheels are chosen for it."""
    status = (root / "var" / "lib" / "dpkg" / "status").read_text()
    for block in status.split("\n\n"):
        if block.startswith("Package: python3.") and "-minimal" not in block.split("\n", 1)[0]:
            version = next(line.split(": ", 1)[1] for line in block.splitlines() if line.startswith("Version: "))
            return version.split("-")[0]
    raise AssertionError(f"no python3.X package in {root}")


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> tuple[str, Path]:
    _builder()
    tmp = tmp_path_factory.mktemp("image")
    root = _base_root(tmp)
    bundle = tmp / "bundle"
    made = subprocess.run(
        [str(REPO / "scripts" / "bundle"), "--variant", "cpu", "--no-image", "--python-version", _root_python(root),
         "-o", str(bundle)], capture_output=True, text=True, timeout=1200)
    assert made.returncode == 0, made.stderr[-3000:]
    archive = tmp / "medops-cpu.oci.tar"
    tag = "localhost/medops-test:cpu"
    built = subprocess.run(
        [str(REPO / "scripts" / "build-image"), "--variant", "cpu", "--base-root", str(root), "--wheelhouse",
         str(bundle), "--tag", tag, "--oci-archive", str(archive)],
        capture_output=True, text=True, env=BUILD_ENV, timeout=3000)
    assert built.returncode == 0, built.stderr[-4000:]
    assert built.stdout.strip() == tag
    yield tag, archive
    subprocess.run(["buildah", "rmi", tag], capture_output=True)


@pytest.fixture(scope="module")
def container(image):
    tag, _archive = image
    name = subprocess.run(["buildah", "from", tag], capture_output=True, text=True, check=True).stdout.strip()
    yield name
    subprocess.run(["buildah", "rm", name], capture_output=True)


def _run(container: str, *command: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["buildah", "run", "--isolation", "chroot", container, "--", *command],
                          capture_output=True, text=True, timeout=timeout)


def test_image_config_labels_user_and_healthcheck(image):
    tag, _archive = image
    inspected = json.loads(subprocess.run(["buildah", "inspect", "--type", "image", tag], capture_output=True,
                                          text=True, check=True).stdout)
    config = inspected["Docker"]["config"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    git = ["git", "-C", str(REPO), "rev-parse", "HEAD"]
    commit = subprocess.run(git, capture_output=True, text=True).stdout.strip()
    assert labels["org.opencontainers.image.revision"].startswith(commit)
    assert labels["io.medops.variant"] == "cpu"
    assert config["User"] == "10001:10001"
    assert "MEDOPS_HEALTH_URL" in " ".join(config["Healthcheck"]["Test"])
    assert "MEDOPS_HEALTH_URL=http://127.0.0.1:8080/healthz" in config["Env"]


def test_oci_archive_is_written(image):
    _tag, archive = image
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "index.json" in names and "oci-layout" in names


def test_runs_as_medops_without_compilers_or_torch(container):
    assert _run(container, "id", "-u").stdout.strip() == "10001"
    assert _run(container, "/opt/medops/entrypoint", "--version").stdout.strip() == "medops 0.1.0"
    probe = _run(container, "/opt/medops/bin/python", "-c",
                 "import importlib.util as u, shutil; print(u.find_spec('torch'), "
                 "[c for c in ('gcc', 'cc', 'c++', 'g++', 'make', 'ld') if shutil.which(c)])")
    assert probe.stdout.strip() == "None []", probe.stdout + probe.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gateway_from_the_image_answers_healthz(container):
    port = _free_port()
    gateway = subprocess.Popen(
        ["buildah", "run", "--isolation", "chroot", container, "--", "/opt/medops/entrypoint", "gateway",
         "--upstream", "http://127.0.0.1:9/v1", "--port", str(port), "--db", "/tmp/gateway.db"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    assert json.loads(answer.read()) == {"status": "ok", "store": "ok"}
                    break
            except OSError:
                assert gateway.poll() is None, gateway.stdout.read()
                assert time.monotonic() < deadline, "the gateway did not answer /healthz in 120 s"
                time.sleep(1)
        # the image's own HEALTHCHECK command, run inside it
        check = _run(container, "/opt/medops/bin/python", "-c",
                     f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/healthz', timeout=2)")
        assert check.returncode == 0, check.stderr
    finally:
        os.killpg(gateway.pid, signal.SIGTERM)  # buildah and the gateway it started
        try:
            gateway.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(gateway.pid, signal.SIGKILL)
