"""teg_plugin.dashboard: figures and the best-trial note saved for optuna-dashboard, read back through
optuna-dashboard's own API, its WSGI app, and a real ``optuna-dashboard`` server process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import optuna
import pytest

optuna_dashboard = pytest.importorskip("optuna_dashboard")

from teg_plugin import dashboard  # noqa: E402
from teg_plugin.optuna._compat import open_trial  # noqa: E402
from teg_plugin.plots import FIGURE_IDS  # noqa: E402
from teg_plugin.spaces.nb201 import EDGE_NAMES as EDGES  # noqa: E402

# (op per edge, index, kappa, regions, kr_mse); trial 4 is best on all three, trial 2 is bad (pruned).
TRIALS = [
    ((1, 2, 3, 4, 1, 2), 11, 900.0, 200.0, 0.9),
    ((2, 2, 2, 2, 2, 2), 12, 300.0, 500.0, 0.6),
    ((0, 0, 0, 0, 0, 0), 13, None, None, None),
    ((4, 4, 4, 4, 4, 4), 14, 2000.0, 150.0, 1.1),
    ((3, 3, 3, 3, 3, 3), 15, 40.0, 950.0, 0.25),
    ((3, 2, 3, 2, 3, 2), 16, 70.0, 800.0, 0.3),
    ((1, 1, 1, 1, 1, 1), 17, 120.0, 600.0, 0.5),
    ((2, 3, 2, 3, 2, 3), None, 90.0, 700.0, 0.45),
    ((3, 3, 2, 2, 1, 1), 18, 500.0, 400.0, 0.7),
    ((1, 3, 1, 3, 1, 3), 19, 200.0, 300.0, 0.8),
]
BEST, BAD = 4, 2


@pytest.fixture()
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'dash.sqlite'}"


@pytest.fixture()
def study(url: str, make_teg_study) -> optuna.Study:
    return make_teg_study(url, "teg-dash", TRIALS)


def wsgi_get(url: str, path: str) -> tuple[str, dict]:
    """GET ``path`` from optuna-dashboard's WSGI app (its public ``wsgi()``), without a server."""
    app = optuna_dashboard.wsgi(url)
    environ: dict = {}
    setup_testing_defaults(environ)
    environ.update(PATH_INFO=path, REQUEST_METHOD="GET")
    status: list[str] = []
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    return status[0], json.loads(body)


def test_publish_saves_figures_and_the_best_trial_note(study, url, arch_text):
    published = dashboard.publish_to_dashboard(study)
    assert published.graph_object_ids == FIGURE_IDS
    assert published.best_trial_number == BEST and published.best_arch == arch_text(TRIALS[BEST][0])
    # the note, read back with optuna-dashboard's public get_note
    best = open_trial(optuna.load_study(study_name="teg-dash", storage=url), study.trials[BEST])
    note = optuna_dashboard.get_note(best)
    assert note == published.note
    assert f"`{arch_text(TRIALS[BEST][0])}`" in note and "index:** 15" in note
    assert "1 of 10 scored architectures (9 good, 1 flagged bad)" in note and "rank-sum **3**" in note
    for measure, value in (
        ("NTK condition number κ", "40"),
        ("linear regions", "950"),
        ("kernel-regression MSE", "0.25"),
    ):
        assert f"| {measure} |" in note and f"| {value} | 1 of 9 |" in note
    assert "lowest rank-sum" in note and "no accuracy" in note
    assert optuna_dashboard.get_note(study) == ""  # study note only with study_note=True
    # the figures, read back from the study detail the dashboard serves
    status, detail = wsgi_get(url, f"/api/studies/{study._study_id}")
    assert status.startswith("200")
    graphs = {g["id"]: json.loads(g["graph_object"]) for g in detail["plotly_graph_objects"]}
    assert set(graphs) == set(FIGURE_IDS)
    names = [t.get("name") for t in graphs["teg-landscape"]["data"]]
    assert names == ["trajectory", "architectures", "bad", "best"]
    assert graphs["teg-landscape"]["data"][3]["customdata"][0][0] == published.best_arch
    # sized for the dashboard's 450 px cards: no fixed height, 2x2 grid, the rank panel only
    assert all("height" not in g["layout"] for g in graphs.values())
    assert {t["xaxis"] for t in graphs["teg-landscape-2d"]["data"]} == {"x", "x2", "x3"}
    assert graphs["teg-landscape-2d"]["layout"]["xaxis3"]["domain"][0] == 0.0  # third panel starts row 2
    assert {t.get("yaxis", "y") for t in graphs["teg-search-progress"]["data"]} == {"y"}
    assert detail["trials"][BEST]["note"]["body"] == note


