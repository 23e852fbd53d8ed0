"""The attribute schema has one owner (teg_plugin/optuna/_attrs.py), and Optuna's internals one door
(teg_plugin/optuna/_compat.py): no other module of the package spells an attribute name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from teg_plugin.optuna import _attrs

ROOT = Path(__file__).resolve().parents[1]
#: The package's source folders (``spaces/`` and ``strategies/`` install as subpackages of teg_plugin).
SOURCES = ("teg_plugin", "spaces", "strategies")
#: The modules allowed to spell attribute names: the schema's owner, and the one module that names
#: Optuna's own system attributes.
OWNERS = {Path("teg_plugin/optuna/_attrs.py"), Path("teg_plugin/optuna/_compat.py")}
#: Methods that write an attribute, with the position of the attribute name among their arguments.
SETTERS = {"set_user_attr": 0, "set_system_attr": 0, "set_trial_user_attr": 1, "set_trial_system_attr": 1}
#: Methods that look a key up in the mapping they are called on.
GETTERS = {"get", "pop", "setdefault"}


def _is_attrs(node: ast.expr) -> bool:
    """Whether ``node`` is an attributes mapping: a name or attribute ending in ``attrs``
    (``attrs``, ``trial.user_attrs``, ``study.system_attrs``)."""
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name.endswith("attrs")


def _literal(node: ast.AST | None) -> str | None:
    """The text of a string literal or f-string, ``None`` for anything else (a name, a call)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return ast.unparse(node) if isinstance(node, ast.JoinedStr) else None


def _defines_a_name(node: ast.AST) -> bool:
    """Whether ``node`` assigns a string (or strings) to a constant named like ``*_ATTR`` / ``*_ATTRS``."""
    if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
        return False
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    named = any(isinstance(t, ast.Name) and t.id.endswith(("_ATTR", "_ATTRS")) for t in targets)
    values = node.value.elts if isinstance(node.value, (ast.Tuple, ast.List)) else [node.value]
    return named and any(_literal(value) is not None for value in values)


def spelled_attribute_names(source: str) -> list[tuple[int, str]]:
    """``(line, name)`` for every attribute name written as a string literal where an attribute is
    read or written: ``attrs["arch"]``, ``trial.user_attrs.get("bad")``, ``"arch" in t.user_attrs``,
    ``trial.set_user_attr("arch", ...)``, ``storage.set_trial_system_attr(id, "teg:worker", ...)``,
    ``create_trial(user_attrs={"arch": ...})``, and a constant ``*_ATTR = "..."`` defined outside
    the schema. Docstrings and other strings are not looked at."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if _defines_a_name(node):
            found.append((node.lineno, ast.unparse(node)))
        keys: list[ast.AST | None] = []
        if isinstance(node, ast.Subscript) and _is_attrs(node.value):
            keys = [node.slice]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method, args = node.func.attr, node.args
            if method in GETTERS and _is_attrs(node.func.value) and args:
                keys = [args[0]]
            elif method in SETTERS and len(args) > SETTERS[method]:
                keys = [args[SETTERS[method]]]
        elif isinstance(node, ast.Compare):
            for left, op, right in zip([node.left, *node.comparators], node.ops, node.comparators):
                if isinstance(op, (ast.In, ast.NotIn)) and _is_attrs(right):
                    keys.append(left)
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg in ("user_attrs", "system_attrs") and isinstance(keyword.value, ast.Dict):
                    keys += keyword.value.keys
        found += [(node.lineno, text) for key in keys if (text := _literal(key)) is not None]
    return found


def _package_files() -> list[Path]:
    return sorted(path.relative_to(ROOT) for folder in SOURCES for path in (ROOT / folder).rglob("*.py"))


def test_only_the_schema_module_spells_attribute_names() -> None:
    spelled = [
        f"{path}:{line}: {name!r}"
        for path in _package_files()
        if path not in OWNERS
        for line, name in spelled_attribute_names((ROOT / path).read_text(encoding="utf-8"))
    ]
    assert not spelled, "use the names and functions of teg_plugin/optuna/_attrs.py:\n" + "\n".join(spelled)


@pytest.mark.parametrize(
    "code",
    [
        'arch = trial.user_attrs["arch"]',
        'bad = attrs.get("bad")',
        'known = "arch" in t.user_attrs',
        'fixed = trial.system_attrs.get("fixed_params") or {}',
        'trial.set_user_attr("ntk_cond", 1.0)',
        'storage.set_trial_system_attr(trial_id, "teg:worker", me)',
        'study.add_trial(create_trial(value=0.0, user_attrs={"arch": "a"}))',
        'study.set_user_attr(f"best_{key}", value)',
        'SETTINGS_ATTR = "teg_search_settings"',
        'NAMES_ATTRS: tuple[str, ...] = ("arch", "bad")',
    ],
)
def test_the_check_catches_a_spelled_name(code: str) -> None:
    assert [name for _, name in spelled_attribute_names(code)]


def test_the_check_passes_names_from_the_schema_and_other_mappings() -> None:
    code = "\n".join(
        [
            "arch = trial.user_attrs[ARCH_ATTR]",
            "bad = attrs.get(BAD_ATTR)",
            "trial.set_user_attr(key, value)",
            'pick = final["pick"]',
            "NAMES_ATTRS = (ARCH_ATTR, *INDICATOR_ATTRS)",
            '"""A docstring may say attrs["arch"]."""',
        ]
    )
    assert spelled_attribute_names(code) == []


def test_the_schema_names_every_attribute_once() -> None:
    names = [
        *_attrs.TEG_ATTRS,
        _attrs.WORKER_ATTR,
        _attrs.FINAL_CHOICE_ATTR,
        _attrs.FINAL_SCORES_ATTR,
        _attrs.SEARCH_SETTINGS_ATTR,
    ]
    assert len(set(names)) == len(names)
    assert set(_attrs.SCORE_ATTRS) == set(_attrs.TEG_ATTRS) - {_attrs.INDEX_ATTR}
