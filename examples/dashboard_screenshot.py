"""Screenshot a TEG-NAS study in optuna-dashboard with headless Chromium.

Starts ``optuna-dashboard STORAGE --host 127.0.0.1 --port PORT``, waits until it answers, opens one
page of the study in headless Chromium, saves a PNG and stops the server.

    # an existing study (publish the TEG figures and the best-trial note first)
    python examples/dashboard_screenshot.py sqlite:///teg.sqlite --study-name my-search --publish \\
        --page overview --out dashboard.png

    # a small demo study: K NB201 cells proposed by Optuna's TPE, each scored with the real TEG
    # indicators on the embedded image sample (reduced protocol, CPU: a few seconds per cell)
    python examples/dashboard_screenshot.py sqlite:///demo.sqlite --demo 40 --publish --out dashboard.png

    # the TEG figure cards of the overview page (how examples/img/dashboard.png was made)
    python examples/dashboard_screenshot.py sqlite:///demo.sqlite --window 1400,2700 --crop 1740,2700 \
        --out examples/img/dashboard.png

Pages: ``overview`` (/dashboard/studies/ID: history, best trials, the saved TEG figures),
``trials`` (the trial list: params, user attrs, the trial's note; ``--trial N`` selects trial N),
``analytics``, ``note`` (the study note). The ``trialTable``
page of optuna-dashboard 0.21 renders blank in headless Chromium, so it is not offered.

Needs ``pip install "teg-plugin[dashboard]"`` and a Chromium (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

PAGES = {"overview": "", "trials": "/trials", "analytics": "/analytics", "note": "/note"}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("storage", help="Optuna storage URL, e.g. sqlite:///teg.sqlite")
    parser.add_argument(
        "--study-name", default=None, help="study to show (default: the only one, or teg-demo with --demo)"
    )
    parser.add_argument(
        "--page", choices=sorted(PAGES), default="overview", help="dashboard page (default: %(default)s)"
    )
    parser.add_argument(
        "--trial",
        type=int,
        default=None,
        metavar="N",
        help="with --page trials: open trial number N (its note, params, user attrs)",
    )
    parser.add_argument("--out", default="dashboard.png", help="PNG to write (default: %(default)s)")
    parser.add_argument(
        "--publish", action="store_true", help="first save the TEG figures and the best-trial note (also as study note)"
    )
    parser.add_argument(
        "--demo",
        type=int,
        default=0,
        metavar="K",
        help="first create a demo study of K NB201 cells proposed by TPE and scored with TEG",
    )
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--window", default="1400,1000", help="browser window W,H (default: %(default)s)")
    parser.add_argument(
        "--budget-ms", type=int, default=8000, help="Chromium --virtual-time-budget (default: %(default)s)"
    )
    parser.add_argument(
        "--crop", default=None, metavar="TOP,BOTTOM", help="keep only rows TOP..BOTTOM of the PNG (needs Pillow)"
    )
    parser.add_argument(
        "--chromium",
        default=None,
        help="Chromium binary (default: chromium / chromium-browser / google-chrome on PATH)",
    )
    args = parser.parse_args(argv)

    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if args.demo:
        study = make_demo_study(args.storage, args.study_name or "teg-demo", args.demo)
    else:
        from teg_plugin.cli._plot import load_study

        try:
            study = load_study(args.storage, args.study_name)
        except (ValueError, FileNotFoundError) as err:
            raise SystemExit(f"error: {err}") from None
    if args.publish:
        from teg_plugin.dashboard import publish_to_dashboard

        published = publish_to_dashboard(study, study_note=True)
        print(f"published {', '.join(published.graph_object_ids)}; note on trial {published.best_trial_number}")

    browser = args.chromium or next(
        (p for name in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(name))), None
    )
    if browser is None:
        raise SystemExit("no Chromium found: install it (apt-get install chromium) or pass --chromium PATH")
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="teg-dash-") as tmp:
        log_path = Path(tmp) / "server.log"
        with log_path.open("w") as log:
            server = subprocess.Popen(dashboard_command(args.storage, port), stdout=log, stderr=subprocess.STDOUT)
            try:
                wait_until_up(base, server, log_path)
                study_id = find_study_id(base, study.study_name)
                url = f"{base}/dashboard/studies/{study_id}{PAGES[args.page]}"
                if args.page == "trials" and args.trial is not None:
                    url += f"?numbers={args.trial}"
                out = Path(args.out).resolve()
                out.parent.mkdir(parents=True, exist_ok=True)
                command = [
                    browser,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={Path(tmp) / 'profile'}",
                    f"--window-size={args.window}",
                    f"--screenshot={out}",
                    f"--virtual-time-budget={args.budget_ms}",
                    url,
                ]
                subprocess.run(command, check=True, timeout=180, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            finally:
                server.terminate()
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
    if not out.is_file() or out.stat().st_size < 5000:
        raise SystemExit(f"Chromium wrote no usable screenshot at {out}")
    if args.crop:
        from PIL import Image

        top, bottom = (int(v) for v in args.crop.split(","))
        with Image.open(out) as image:
            cropped = image.convert("RGB").crop((0, top, image.width, min(bottom, image.height)))
        cropped.save(out, optimize=True)
    print(f"{url} -> {out} ({out.stat().st_size // 1024} KiB)")
    return 0


def dashboard_command(storage: str, port: int) -> list[str]:
    """``optuna-dashboard STORAGE --host 127.0.0.1 --port PORT`` (the console script beside Python, or on PATH)."""
    script = Path(sys.executable).with_name("optuna-dashboard")
    exe = str(script) if script.exists() else shutil.which("optuna-dashboard")
    if exe:
        return [exe, storage, "--host", "127.0.0.1", "--port", str(port), "--server", "wsgiref"]
    code = "import sys; from optuna_dashboard import run_server; run_server(sys.argv[1], host='127.0.0.1', port=int(sys.argv[2]))"
    return [sys.executable, "-c", code, storage, str(port)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(base: str, server: subprocess.Popen, log_path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/meta", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        if server.poll() is not None:
            raise SystemExit(f"optuna-dashboard exited:\n{log_path.read_text()}")
        if time.monotonic() > deadline:
            raise SystemExit(f"optuna-dashboard did not answer on {base} within {timeout:.0f} s")
        time.sleep(0.3)


def find_study_id(base: str, name: str) -> int:
    with urllib.request.urlopen(f"{base}/api/studies", timeout=10) as response:
        summaries = json.loads(response.read())["study_summaries"]
    for summary in summaries:
        if summary["study_name"] == name:
            return int(summary["study_id"])
    raise SystemExit(f"the dashboard does not list study {name!r}")


def make_demo_study(storage: str, name: str, k: int):  # noqa: ANN201
    """A study of ``k`` NB201 cells proposed by TPE and scored with :class:`TEGScorer` (CPU).

    The trials follow the TEG study convention (user attrs ``arch``, ``index``, ``ntk_cond``,
    ``regions``, ``kr_mse``, ``bad``); the three indicators are also the objective values (minimize
    κ, maximize regions, minimize MSE), named with ``study.set_metric_names``. A bad
    cell is pruned after its user attrs are written (as ``teg_plugin.optuna``'s objective does).
    """
    import optuna

    from teg_plugin.config import TEGConfig
    from teg_plugin.scorer import TEGScorer
    from teg_plugin.spaces import NB201Space

    space = NB201Space()
    scorer = TEGScorer(space, "embedded", TEGConfig(repeat=1, batch_size=16), device="cpu", cache=None)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        directions=["minimize", "maximize", "minimize"],
        sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=10),
    )
    study.set_metric_names(["ntk_cond (T)", "regions (E)", "kr_mse (G)"])  # the dashboard's objective names

    def objective(trial: optuna.Trial) -> tuple[float, float, float]:
        params = {edge: trial.suggest_categorical(edge, list(ops)) for edge, ops in space.choices().items()}
        arch = space.from_params(params)
        score = scorer.score(arch)
        values = score.to_dict()  # NaN / inf indicators become None
        attrs = {"arch": space.format(arch), "index": space.index(arch), "bad": bool(score.bad)}
        attrs.update({key: values[key] for key in ("ntk_cond", "regions", "kr_mse")})
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if score.bad:
            raise optuna.TrialPruned(f"bad architecture: {score.reason or 'undefined indicator'}")
        return score.ntk_cond, score.regions, score.kr_mse

    study.optimize(objective, n_trials=k, catch=())
    print(f"demo study {name!r}: {k} trials in {storage}")
    return study


if __name__ == "__main__":
    sys.exit(main())
