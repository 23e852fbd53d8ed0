"""Show a TEG-NAS study in `optuna-dashboard <https://github.com/optuna/optuna-dashboard>`_.

:func:`publish_to_dashboard` stores the TEG figures of :mod:`teg_plugin.plots` in the study (they
appear on the study's overview page of the dashboard) and a Markdown note on the best trial saying
which architecture TEG-NAS picked and why. Open the dashboard with::

    optuna-dashboard sqlite:///teg.sqlite --host 127.0.0.1 --port 8080

or :func:`serve_dashboard` from Python. optuna-dashboard is an optional dependency:
``pip install "teg-plugin[dashboard]"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from teg_plugin.scores import INDICATORS, PAPER_RULE, RankRule

if TYPE_CHECKING:
    import optuna
    import plotly.graph_objects as go

    from teg_plugin.plots import RankedRecord

__all__ = ["Published", "best_trial_note", "publish_to_dashboard", "serve_dashboard"]

_INSTALL_HINT = 'optuna-dashboard is not installed; install it with: pip install "teg-plugin[dashboard]"'

_INDICATOR_ROWS = {
    "ntk_cond": ("T — trainability", "NTK condition number κ", "lower"),
    "regions": ("E — expressivity", "linear regions", "higher"),
    "kr_mse": ("G — generalization", "kernel-regression MSE", "lower"),
}


@dataclass(frozen=True)
class Published:
    """What :func:`publish_to_dashboard` wrote.

    Attributes:
        graph_object_ids: the ids the figures were saved under (the dashboard shows one plot each).
        best_trial_number: the trial the note is on (the first complete evaluation of the best architecture).
        best_arch: that architecture's text.
        note: the Markdown note written (``None`` with ``note=False``).
    """

    graph_object_ids: tuple[str, ...]
    best_trial_number: int | None
    best_arch: str | None
    note: str | None


def _require_dashboard() -> Any:
    try:
        import optuna_dashboard
    except ImportError as err:
        raise ImportError(_INSTALL_HINT) from err
    return optuna_dashboard


def publish_to_dashboard(
    study: optuna.Study,
    *,
    figures: dict[str, go.Figure] | list[go.Figure] | None = None,
    note: bool = True,
    study_note: bool = False,
    use_final_choice: bool = True,
) -> Published:
    """Save TEG figures and a best-architecture note to ``study`` for optuna-dashboard.

    Args:
        study: a study whose trials carry the TEG user attrs (``arch``, ``index``, ``ntk_cond``,
            ``regions``, ``kr_mse``, ``bad``).
        figures: the plotly figures to save: a dict id -> figure (each id must be a valid HTML id;
            saving again under the same id replaces the figure), or a list (saved as
            ``teg-figure-0``, ``teg-figure-1``, ...). ``None``: the 3-D and 2-D TEG landscapes and the
            search progress sized for the dashboard's plot cards
            (:func:`teg_plugin.plots.study_figures` with ``for_dashboard=True``), under
            :data:`~teg_plugin.plots.FIGURE_IDS`.
        note: write the Markdown note of :func:`best_trial_note` on the best trial: the first
            complete trial (else the first trial) that evaluated the architecture with the lowest
            TEG rank-sum over the study's scored trials (:func:`teg_plugin.plots.best_record`).
        study_note: also write that note as the study's note (replacing any study note), which
            the dashboard shows on the study's overview page.
        use_final_choice: the note is on the study's final choice (:data:`~teg_plugin.optuna.FINAL_CHOICE_ATTR`)
            when it has a current one; ``False``: on the rank-sum winner.

    Returns:
        What was written (:class:`Published`).

    Raises:
        ImportError: optuna-dashboard is missing (the message says how to install it).
        ValueError: no trial carries TEG user attrs.
    """
    dashboard = _require_dashboard()
    from teg_plugin.optuna import current_final_choice
    from teg_plugin.optuna._attrs import describe_score_attrs, study_rule
    from teg_plugin.plots import best_record, rank_records, records_from_study, study_figures

    records = records_from_study(study)
    if not records:
        raise ValueError(f"study {study.study_name!r} has no TEG trials ({describe_score_attrs()})")
    rule = study_rule(study)
    if figures is None:
        figures = study_figures(records, for_dashboard=True, rule=rule)
    items = (
        list(figures.items()) if isinstance(figures, dict) else [(f"teg-figure-{i}", f) for i, f in enumerate(figures)]
    )
    ids = []
    for graph_id, fig in items:
        ids.append(dashboard.save_plotly_graph_object(study, fig, graph_object_id=graph_id))

    ranked = rank_records(records, rule)
    final = current_final_choice(study) if use_final_choice else None
    best = best_record(ranked, arch=None if final is None else final["pick"])
    text = None
    if best is not None and (note or study_note):
        text = best_trial_note(ranked, study_name=study.study_name, final_choice=final, rule=rule)
        if note:
            dashboard.save_note(_trial_handle(study, best.order), text)
        if study_note:
            dashboard.save_note(study, text)
    return Published(
        graph_object_ids=tuple(ids),
        best_trial_number=None if best is None else best.order,
        best_arch=None if best is None else best.arch,
        note=text,
    )


def best_trial_note(
    ranked: list[RankedRecord],
    *,
    study_name: str | None = None,
    final_choice: dict[str, Any] | None = None,
    rule: RankRule | None = None,
) -> str:
    """The Markdown note on the best architecture of ``ranked`` (:func:`teg_plugin.plots.rank_records`,
    ranked under ``rule``, default the paper's): the pick of ``final_choice`` (a study's
    :data:`~teg_plugin.optuna.FINAL_CHOICE_ATTR`) when given."""
    from teg_plugin.plots import best_record

    rule = PAPER_RULE if rule is None else rule
    total_weight = sum(weight for _, weight in rule.weights)

    best = best_record(ranked, arch=None if final_choice is None else final_choice["pick"])
    if best is None:
        raise ValueError("every architecture is bad: there is no best one")
    distinct = {r.arch: r for r in reversed(ranked)}  # first evaluation of each arch
    n_bad = sum(1 for r in distinct.values() if r.record.is_bad)
    n_good = len(distinct) - n_bad
    record = best.record
    lines = [
        "## TEG-NAS pick" + (f" of study `{study_name}`" if study_name else ""),
        "",
        f"**Architecture:** `{record.arch}`",
        "",
    ]
    if record.index is not None:
        lines += [f"**NAS-Bench-201 index:** {record.index}", ""]
    lines += [
        f"**TEG rank:** {best.rank} of {len(distinct)} scored architectures "
        f"({n_good} good, {n_bad} flagged bad) — {'TEG rank-sum' if rule == PAPER_RULE else 'rank-sum'} "
        f"**{best.rank_sum:g}** (lowest possible {total_weight:g}, highest possible {total_weight * n_good:g}).",
        "",
        "| indicator | measure | better | value | rank among the good ones |",
        "|---|---|---|---|---|",
    ]
    for key, rank in zip(INDICATORS, best.indicator_ranks, strict=True):
        name, measure, better = _INDICATOR_ROWS[key]
        value = getattr(record, key)
        lines.append(f"| {name} | {measure} | {better} | {_fmt(value)} | {rank:g} of {n_good} |")
    if rule.extra_terms:
        values = dict(record.extra)
        shown = ", ".join(f"{term} {_fmt(values.get(term))}" for term in rule.extra_terms)
        lines += ["", f"**The rank rule's other terms** (rule `{rule}`): {shown}."]
    evaluated = [r.order for r in ranked if r.arch == record.arch]
    lines += [
        "",
        f"Evaluated at trial {evaluated[0]}"
        + (f" (again at trial(s) {', '.join(map(str, evaluated[1:]))})." if len(evaluated) > 1 else "."),
        "",
        _how_chosen(rule),
    ]
    if final_choice is not None:
        lines += ["", *_final_choice_lines(final_choice)]
    return "\n".join(lines) + "\n"


def _how_chosen(rule: RankRule) -> str:
    """The note's account of the ranking: the paper's rank-sum, or ``rule``'s weighted sum."""
    if rule == PAPER_RULE:
        how = (
            "ranked on each indicator separately (κ ascending, linear regions descending, kernel-regression "
            "MSE ascending; ties share the average rank); the three ranks were summed"
        )
    else:
        how = (
            f"ranked on each term of the study's rank rule `{rule}` separately (κ and kernel-regression MSE "
            "ascending, linear regions, the parameter count and every zero-cost proxy descending; ties share the "
            "average rank; an undefined proxy value ranks last); the ranks were summed with the rule's weights"
        )
    return (
        f"**How it was chosen:** every distinct architecture evaluated in the study was {how}, and the lowest "
        "rank-sum wins (ties: the first evaluated). Architectures with an undefined indicator are flagged bad and "
        "rank last. Training-free: no accuracy was used."
    )


