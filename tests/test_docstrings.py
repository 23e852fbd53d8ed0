"""Every docstring example in the package runs and shows what it claims."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import teg_plugin
import teg_plugin.spaces
import teg_plugin.strategies

# Optional integrations are covered by their own tests when their extra is installed.
_OPTIONAL = ("teg_plugin.nni",)


def _modules() -> list[str]:
    names = set()
    # spaces/ and strategies/ are mapped into teg_plugin from top-level folders: walk them too.
    for package in (teg_plugin, teg_plugin.spaces, teg_plugin.strategies):
        for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + "."):
            if not info.name.startswith(_OPTIONAL) and not info.name.endswith("__main__"):
                names.add(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
