"""``teg-nas plot``: the TEG figures of an Optuna study as standalone files."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from teg_plugin._database import journal_path

if TYPE_CHECKING:
    import optuna


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "plot",
        help="write the TEG landscape and search-progress figures of a study",
        description=(
            "Write the TEG landscape (3-D and 2-D) and the search progress of an Optuna study as standalone "
            "files (HTML embeds plotly.js, so it opens offline). Reads only the trials' TEG user attrs."
        ),
    )
    parser.add_argument(
        "--storage",
        required=True,
        metavar="URL",
        help="Optuna storage URL (sqlite:///teg.sqlite) or a SQLite file path",
    )
    parser.add_argument(
        "--study-name", default=None, metavar="NAME", help="study to plot (default: the only study in the storage)"
    )
    parser.add_argument(
        "--out", default=".", metavar="DIR", help="output folder, created if missing (default: current folder)"
    )
    parser.add_argument(
        "--format",
        choices=("html", "png"),
        default="html",
        help="html (standalone, offline) or png (needs the kaleido package and a Chrome) (default: %(default)s)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from teg_plugin.plots import study_figures

    if args.format == "png":
        try:
            import kaleido  # noqa: F401
        except ImportError:
            raise ValueError(
                "--format png needs the kaleido package (pip install kaleido); use --format html"
            ) from None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder (created if missing)")
    study = load_study(args.storage, args.study_name)
    figures = study_figures(study)
    out.mkdir(parents=True, exist_ok=True)
    stem = _safe(study.study_name)
    for graph_id, fig in figures.items():
        path = out / f"{stem}_{graph_id}.{args.format}"
        if args.format == "html":
            fig.write_html(path, include_plotlyjs=True, full_html=True)
        else:
            fig.write_image(path, width=1400, height=fig.layout.height or 800)
        print(path)
    return 0


def load_study(storage: str, study_name: str | None) -> optuna.Study:
    """Open an existing study; clear ``ValueError``/``FileNotFoundError`` when it or the storage is missing.

    ``storage`` is an Optuna storage URL or a path to a SQLite file. A SQLite file that does not exist
    is an error (Optuna would silently create an empty one). Without ``study_name`` the storage must
    hold exactly one study.
    """
    import optuna

    from teg_plugin._database import error_text
    from teg_plugin.optuna import create_storage

    url = storage_url(storage)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opened = create_storage(url, heartbeat_interval=None)  # reading only: no heartbeat
    try:
        names = optuna.get_all_study_names(storage=opened)
    except Exception as err:  # noqa: BLE001  (SQLAlchemy/driver errors vary by backend)
        raise ValueError(f"cannot open storage {storage!r}: {error_text(err)}") from err
    if not names:
        raise ValueError(f"storage {storage!r} holds no study")
    if study_name is None:
        if len(names) > 1:
            raise ValueError(
                f"storage {storage!r} holds several studies; pick one with --study-name: {', '.join(sorted(names))}"
            )
        study_name = names[0]
    elif study_name not in names:
        raise ValueError(f"no study {study_name!r} in {storage!r}; available: {', '.join(sorted(names))}")
    return optuna.load_study(study_name=study_name, storage=opened)


def storage_url(storage: str) -> str:
    """``storage`` as a URL (or ``journal:PATH``): a plain path becomes ``sqlite:///<absolute path>``; a
    missing SQLite or journal file raises."""
    journal = journal_path(storage)
    if journal is not None:
        if not Path(journal).expanduser().is_file():
            raise FileNotFoundError(f"no such journal file: {journal} (from {storage})")
        return storage
    if "://" not in storage:
        path = Path(storage).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"no such SQLite file: {storage}")
        return f"sqlite:///{path.resolve()}"
    if storage.startswith("sqlite:///"):
        target = storage[len("sqlite:///") :].split("?", 1)[0]
        if target and target != ":memory:" and not os.path.isfile(target):
            raise FileNotFoundError(f"no such SQLite file: {target} (from {storage})")
    return storage


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "study"
