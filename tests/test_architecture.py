"""The import structure of medops holds: ``lint-imports`` against ``[tool.importlinter]`` in pyproject.toml.

The rules live in pyproject.toml only (layers, independent benchmarks, views that never import a
benchmark module, no cycles inside a package); these tests run import-linter on the source and
on copies of it with one violation planted, so a contract that could not fail would show here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: import-linter brings tomli
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """Run import-linter on ``root/src`` with ``root/pyproject.toml``, uncached."""
    selected = [arg for contract in contracts for arg in ("--contract", contract)]
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *selected],
        cwd=root,
        env={"PYTHONPATH": str(root / "src"), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_import_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture
def source_copy(tmp_path: Path) -> Path:
    """A copy of pyproject.toml and src/medops (its Python files) to plant a violation in."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(
        ROOT / "src" / "medops",
        tmp_path / "src" / "medops",
        ignore=lambda _dir, names: [n for n in names if not n.endswith(".py") and "." in n],
    )
    return tmp_path


@pytest.mark.parametrize(
    ("contract", "planted"),
    [
        # a lower layer importing a higher one, inside a function (function bodies count)
        ("layers", {"medops.models.planted": "def f():\n    from medops.cli import app\n"}),
        ("layers", {"medops.scoring.planted": "import medops.store.queries\n"}),
        # two packages on one layer stay independent (prompts | grading | scoring)
        ("layers", {"medops.grading.planted": "import medops.prompts.mcqa\n"}),
        # a new top-level package without a layer
        ("layers", {"medops.unlisted": "X = 1\n"}),
        # one benchmark module importing another
        ("benchmarks", {"medops.evaluation.healthbench": "import medops.evaluation.mcqa\n"}),
        # a view importing a benchmark module
        ("views", {"medops.reports.planted": "from medops.evaluation.mcqa import McqaBenchmark\n"}),
        ("views", {"medops.web.planted": "import medops.evaluation.healthbench\n"}),
        # two modules of one package importing each other
        (
            "acyclic",
            {
                "medops.datasets.planted_a": "import medops.datasets.planted_b\n",
                "medops.datasets.planted_b": "import medops.datasets.planted_a\n",
            },
        ),
    ],
)
def test_a_planted_violation_breaks_its_contract(source_copy: Path, contract: str, planted: dict[str, str]):
    for module, source in planted.items():
        path = source_copy / "src" / Path(*module.split(".")).with_suffix(".py")
        prefix = path.read_text(encoding="utf-8") if path.exists() else ""
        path.write_text(prefix + "\n" + source, encoding="utf-8")
    result = lint_imports(source_copy, contract)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout


def test_the_copy_is_clean_before_planting(source_copy: Path):
    """The planted tests fail because of what they plant, not because the copy is incomplete."""
    result = lint_imports(source_copy)
    assert result.returncode == 0, result.stdout + result.stderr


def _contract(contract_id: str) -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    return next(c for c in config["contracts"] if c.get("id") == contract_id)


def test_the_documented_layers_are_the_enforced_ones():
    """docs/ARCHITECTURE.md's layer line, low to high, is the layers contract read bottom up."""
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    line = re.search(r"\*\*(errors.*?)\*\*", doc, re.S)
    assert line, "docs/ARCHITECTURE.md lost its bold layer line"
    documented = [layer.strip() for layer in " ".join(line.group(1).split()).split("->")]
    enforced = [layer.strip("()") for layer in reversed(_contract("layers")["layers"])]
    assert documented == enforced
