"""The examples run end to end (with ``--small``) and print what they promise."""

from __future__ import annotations

import json
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
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
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

    from teg_plugin.optuna._compat import trial_id_of

    noted_trial = optuna.trial.Trial(study, trial_id_of(study.trials[int(noted.group(1))]))
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


def test_nni_user_space_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("nni", reason='NNI is not installed: pip install "teg-plugin[nni]"')
    monkeypatch.setenv("HOME", str(tmp_path))  # NNI keeps its experiment list under ~/nni-experiments
    out = _run("nni_user_space.py", cwd=tmp_path)
    assert re.search(r"^model space SmallCNN: 54 architectures$", out, re.M), out
    choices = (
        "width: 8, 16, 32",
        "block1: conv3x3, conv5x5, maxpool3x3",
        "block2: conv3x3, conv1x1, identity",
        "skip: 0, 1",
    )
    for label in choices:
        assert f"  {label}\n" in out, out
    sample = r"\{\"block1\": \"\w+\", \"block2\": \"\w+\", \"skip\": \[[01]\], \"width\": (?:8|16|32)\}"
    scored = re.findall(rf"^  #\d+ +({sample})  T=\S+ E=\d+ G=\S+  rank-sum [\d.]+$", out, re.M)
    assert len(scored) == 8, out
    best = re.search(rf"^best architecture \(lowest TEG rank-sum among 8\): ({sample})$", out, re.M)
    assert best and best.group(1) in scored, out
    top = re.search(r"^top \d \(export_top_models\): (.+)$", out, re.M)
    assert top and top.group(1).split("; ")[0] == best.group(1), out
    assert re.search(r"^SmallCNN\($", out, re.M), out  # the winner, frozen
    assert "WARNING" not in out, out


def test_optuna_user_space_example(tmp_path: Path) -> None:
    import optuna

    url = f"sqlite:///{tmp_path / 'user.db'}"
    out = _run("optuna_user_space.py", "--storage", url, cwd=tmp_path)
    assert re.search(r"^search space: 9 parameters, 6480 architectures$", out, re.M), out
    assert re.search(r"^  width_mult +FloatDistribution\(high=1.5, log=False, low=0.5, step=0.25\)$", out, re.M), out
    assert re.search(r"^scoring 6 architectures on embedded \(500 images\) on cpu$", out, re.M), out
    rows = re.findall(r"^  #(\d) +(COMPLETE|PRUNED) +.*  (\{.*\})$", out, re.M)
    assert [int(r[0]) for r in rows] == list(range(6)), out
    winner = re.search(r"^TEG winner \(lowest rank-sum\): #(\d+)  T=\S+ +E=\S+ +G=\S+", out, re.M)
    assert winner, out
    assert re.search(r"^built with build_model\(FixedTrial\(params\)\): Net, [\d,]+ parameters$", out, re.M), out

    study = optuna.load_study(study_name="teg-user-space", storage=url)
    assert len(study.trials) == 6
    best = study.trials[int(winner.group(1))]
    assert best.user_attrs["arch"] == rows[best.number][2]
    for name, value in best.params.items():
        assert re.search(rf"^  {name} += {value}$", out, re.M), (name, out)


@pytest.mark.parametrize("space", ["user", "nas-bench-201"])
def test_nni_pruning_example(space: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("nni", reason='NNI is not installed: pip install "teg-plugin[nni]"')
    monkeypatch.setenv("HOME", str(tmp_path))  # NNI keeps its experiment list under ~/nni-experiments
    out = _run("nni_pruning.py", "--space", space, "--quiet", cwd=tmp_path)
    name = "PrunableCNN" if space == "user" else "NB201ModelSpace"
    assert re.search(rf"^pruning {name} with TEG on synthetic images, score seed 0 \(reduced protocol\)$", out, re.M), (
        out
    )
    rounds = re.findall(r"^  round (\d): dropped (.+)$", out, re.M)
    assert [int(r[0]) for r in rounds] == [0, 1, 2], out  # 4 options at most per choice, one dropped per round
    evaluations = 25 if space == "user" else 57
    assert re.search(rf"^3 rounds, {evaluations} supernet evaluations, [\d.]+ s$", out, re.M), out
    pruned = re.search(r"^pruned architecture: (\{.+\})$", out, re.M)
    top = re.search(r"^export_top_models: (\{.+\})$", out, re.M)
    assert pruned and top and pruned.group(1) == top.group(1), out
    sample = json.loads(pruned.group(1))
    if space == "user":
        assert sorted(sample) == ["block1", "block2", "kernel", "skip"], out
        # Every dropped option is gone from the pick; the pick holds one option per choice.
        for _, dropped in rounds:
            for item in dropped.split(", "):
                label, option = item.split(": ")
                assert str(sample[label]) != option, (label, option, out)
        assert re.search(r"^PrunableCNN\($", out, re.M), out  # the pruned model, frozen
    else:
        assert re.search(rf"^arch string: {ARCH}$", out, re.M), out
        assert re.search(r"^NB201Network\(", out, re.M), out
    assert "TEG pruning round 2 done" in out, out  # NNI's logger shows the rounds