def test_publish_ranks_by_the_study_rule(url, make_teg_study):
    from teg_plugin.optuna._attrs import RANK_RULE_ATTR

    plain = make_teg_study(url, "teg-dash", TRIALS)
    study = optuna.create_study(study_name="teg-dash-rule", storage=url)
    study.set_user_attr(RANK_RULE_ATTR, "regions=1,kr_mse=1,params=1")
    for trial in plain.trials:  # the complexity term, as TEGSampler stores it: trial 5 is the largest
        complexity = 10.0**6 if trial.number == 5 else float(trial.number)
        study.add_trial(
            optuna.trial.create_trial(
                state=trial.state,
                params=trial.params,
                distributions=trial.distributions,
                value=trial.value,
                user_attrs={**trial.user_attrs, "complexity": complexity},
            )
        )
    published = dashboard.publish_to_dashboard(study)
    # regions and kr_mse rank trial 4 first and trial 5 second, params trial 5 first and trial 4 sixth:
    # 1 + 1 + 6 = 8 against 2 + 2 + 1 = 5.
    assert dashboard.publish_to_dashboard(plain).best_trial_number == BEST == 4
    assert published.best_trial_number == 5
    note = published.note
    assert "rank-sum **5**" in note and "(lowest possible 3, highest possible 27)" in note
    assert "**The rank rule's other terms** (rule `regions=1,kr_mse=1,params=1`): params 1e+06." in note
    assert "rank rule `regions=1,kr_mse=1,params=1` separately" in note and "summed with the rule's weights" in note


def test_publish_again_replaces_and_takes_custom_figures(study, url):
    import plotly.graph_objects as go

    dashboard.publish_to_dashboard(study)
    dashboard.publish_to_dashboard(study, note=False, study_note=True)
    extra = go.Figure(go.Bar(x=[1, 2], y=[3, 4], name="extra"))
    out = dashboard.publish_to_dashboard(study, figures=[extra], note=False)
    assert out.graph_object_ids == ("teg-figure-0",) and out.note is None
    _, detail = wsgi_get(url, f"/api/studies/{study._study_id}")
    assert sorted(g["id"] for g in detail["plotly_graph_objects"]) == sorted((*FIGURE_IDS, "teg-figure-0"))
    assert detail["note"]["body"].startswith("## TEG-NAS pick of study `teg-dash`")
    with pytest.raises(ValueError, match="valid HTML id"):
        dashboard.publish_to_dashboard(study, figures={"has space": extra}, note=False)


def test_publish_does_not_call_the_study_sampler(study, url):
    class Spy(optuna.samplers.RandomSampler):
        calls = 0

        def before_trial(self, study, trial):
            Spy.calls += 1

    spied = optuna.load_study(study_name=study.study_name, storage=url, sampler=Spy())
    dashboard.publish_to_dashboard(spied)
    assert Spy.calls == 0


def test_publish_needs_teg_trials(tmp_path):
    empty = optuna.create_study(study_name="empty", storage=f"sqlite:///{tmp_path / 'e.sqlite'}")
    empty.add_trial(optuna.trial.create_trial(value=1.0))
    with pytest.raises(ValueError, match="no TEG trials"):
        dashboard.publish_to_dashboard(empty)


def test_missing_optuna_dashboard_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)
    with pytest.raises(ImportError, match=r'pip install "teg-plugin\[dashboard\]"'):
        dashboard.publish_to_dashboard(optuna.create_study())
    with pytest.raises(ImportError, match="teg-plugin"):
        dashboard.serve_dashboard("sqlite:///unused.sqlite")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_json(base: str, path: str) -> dict:
    with urllib.request.urlopen(base + path, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_optuna_dashboard_server_serves_the_study(tmp_path, make_teg_study):
    url = f"sqlite:///{tmp_path / 'served.sqlite'}"
    study = make_teg_study(url, "teg-dash", TRIALS)
    published = dashboard.publish_to_dashboard(study)
    exe = Path(sys.executable).with_name("optuna-dashboard")
    if not exe.exists():
        pytest.skip(f"no optuna-dashboard console script beside {sys.executable}")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [str(exe), url, "--host", "127.0.0.1", "--port", str(port), "--server", "wsgiref"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                meta = _get_json(base, "/api/meta")
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, (tmp_path / "server.log").read_text()
                assert time.monotonic() < deadline, "optuna-dashboard did not answer within 60 s"
                time.sleep(0.3)
        assert meta["plotlypy_is_available"] is True
        summaries = _get_json(base, "/api/studies")["study_summaries"]
        (summary,) = [s for s in summaries if s["study_name"] == "teg-dash"]
        detail = _get_json(base, f"/api/studies/{summary['study_id']}")
        assert detail["name"] == "teg-dash" and len(detail["trials"]) == len(TRIALS)
        attrs = {a["key"]: a["value"] for a in detail["trials"][BEST]["user_attrs"]}
        assert attrs["arch"] == published.best_arch and attrs["ntk_cond"] == "40.0" and attrs["bad"] == "False"
        assert {a["key"] for a in detail["trials"][BAD]["user_attrs"]} >= {"ntk_cond", "regions", "kr_mse", "bad"}
        assert {u["key"] for u in detail["union_user_attrs"]} >= {
            "arch",
            "index",
            "ntk_cond",
            "regions",
            "kr_mse",
            "bad",
        }
        assert [p["name"] for p in detail["union_search_space"]] == list(EDGES)
        assert detail["trials"][BEST]["note"]["body"] == published.note
        graphs = {g["id"]: json.loads(g["graph_object"]) for g in detail["plotly_graph_objects"]}
        assert set(graphs) == set(FIGURE_IDS)
        with urllib.request.urlopen(f"{base}/dashboard/studies/{summary['study_id']}", timeout=10) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
