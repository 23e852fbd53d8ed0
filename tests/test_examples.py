"""The Optuna examples run end to end (with ``--small``) and print what they promise."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ARCH = r"\|[a-z_0-9]+~0\|\+\|[a-z_0-9]+~0\|[a-z_0-9]+~1\|\+\|[a-z_0-9]+~0\|[a-z_0-9]+~1\|[a-z_0-9]+~2\|"

pytestmark = pytest.mark.slow


def _run(name: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--small", "--device", "cpu", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def test_zero_cost_search_example(tmp_path: Path) -> None:
    import optuna

    url = f"sqlite:///{tmp_path / 'study.db'}"
    out = _run("optuna_zero_cost_search.py", "--storage", url, cwd=tmp_path)
    assert re.search(r"^scoring 6 NB201 cells on embedded \(500 images\)", out, re.M), out
    front = re.search(r"^Pareto front: (\d+) of 6 trials", out, re.M)
    assert front and int(front.group(1)) >= 1, out
    members = re.findall(rf"^  #\d+ +{ARCH} +T=\S+ +E=\S+ +G=\S+$", out, re.M)
    assert len(members) == int(front.group(1)), out
    winner = re.search(rf"^TEG winner \(lowest rank-sum\): #(\d+) ({ARCH})  T=", out, re.M)
    assert winner, out
    assert f"  optuna-dashboard {url}" in out.splitlines()  # optuna-dashboard is a test dependency
    noted = re.search(r"^saved 3 TEG figures and a note on trial #(\d+) to the study", out, re.M)
    assert noted, out

    study = optuna.load_study(study_name="teg-zero-cost", storage=url)
    assert len(study.trials) == 6 and study.metric_names == ["ntk_cond", "regions", "kr_mse"]
    assert study.trials[int(winner.group(1))].user_attrs["arch"] == winner.group(2)
    import optuna_dashboard

    noted_trial = optuna.trial.Trial(study, study.trials[int(noted.group(1))]._trial_id)
    assert winner.group(2) in optuna_dashboard.get_note(noted_trial)  # the note names the TEG winner


def test_guided_training_example(tmp_path: Path) -> None:
    out = _run("optuna_guided_training.py", cwd=tmp_path)
    assert re.search(r"^training 2 NB201 networks \(C=4, N=1\) for 1 epoch\(s\) on 128 images", out, re.M), out
    trained = re.findall(rf"^trial (\d) +({ARCH})  valid (\d+)%  \(T=", out, re.M)
    assert [t[0] for t in trained] == ["0", "1"], out  # nothing pruned during the TEG warm-up
    assert len({t[1] for t in trained}) == 2, out  # guided mode never proposes a cell twice
    assert re.search(r"^2 trained, 0 pruned; \d+ cells scored with TEG$", out, re.M), out
    best = re.search(rf"^best trained architecture: #(\d) ({ARCH})  validation accuracy ([\d.]+)%$", out, re.M)
    assert best, out
    number, arch, accuracy = best.groups()
    assert (arch, round(float(accuracy))) == (trained[int(number)][1], int(trained[int(number)][2]))
