"""teg_plugin.nni without NNI installed: a clear ImportError, and the core package unaffected.

Runs whether or not NNI is installed (NNI is hidden from a subprocess).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

HIDE_NNI = textwrap.dedent(
    """
    import sys

    class _NoNNI:
        def find_spec(self, name, path=None, target=None):
            if name == "nni" or name.startswith("nni."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, _NoNNI())
    """
)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", HIDE_NNI + textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_import_without_nni_names_the_extra() -> None:
    result = _run(
        """
        try:
            import teg_plugin.nni
        except ImportError as exc:
            print("IMPORT-ERROR:", exc)
        else:
            print("IMPORTED")
        """
    )
    assert result.returncode == 0, result.stderr
    assert "IMPORT-ERROR:" in result.stdout
    assert 'pip install "teg-plugin[nni]"' in result.stdout


def test_core_package_works_without_nni() -> None:
    result = _run(
        """
        import random
        from teg_plugin.spaces import NB201Space
        from teg_plugin.strategies import make_strategy
        import teg_plugin.optuna  # noqa: F401
        space = NB201Space()
        print(space.format(make_strategy("evolution", space, seed=0).ask()))
        assert "nni" not in sys.modules
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("|")
