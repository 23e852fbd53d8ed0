"""End to end against a real PostgreSQL: two ``teg-nas search`` workers on one study, and the score
cache filled by two processes at once.

The server is a throw-away one this module starts itself (``initdb`` + ``pg_ctl`` from Debian's
``postgresql`` package, run as the ``postgres`` user when the tests run as root): data in a fresh
temporary folder, listening on 127.0.0.1 only, on a free port, with its Unix socket in that folder.
It is stopped (``pg_ctl stop -m immediate``) and its folder removed whatever the tests do.

Without the PostgreSQL server binaries the tests skip, so the suite runs anywhere; CI (``.ci/run``)
installs them and sets ``TEG_REQUIRE_POSTGRES=1``, which turns that skip into a failure.
"""

from __future__ import annotations

import glob
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Where to look for ``initdb``/``pg_ctl`` first (e.g. ``/usr/lib/postgresql/15/bin``).
BINDIR_ENV = "TEG_PG_BINDIR"
#: Set (to anything but ``0``/empty) to fail instead of skipping when PostgreSQL is missing (CI).
REQUIRE_ENV = "TEG_REQUIRE_POSTGRES"

pytestmark = pytest.mark.slow


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"{reason} (and {REQUIRE_ENV} is set)", pytrace=False)
    pytest.skip(reason)


