"""End to end through nnictl: examples/nnictl/nb201_teg.yml with a tiny budget, TEGTuner + trial.py.

NNI's web server listens on every interface (it has no host option): the test only talks to
127.0.0.1, keeps NNI's files (HOME, experimentWorkingDirectory) under a temporary folder, and stops
the experiment it started, by id, whatever happens.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("nni", reason='NNI is not installed: pip install "teg-plugin[nni]"')
yaml = pytest.importorskip("yaml", reason="PyYAML (an NNI dependency) is missing")

from teg_plugin.nni import score_from_metrics  # noqa: E402
from teg_plugin.spaces import NB201Space  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "nnictl"
SMALL = {"repeat": 1, "batch_size": 8, "regions_batch_size": 64, "regions_batches": 2}
TRIALS = 3
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni/check-status", timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_nnictl_experiment_with_teg_tuner(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    nnictl = bin_dir / "nnictl"
    if not nnictl.exists():
        pytest.skip(f"nnictl not found beside {sys.executable}")

    work = tmp_path / "exp"
    work.mkdir()
    for name in ("trial.py", "search_space.json"):
        shutil.copy(EXAMPLE / name, work / name)
    config = yaml.safe_load((EXAMPLE / "nb201_teg.yml").read_text())
    # Trials report nwot too, and the tuner ranks by a rule naming it (a string through YAML classArgs).
    config["trialCommand"] += f" --device cpu --config '{json.dumps(SMALL)}' --proxies nwot"
    config["maxTrialNumber"] = TRIALS
    config["tuner"]["classArgs"].update(
        budget=TRIALS, population_size=2, tournament_size=2, rule="ntk_cond,regions,kr_mse,nwot"
    )
    config["experimentWorkingDirectory"] = str(tmp_path / "nni-work")
    (work / "exp.yml").write_text(yaml.safe_dump(config))

    env = dict(os.environ)
    env.update(
        HOME=str(tmp_path / "home"),
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",  # trials run `python3` from this PATH
        OMP_NUM_THREADS="1",
    )
    (tmp_path / "home").mkdir()
    port = _free_port()

    def nnictl_run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(nnictl), *args], cwd=work, env=env, capture_output=True, text=True, timeout=timeout)

    experiment_id = None
    try:
        for attempt in range(2):
            created = nnictl_run("create", "--config", str(work / "exp.yml"), "--port", str(port))
            output = ANSI.sub("", created.stdout + created.stderr)
            if created.returncode == 0 or attempt or "Create experiment failed" not in output:
                break
            # NNI gives its manager 3 s to start its web server, then kills it (nni/experiment/launcher.py,
            # _check_rest_server): on a loaded machine, try once more, as docs/nni.md tells users to.
            port = _free_port()
        match = re.search(r"Experiment ID: (\w+)", output)
        experiment_id = match.group(1) if match else None
        assert created.returncode == 0 and experiment_id, created.stdout + created.stderr

        seen = []
        deadline = time.monotonic() + 120
        status: dict = {}
        while time.monotonic() < deadline:
            status = _status(port)
            if not seen or seen[-1] != status["status"]:
                seen.append(status["status"])
            if status["status"] in ("DONE", "ERROR", "STOPPED"):
                break
            time.sleep(1)
        assert status.get("status") == "DONE", f"statuses {seen}, last {status}"
        assert "NO_MORE_TRIAL" in seen or "TUNER_NO_MORE_TRIAL" in seen or seen == ["DONE"]

        exported = nnictl_run(
            "experiment", "export", experiment_id, "--filename", str(tmp_path / "x.json"), "--type", "json"
        )
        assert exported.returncode == 0, exported.stdout + exported.stderr
        records = json.loads((tmp_path / "x.json").read_text())
        assert len(records) == TRIALS
        space = NB201Space()
        defaults = []
        for record in records:
            space.from_params(record["parameter"])  # one NB201 arch per trial
            value = json.loads(record["value"]) if isinstance(record["value"], str) else record["value"]
            assert set(value) == {"default", "ntk_cond", "regions", "kr_mse", "bad", "proxy_nwot"}
            score = score_from_metrics(value)
            assert not score.bad and score.regions > 1 and score.ntk_cond >= 1
            defaults.append(value["default"])
        # "default" ranks each trial among the trials before it (shared log in the experiment folder).
        assert all(-3.0 <= d < 0.0 for d in defaults)
        assert sorted(defaults)[0] == -3.0
        experiment_dir = tmp_path / "nni-work" / experiment_id
        assert len((experiment_dir / "teg_results.jsonl").read_text().splitlines()) == TRIALS
        dispatcher_log = experiment_dir / "log" / "dispatcher.log"
        if dispatcher_log.exists():
            log = dispatcher_log.read_text()
            assert f"TEGTuner: result {TRIALS}" in log and "has no proxy_nwot" not in log
    finally:
        if experiment_id is None and (tmp_path / "nni-work").is_dir():  # started, but its id was not printed
            ids = [p.name for p in (tmp_path / "nni-work").iterdir() if p.is_dir() and p.name != "_latest"]
            experiment_id = ids[0] if len(ids) == 1 else None
        if experiment_id is not None:
            stopped = nnictl_run("stop", experiment_id, timeout=60)
            assert stopped.returncode == 0, stopped.stdout + stopped.stderr
