"""The package's architecture, checked on its imports: the layers and contracts of pyproject.toml
hold (`lint-imports`, the import-linter package), no module imports itself back through any chain,
and only the family seam (`voxdistill.families`) tests which student family a model is."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "voxdistill"


def test_the_import_contracts_hold():
    # This checkout's source, whatever copy of voxdistill the environment has installed.
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    lint = subprocess.run([Path(sys.executable).parent / "lint-imports", "--no-cache", "pyproject.toml"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "0 broken" in lint.stdout


def test_no_contract_ignores_an_import():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert contracts and not [c["name"] for c in contracts if c.get("ignore_imports") or c.get("exhaustive_ignores")]


def test_no_module_imports_itself_back():
    """Stricter than the acyclic_siblings contract, which compares siblings: also a package's
    ``__init__`` and the modules below it. (The graph is of the voxdistill the tests import.)"""
    graph = grimp.build_graph("voxdistill", cache_dir=None)
    circles = [(module, imported) for module in sorted(graph.modules)
               for imported in sorted(graph.find_modules_directly_imported_by(module))
               if graph.chain_exists(importer=imported, imported=module)]
    assert not circles, [graph.find_shortest_chain(importer=b, imported=a) for a, b in circles[:3]]


def test_only_the_family_seam_tests_for_a_family():
    family_test = re.compile(r"\bis_ctc_folder\b|==\s*[\"'](?:ctc|whisper)[\"']|[\"'](?:ctc|whisper)[\"']\s*==")
    outside = [path for path in SOURCE.rglob("*.py") if SOURCE / "families" not in path.parents]
    testing = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for path in outside
               for n, line in enumerate(path.read_text().splitlines(), 1) if family_test.search(line)]
    assert not testing
    assert "def is_ctc_folder" in (SOURCE / "families" / "ctc.py").read_text()  # the test the pattern looks for