def _find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: $TEG_PG_BINDIR, Debian's newest
    ``/usr/lib/postgresql/<ver>/bin``, or wherever ``pg_ctl`` is on the PATH."""
    candidates: list[Path] = []
    if os.environ.get(BINDIR_ENV):
        candidates.append(Path(os.environ[BINDIR_ENV]))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    versions.sort(key=lambda p: [int(x) for x in re.findall(r"\d+", Path(p).parent.name)] or [0], reverse=True)
    candidates += [Path(p) for p in versions]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if all(
            (folder / name).is_file() and os.access(folder / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")
        ):
            return folder
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """A running throw-away server: its port, its superuser and password, how to reach it."""

    bindir: Path
    root: Path
    port: int
    user: str
    password: str
    prefix: list[str]  # ["runuser", "-u", "postgres", "--"] as root, else []

    def url(self, database: str) -> str:
        # The bare scheme, as the README writes it: teg_plugin picks the installed driver.
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A PostgreSQL client or server program of ``bindir``, as the server's owner, in its folder."""
        command = [*self.prefix, str(self.bindir / args[0]), *args[1:]]
        return subprocess.run(command, cwd=self.root, capture_output=True, text=True, timeout=timeout, check=False)

    def create_database(self, name: str) -> str:
        # Over the Unix socket in the server's folder (trusted for its owner), not TCP.
        result = self.run("createdb", "-h", str(self.root), "-p", str(self.port), "-U", self.user, name)
        assert result.returncode == 0, result.stderr
        return self.url(name)


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = _find_bindir()
    if bindir is None:
        _unavailable(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's 'postgresql' package "
            f"(apt-get install postgresql) or point ${BINDIR_ENV} at their folder"
        )
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'teg-plugin[test]')")
    prefix: list[str] = []
    owner: tuple[int, int] | None = None
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        import pwd

        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no 'postgres' user to run the server as")
        runuser = shutil.which("runuser")
        if runuser is None:
            _unavailable("running as root and 'runuser' is missing (util-linux)")
        prefix = [runuser, "-u", "postgres", "--"]
        owner = (entry.pw_uid, entry.pw_gid)

    # Not pytest's tmp_path: its parents are private to root, and the server's user must reach it.
    # Short, too: the Unix socket path must fit in ~100 characters.
    root = Path(tempfile.mkdtemp(prefix="teg-pg-"))
    server: PostgresServer | None = None
    started = False
    try:
        if owner is not None:
            os.chown(root, *owner)
        password = secrets.token_hex(12)
        pwfile = root / "pwfile"
        pwfile.write_text(password + "\n")
        if owner is not None:
            os.chown(pwfile, *owner)
        server = PostgresServer(bindir, root, 0, "teg", password, prefix)
        init = server.run(
            "initdb",
            "-D",
            str(root / "data"),
            "-U",
            "teg",
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
            timeout=180,
        )
        assert init.returncode == 0, f"initdb failed:\n{init.stdout}\n{init.stderr}"
        pwfile.unlink()
        for attempt in range(5):  # another process may take the free port before the server does
            server.port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {server.port} -c unix_socket_directories={root} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=16MB "
                "-c max_connections=50"
            )
            start = server.run(
                "pg_ctl",
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(root / "data"),
                "-l",
                str(root / "server.log"),
                "-o",
                options,
                timeout=120,
            )
            started = start.returncode == 0 or (root / "data" / "postmaster.pid").exists()
            if start.returncode == 0:
                break
            log = (root / "server.log").read_text(errors="replace") if (root / "server.log").exists() else ""
            if "could not bind" not in log or attempt == 4:
                raise AssertionError(f"pg_ctl start failed:\n{start.stdout}\n{start.stderr}\n{log}")
            server.run("pg_ctl", "stop", "-D", str(root / "data"), "-m", "immediate")
            started = False
        yield server
    finally:
        if started and server is not None:
            server.run("pg_ctl", "stop", "-D", str(root / "data"), "-m", "immediate", "-w", "-t", "60")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A SQLAlchemy URL of a fresh, empty database of the module's server, one per test."""
    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:50]
    return postgres_server.create_database(name)


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_server_listens_on_localhost_only(postgres_server: PostgresServer, pg_url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            listen = conn.execute(sa.text("SHOW listen_addresses")).scalar_one()
            port = conn.execute(sa.text("SHOW port")).scalar_one()
    finally:
        engine.dispose()
    assert (listen, int(port)) == ("127.0.0.1", postgres_server.port)


def test_two_search_workers_share_one_postgres_study(pg_url: str) -> None:
    import optuna
    from optuna.trial import TrialState

    from teg_plugin.optuna import create_storage

    budget = 6
    command = [
        sys.executable,
        "-m",
        "teg_plugin.cli",
        "search",
        "--dataset",
        "synthetic",
        "--repeat",
        "1",
        "--batch-size",
        "8",
        "--no-cache",
        "--quiet",
        "--format",
        "json",
        "--budget",
        str(budget),
        "--storage",
        pg_url,
        "--study-name",
        "x",
        "--device",
        "cpu",
    ]
    workers = [
        subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = []
    try:
        for process in workers:
            outputs.append(process.communicate(timeout=240))
    finally:
        for process in workers:
            if process.poll() is None:
                process.kill()
                process.communicate()
    for process, (out, err) in zip(workers, outputs):
        assert process.returncode == 0, err
        summary = json.loads(out)
        assert summary["study_name"] == "x" and summary["storage"] == pg_url
        assert summary["n_trials"] == budget

    storage = create_storage(pg_url, heartbeat_interval=None)
    trials = optuna.load_study(study_name="x", storage=storage).get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == budget, [(t.number, t.state.name) for t in trials]
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    numbers = [t.number for t in trials]
    assert len(set(numbers)) == len(numbers)
    no_arch = [
        (t.number, t.state.name, t.user_attrs) for t in trials if not t.user_attrs.get("arch", "").startswith("|")
    ]
    assert not no_arch
    assert any(t.state == TrialState.COMPLETE for t in trials)


_CACHE_WORKER = textwrap.dedent(
    """
    import json, sys
    from teg_plugin.config import TEGConfig
    from teg_plugin.scorer import TEGScorer
    config = TEGConfig(repeat=1, batch_size=8, regions_batch_size=64, regions_batches=2)
    scorer = TEGScorer("nas-bench-201", "synthetic", config, device="cpu", cache=sys.argv[1])
    scorer.score_many([scorer.space.arch_at(int(i)) for i in sys.argv[2].split(",")])
    print(json.dumps({"n_measured": scorer.n_measured}))
    """
)


def test_two_processes_fill_one_postgres_score_cache(pg_url: str) -> None:
    import sqlalchemy as sa

    from teg_plugin.cache import ScoreCache
    from teg_plugin.config import TEGConfig
    from teg_plugin.scorer import TEGScorer

    # A fresh database: both processes also race to create the table. The shared archs come first,
    # so both measure them at the same time and race to insert the same keys.
    sets = ([1, 100, 200, 0, 2], [1, 100, 200, 300, 6111])
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CACHE_WORKER, pg_url, ",".join(map(str, s))],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in sets
    ]
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=240))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc, (_out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
    measured = [json.loads(out)["n_measured"] for out, _ in outputs]

    config = TEGConfig(repeat=1, batch_size=8, regions_batch_size=64, regions_batches=2)
    scorer = TEGScorer("nas-bench-201", "synthetic", config, device="cpu", cache=pg_url)
    space = scorer.space
    expected = {space.format(space.canonical(space.arch_at(i))) for s in sets for i in s}
    assert len(expected) == 7
    assert all(2 <= m <= 5 for m in measured) and sum(measured) >= 7
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT arch, COUNT(*) FROM teg_scores GROUP BY arch")).all()
    finally:
        engine.dispose()
    assert dict(rows) == {text: 1 for text in expected}  # every arch once: none lost, none doubled
    assert len(ScoreCache(pg_url)) == 7
    union = sorted({i for s in sets for i in s})
    cached = scorer.score_many([space.arch_at(i) for i in union])
    assert scorer.n_measured == 0  # every row is complete and readable
    fresh = TEGScorer("nas-bench-201", "synthetic", config, device="cpu", cache=None).score_many(
        [space.arch_at(i) for i in union[:2]]
    )
    for x, y in zip(fresh, cached):
        assert x.ntk_cond == pytest.approx(y.ntk_cond, rel=1e-12) and x.regions == y.regions


def test_killed_search_workers_on_postgres_lose_and_duplicate_nothing(
    pg_url: str, tmp_path: Path, capsys, run_short_faults
) -> None:
    """The short fault-injection run (tests/test_faults.py) on PostgreSQL: workers SIGKILLed mid-transaction."""
    code, report, err = run_short_faults(capsys, pg_url, tmp_path)
    assert code == 0 and report["ok"] is True, (report, err)
    assert report["kills"] == 2 and report["counted"] == 16 and report["duplicates"] == 0 and report["lost"] == 0
    assert report["bad_attributes"] == 0 and report["cache_integrity"] == "ok"