def _final_choice_lines(final: dict[str, Any]) -> list[str]:
    """The note's account of a final choice: its candidates, their rank-sums per seed and the pick."""
    seeds = final["seeds"]
    lines = [
        f"**Final choice:** the study's {len(final['candidates'])} best distinct architectures were scored again "
        f"under {len(seeds) - 1} further score seeds (new inputs and initial weights; seeds {', '.join(map(str, seeds))}, "
        f"the search's first). Under each seed they were ranked among themselves (rule `{final['rule']}`), and the "
        "lowest mean rank-sum was picked.",
        "",
        "| search rank | architecture | mean rank-sum | rank-sum per seed |",
        "|---|---|---|---|",
    ]
    for c in final["candidates"]:
        mark = " **(pick)**" if c["arch"] == final["pick"] else ""
        per_seed = ", ".join(_fmt(v) for v in c["rank_sums"])
        lines.append(f"| {c['search_rank']} | `{c['arch']}`{mark} | {_fmt(c['mean_rank_sum'])} | {per_seed} |")
    return lines


def serve_dashboard(storage_url: str, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Run optuna-dashboard on ``storage_url`` at ``http://host:port/`` until interrupted (blocking).

    The same as ``optuna-dashboard STORAGE_URL --host HOST --port PORT``; uses the development
    ``wsgiref`` server of :func:`optuna_dashboard.run_server`. For production use
    :func:`optuna_dashboard.wsgi` under a WSGI server (e.g. gunicorn).
    """
    dashboard = _require_dashboard()
    print(f"optuna-dashboard on http://{host}:{port}/dashboard/ (Ctrl-C to stop)", flush=True)
    dashboard.run_server(storage_url, host=host, port=port)


def _trial_handle(study: optuna.Study, number: int) -> optuna.trial.Trial:
    """An ``optuna.Trial`` for the finished trial ``number``, for :func:`optuna_dashboard.save_note`.

    The trial is opened through a copy of the study with a ``RandomSampler``, so that ``study``'s own
    sampler never sees the extra ``before_trial`` call that constructing a ``Trial`` makes.
    """
    import optuna

    from teg_plugin.optuna._compat import open_trial, storage_of

    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    neutral = optuna.load_study(
        study_name=study.study_name, storage=storage_of(study), sampler=optuna.samplers.RandomSampler()
    )
    return open_trial(neutral, frozen)


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "undefined"
    return f"{value:.6g}"
