"""The distribution ships every subpackage, under `teg_plugin` only."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> tuple[set[str], dict[str, str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return set(config["packages"]), config["package-dir"]


def test_every_package_folder_is_declared() -> None:
    declared, package_dir = _declared()
    found = set()
    for package, folder in package_dir.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            relative = init.parent.relative_to(base).parts
            found.add(".".join((package, *relative)))
    # A mapped top-level folder (spaces/, strategies/) is found both on its own and inside teg_plugin/.
    assert found <= declared, f"undeclared packages: {sorted(found - declared)}"


def test_only_teg_plugin_is_installed_at_top_level() -> None:
    declared, package_dir = _declared()
    assert {name.split(".")[0] for name in declared} == {"teg_plugin"}
    assert {name.split(".")[0] for name in package_dir} == {"teg_plugin"}
