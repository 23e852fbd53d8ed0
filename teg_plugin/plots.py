"""Plotly figures of a TEG-NAS search: the TEG landscape, search progress and pruning rounds.

Every figure is built from *records*: one evaluated architecture each, with its three TEG indicators
(``ntk_cond`` = T, ``regions`` = E, ``kr_mse`` = G), whether it was flagged ``bad``, and its place
``order`` in the search trajectory. :func:`records_from_study` reads them from an Optuna study (trial
user attrs ``arch``, ``index``, ``ntk_cond``, ``regions``, ``kr_mse``, ``bad``; trial number = order);
:func:`as_records` also accepts dicts, :class:`~teg_plugin.scores.TEGScore` objects and the
``RankedArch`` results of :meth:`TEGScorer.rank <teg_plugin.scorer.TEGScorer.rank>`.

Ranks are the rank-sum under a rank rule (the paper's TEG rank-sum unless ``rule=`` says otherwise;
a study's own rule for a study, see :mod:`teg_plugin.scores`) over the **distinct** architectures
of the records (an architecture evaluated twice counts once; its first evaluation gives its values).
Rank 1 is best; bad architectures rank after every good one. No accuracy is ever read.

Only plotly (and numpy/scipy through :mod:`teg_plugin.scores`) is imported here; Optuna is imported
lazily by :func:`records_from_study`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from teg_plugin.scores import (
    INDICATORS,
    RankRule,
    TEGScore,
    final_ranks,
    first_occurrences,
    indicator_ranks,
    rank_sums,
)

if TYPE_CHECKING:
    import optuna

__all__ = [
    "FIGURE_IDS",
    "RankedRecord",
    "TEGRecord",
    "as_records",
    "pruning_rounds",
    "rank_records",
    "records_from_study",
    "search_progress",
    "study_figures",
    "teg_landscape",
    "teg_landscape_2d",
]

#: The figures :func:`study_figures` builds, by the id they are saved / written under.
FIGURE_IDS: tuple[str, ...] = ("teg-landscape", "teg-landscape-2d", "teg-search-progress")

#: Axis titles of the three TEG dimensions.
AXIS_TITLES: dict[str, str] = {
    "ntk_cond": "log10 κ (NTK condition number, T; lower = better)",
    "regions": "linear regions (E; higher = better)",
    "kr_mse": "kernel-regression MSE (G; lower = better)",
}
_SHORT = {"ntk_cond": "log10 κ", "regions": "regions", "kr_mse": "KR MSE"}

_COLORSCALE = "Viridis_r"  # rank 1 (best) is bright yellow, the worst ranks dark
_BAD_COLOR = "rgb(140,140,140)"
_BEST_COLOR = "crimson"
_LINE_COLOR = "rgba(90,90,90,0.55)"


@dataclass(frozen=True)
class TEGRecord:
    """One evaluated architecture.

    Attributes:
        arch: the architecture's text form.
        ntk_cond, regions, kr_mse: the TEG indicators; ``None`` (or NaN) when undefined.
        bad: the architecture was flagged bad (also implied by an undefined indicator).
        index: its NAS-Bench-201 index, when known.
        order: its place in the search trajectory (the Optuna trial number).
        state: the Optuna trial state name (``"COMPLETE"``, ``"PRUNED"``, ...), when known.
        extra: ``(term, value)`` pairs of a rank rule's extra terms (its ``params`` and proxies;
            NaN where undefined), which :func:`rank_records` ranks by when its rule names them.
    """

    arch: str
    ntk_cond: float | None
    regions: float | None
    kr_mse: float | None
    bad: bool = False
    index: int | None = None
    order: int = 0
    state: str | None = None
    extra: tuple[tuple[str, float], ...] = ()

    @property
    def is_bad(self) -> bool:
        """Flagged bad, or an indicator is missing / not finite / a non-positive κ."""
        if self.bad:
            return True
        values = [self.ntk_cond, self.regions, self.kr_mse]
        if any(v is None or not math.isfinite(v) for v in values):
            return True
        return self.ntk_cond <= 0  # type: ignore[operator]  # log10 κ is undefined

    def score(self) -> TEGScore:
        """The record as a :class:`TEGScore` (undefined values become NaN)."""
        values = (self.ntk_cond, self.regions, self.kr_mse)
        ntk_cond, regions, kr_mse = (math.nan if v is None else float(v) for v in values)
        return TEGScore(ntk_cond, regions, kr_mse, bad=self.is_bad)

    def value(self, key: str) -> float | None:
        """The plotted value of indicator ``key`` (``log10 κ`` for ``ntk_cond``), ``None`` if undefined."""
        value = getattr(self, key)
        if value is None or not math.isfinite(value):
            return None
        if key == "ntk_cond":
            return math.log10(value) if value > 0 else None
        return float(value)


@dataclass(frozen=True)
class RankedRecord:
    """A record with its architecture's TEG rank-sum and rank among the distinct architectures."""

    record: TEGRecord
    rank_sum: float  # +inf when bad
    rank: int  # 1 = best
    n_archs: int  # distinct architectures ranked
    indicator_ranks: tuple[float, float, float]  # per-indicator ranks (NaN when bad)

    @property
    def order(self) -> int:
        return self.record.order

    @property
    def arch(self) -> str:
        return self.record.arch

    @property
    def is_bad(self) -> bool:
        return self.record.is_bad


# --------------------------------------------------------------------------------------- records


def as_records(items: Iterable[Any]) -> list[TEGRecord]:
    """Turn records, dicts, ``TEGScore`` objects or ``RankedArch`` results into :class:`TEGRecord`.

    A dict may hold ``arch`` (or ``text``), ``index``, ``ntk_cond``, ``regions``, ``kr_mse``, ``bad``
    and ``order``. A missing ``order`` is the item's position; a missing ``arch`` is ``"#<position>"``.
    """
    records = []
    for position, item in enumerate(items):
        if isinstance(item, TEGRecord):
            records.append(item)
            continue
        if isinstance(item, RankedRecord):
            records.append(item.record)
            continue
        if isinstance(item, Mapping):
            get = item.get
        else:
            score = getattr(item, "score", None)
            source = score if isinstance(score, TEGScore) else item

            def get(key: str, default: Any = None, _item: Any = item, _source: Any = source) -> Any:
                if key in INDICATORS or key == "bad":
                    return getattr(_source, key, default)
                return getattr(_item, key, default)

        arch = get("arch")
        if arch is None or (not isinstance(arch, str) and get("text") is not None):
            arch = get("text", arch)
        index = get("index")
        order = get("order")
        records.append(
            TEGRecord(
                arch=f"#{position}" if arch is None else str(arch),
                ntk_cond=_float_or_none(get("ntk_cond")),
                regions=_float_or_none(get("regions")),
                kr_mse=_float_or_none(get("kr_mse")),
                bad=bool(get("bad", False)),
                index=None if index is None else int(index),
                order=position if order is None else int(order),
            )
        )
    return records


def records_from_study(study: optuna.Study) -> list[TEGRecord]:
    """The TEG records of ``study``'s trials, in trial-number order.

    Reads only the TEG user attrs ``arch``, ``index``, ``ntk_cond``, ``regions``, ``kr_mse`` and ``bad``
    and the values of the extra terms of the study's rank rule (``extra``; ``proxy_<name>``,
    ``complexity``), never an accuracy, through :func:`teg_plugin.optuna._attrs.teg_trials`: a trial counts once it
    has ``arch``, the three indicators (``None`` = undefined) and ``bad``, and failed trials are left
    out (a trial retried after a crash keeps its attributes in the retry). Complete and pruned trials
    (the TEG objective prunes bad architectures) and running ones are kept. ``order`` is the trial number.
    """
    # These import optuna: only here, never with this module.
    from teg_plugin.optuna._attrs import rule_extra, study_rule, teg_trials

    trials = teg_trials(study)
    extra = rule_extra([trial.user_attrs for trial, _ in trials], study_rule(study)) or [{} for _ in trials]
    return [
        TEGRecord(
            arch=teg.arch,
            ntk_cond=teg.ntk_cond,
            regions=teg.regions,
            kr_mse=teg.kr_mse,
            bad=teg.bad,
            index=teg.index,
            order=trial.number,
            state=trial.state.name,
            extra=tuple(values.items()),
        )
        for (trial, teg), values in zip(trials, extra, strict=True)
    ]


def rank_records(scores_or_records: Iterable[Any], rule: RankRule | None = None) -> list[RankedRecord]:
    """Every record (sorted by ``order``) with its architecture's rank among the distinct ones, by
    rank-sum under ``rule`` (default: the paper's; the values of its extra terms from each record's
    ``extra``, NaN where a record has none)."""
    records = sorted(as_records(scores_or_records), key=lambda r: r.order)
    distinct = [records[i] for i in first_occurrences([r.arch for r in records])]
    scores = [r.score() for r in distinct]
    terms = () if rule is None else rule.extra_terms
    extra = [{term: dict(r.extra).get(term, math.nan) for term in terms} for r in distinct] if terms else None
    sums = rank_sums(scores, rule, extra)
    positions = final_ranks(scores, rule, extra)
    per_indicator = indicator_ranks(scores)
    by_arch = {
        r.arch: (float(s), int(p), tuple(float(x) for x in row))
        for r, s, p, row in zip(distinct, sums, positions, per_indicator, strict=True)
    }
    return [RankedRecord(r, *by_arch[r.arch][:2], len(distinct), by_arch[r.arch][2]) for r in records]  # type: ignore[arg-type]


def best_record(ranked: Sequence[RankedRecord], arch: str | None = None) -> RankedRecord | None:
    """The record of the lowest rank-sum good architecture, or of ``arch`` when given and evaluated
    (a final choice's pick); ``None`` if none is good.

    Among its evaluations: the first complete one (state ``"COMPLETE"``) if any, else the first.
    Among equal rank-sums, the architecture evaluated first wins (as :func:`teg_plugin.scores.best_index`).
    """
    good = [r for r in ranked if not r.record.is_bad]
    if not good:
        return None
    picked = [r for r in good if r.arch == arch]
    first = picked[0] if picked else min(good, key=lambda r: (r.rank_sum, r.record.order))
    same = [r for r in ranked if r.arch == first.arch]
    return next((r for r in same if r.record.state == "COMPLETE"), first)


# --------------------------------------------------------------------------------------- landscape


def teg_landscape(
    scores_or_records: Iterable[Any],
    *,
    trajectory: bool = True,
    title: str = "TEG landscape",
    rule: RankRule | None = None,
) -> go.Figure:
    """The TEG landscape: each evaluated architecture at (log10 κ, regions, KR MSE), in 3-D.

    Traces (by ``name``): ``"trajectory"`` (with ``trajectory=True``: a line through every record in
    evaluation order), ``"architectures"`` (good ones, coloured by TEG rank, 1 = best, with a
    colorbar), ``"bad"`` (grey x markers, present when any is bad; an undefined coordinate is put at
    the worst edge of that axis, just beyond the good points) and ``"best"`` (the lowest rank-sum
    architecture; 3-D plotly has no star symbol, so a large diamond labelled ★). Hovering a point
    shows its architecture, index, the three values, rank and rank-sum. Ranks are under ``rule``
    (:func:`rank_records`).
    """
    ranked = rank_records(scores_or_records, rule)
    coords = _coordinates(ranked)
    good = [r for r in ranked if not r.record.is_bad]
    bad = [r for r in ranked if r.record.is_bad]
    best = best_record(ranked)
    fig = go.Figure()
    if trajectory and ranked:
        xs, ys, zs = zip(*(coords[id(r)] for r in ranked), strict=True)
        fig.add_trace(
            go.Scatter3d(
                x=xs,
                y=ys,
                z=zs,
                mode="lines",
                name="trajectory",
                line={"color": _LINE_COLOR, "width": 3},
                customdata=[[r.order] for r in ranked],
                hovertemplate="trial %{customdata[0]}<extra>trajectory</extra>",
            )
        )
    if good:
        fig.add_trace(
            go.Scatter3d(
                **_xyz(good, coords),
                mode="markers",
                name="architectures",
                marker={
                    "size": 5,
                    "color": [r.rank for r in good],
                    "colorscale": _COLORSCALE,
                    "cmin": 1,
                    "cmax": max(r.n_archs for r in good),
                    "colorbar": {"title": {"text": "TEG rank<br>(1 = best)"}},
                    "line": {"width": 0},
                },
                customdata=_customdata(good),
                hovertemplate=_HOVER,
            )
        )
    if bad:
        fig.add_trace(
            go.Scatter3d(
                **_xyz(bad, coords),
                mode="markers",
                name="bad",
                marker={"size": 6, "color": _BAD_COLOR, "symbol": "x"},
                customdata=_customdata(bad),
                hovertemplate=_HOVER,
            )
        )
    if best is not None:
        fig.add_trace(
            go.Scatter3d(
                **_xyz([best], coords),
                mode="markers+text",
                name="best",
                text=["★ best"],
                textposition="top center",
                textfont={"color": _BEST_COLOR},
                marker={"size": 9, "color": _BEST_COLOR, "symbol": "diamond", "line": {"color": "black", "width": 1}},
                customdata=_customdata([best]),
                hovertemplate=_HOVER,
            )
        )
    fig.update_layout(
        title={"text": _title(title, ranked)},
        scene={
            "xaxis": {"title": {"text": _SHORT["ntk_cond"]}},
            "yaxis": {"title": {"text": _SHORT["regions"]}},
            "zaxis": {"title": {"text": _SHORT["kr_mse"]}},
        },
        legend={"x": 0, "y": 1},
        margin={"l": 0, "r": 0, "t": 50, "b": 0},
    )
    return fig


def teg_landscape_2d(
    scores_or_records: Iterable[Any],
    *,
    trajectory: bool = True,
    title: str = "TEG landscape (2-D projections)",
    columns: int = 3,
    rule: RankRule | None = None,
) -> go.Figure:
    """The landscape as three 2-D panels: κ–regions, κ–MSE, regions–MSE (κ as log10 κ).

    Each panel has the traces of :func:`teg_landscape` (``"trajectory"``, ``"architectures"``,
    ``"bad"``, ``"best"`` — here a real star), with ``legendgroup`` linking the panels; panel ``k``'s
    traces use axes ``x{k}``/``y{k}`` (``x``/``y`` for the first). ``columns=3`` puts the panels in
    one row; ``columns=2`` in a 2×2 grid (for narrow places such as an optuna-dashboard card).
    Ranks are under ``rule`` (:func:`rank_records`).
    """
    if columns not in (2, 3):
        raise ValueError(f"columns must be 2 or 3, got {columns}")
    ranked = rank_records(scores_or_records, rule)
    coords = _coordinates(ranked)
    good = [r for r in ranked if not r.record.is_bad]
    bad = [r for r in ranked if r.record.is_bad]
    best = best_record(ranked)
    pairs = [(0, 1), (0, 2), (1, 2)]
    keys = list(INDICATORS)
    rows = 1 if columns == 3 else 2
    fig = make_subplots(
        rows=rows,
        cols=columns,
        horizontal_spacing=0.08 if columns == 3 else 0.14,
        vertical_spacing=0.2,
        subplot_titles=[f"{_SHORT[keys[a]]} vs {_SHORT[keys[b]]}" for a, b in pairs],
    )
    for panel, (a, b) in enumerate(pairs):
        first = panel == 0
        row, col = divmod(panel, columns)
        row, col = row + 1, col + 1

        def xy(group: Sequence[RankedRecord], a: int = a, b: int = b) -> dict[str, list[float]]:
            return {"x": [coords[id(r)][a] for r in group], "y": [coords[id(r)][b] for r in group]}

        if trajectory and ranked:
            fig.add_trace(
                go.Scatter(
                    **xy(ranked),
                    mode="lines",
                    name="trajectory",
                    legendgroup="trajectory",
                    showlegend=first,
                    line={"color": _LINE_COLOR, "width": 1.5},
                    customdata=[[r.order] for r in ranked],
                    hovertemplate="trial %{customdata[0]}<extra>trajectory</extra>",
                ),
                row=row,
                col=col,
            )
        if good:
            fig.add_trace(
                go.Scatter(
                    **xy(good),
                    mode="markers",
                    name="architectures",
                    legendgroup="architectures",
                    showlegend=first,
                    marker={
                        "size": 8,
                        "color": [r.rank for r in good],
                        "colorscale": _COLORSCALE,
                        "cmin": 1,
                        "cmax": max(r.n_archs for r in good),
                        "showscale": first,
                        "colorbar": {"title": {"text": "TEG rank<br>(1 = best)"}, "x": 1.02},
                        "line": {"color": "white", "width": 0.5},
                    },
                    customdata=_customdata(good),
                    hovertemplate=_HOVER,
                ),
                row=row,
                col=col,
            )
        if bad:
            fig.add_trace(
                go.Scatter(
                    **xy(bad),
                    mode="markers",
                    name="bad",
                    legendgroup="bad",
                    showlegend=first,
                    marker={"size": 8, "color": _BAD_COLOR, "symbol": "x"},
                    customdata=_customdata(bad),
                    hovertemplate=_HOVER,
                ),
                row=row,
                col=col,
            )
        if best is not None:
            fig.add_trace(
                go.Scatter(
                    **xy([best]),
                    mode="markers",
                    name="best",
                    legendgroup="best",
                    showlegend=first,
                    marker={"size": 16, "color": _BEST_COLOR, "symbol": "star", "line": {"color": "black", "width": 1}},
                    customdata=_customdata([best]),
                    hovertemplate=_HOVER,
                ),
                row=row,
                col=col,
            )
        fig.update_xaxes(title_text=_SHORT[keys[a]], row=row, col=col)
        fig.update_yaxes(title_text=_SHORT[keys[b]], row=row, col=col)
    if columns == 3:
        fig.update_layout(height=450, legend={"orientation": "h", "y": -0.2})
    else:  # the legend takes the empty fourth cell
        fig.update_layout(height=700, legend={"x": 0.62, "y": 0.36, "xanchor": "left", "yanchor": "top"})
    fig.update_layout(title={"text": _title(title, ranked)}, margin={"t": 80})
    return fig


# --------------------------------------------------------------------------------------- progress


def search_progress(
    scores_or_records: Iterable[Any],
    *,
    title: str = "TEG search progress",
    indicators: bool = True,
    rule: RankRule | None = None,
) -> go.Figure:
    """Best-so-far along the trajectory, against the trial number (four stacked panels).

    Panel 1: each trial's TEG rank among all the distinct architectures of the search (markers,
    ``"rank"``) and the rank of the best architecture found so far (a step line, ``"best so far"``;
    it reaches 1 at the trial that found the final best). Panels 2–4 (with ``indicators=True``):
    each trial's log10 κ, regions and KR MSE (markers) and the best value so far of that indicator
    alone (min κ, max regions, min MSE; step lines). Bad trials are grey x markers in panel 1 only.
    Ranks are under ``rule`` (:func:`rank_records`).
    """
    ranked = rank_records(scores_or_records, rule)
    titles = [
        "TEG rank (1 = best of the search)",
        "T: log10 κ (lower = better)",
        "E: linear regions (higher = better)",
        "G: KR MSE (lower = better)",
    ]
    n_rows = 4 if indicators else 1
    fig = make_subplots(rows=n_rows, cols=1, shared_xaxes=True, vertical_spacing=0.04, subplot_titles=titles[:n_rows])
    good = [r for r in ranked if not r.record.is_bad]
    bad = [r for r in ranked if r.record.is_bad]
    fig.add_trace(
        go.Scatter(
            x=[r.order for r in good],
            y=[r.rank for r in good],
            mode="markers",
            name="rank",
            marker={"size": 6, "color": "steelblue"},
            customdata=_customdata(good),
            hovertemplate=_HOVER,
        ),
        row=1,
        col=1,
    )
    if bad:
        fig.add_trace(
            go.Scatter(
                x=[r.order for r in bad],
                y=[r.rank for r in bad],
                mode="markers",
                name="bad",
                marker={"size": 7, "color": _BAD_COLOR, "symbol": "x"},
                customdata=_customdata(bad),
                hovertemplate=_HOVER,
            ),
            row=1,
            col=1,
        )
    best_so_far: list[int] = []
    current: int | None = None
    for r in ranked:
        current = r.rank if current is None else min(current, r.rank)
        best_so_far.append(current)
    fig.add_trace(
        go.Scatter(
            x=[r.order for r in ranked],
            y=best_so_far,
            mode="lines",
            name="best so far",
            line={"shape": "hv", "color": _BEST_COLOR, "width": 2},
        ),
        row=1,
        col=1,
    )
    for row, key in enumerate(INDICATORS if indicators else (), start=2):
        values = [(r.order, r.record.value(key)) for r in good]
        pts = [(x, y) for x, y in values if y is not None]
        fig.add_trace(
            go.Scatter(
                x=[x for x, _ in pts],
                y=[y for _, y in pts],
                mode="markers",
                name=_SHORT[key],
                marker={"size": 5, "color": "steelblue"},
                showlegend=False,
                hovertemplate=f"trial %{{x}}<br>{_SHORT[key]} %{{y:.4g}}<extra></extra>",
            ),
            row=row,
            col=1,
        )
        running: list[float] = []
        for _, y in pts:
            better = max if key == "regions" else min
            running.append(y if not running else better(running[-1], y))
        fig.add_trace(
            go.Scatter(
                x=[x for x, _ in pts],
                y=running,
                mode="lines",
                name=f"best {_SHORT[key]} so far",
                line={"shape": "hv", "color": _BEST_COLOR, "width": 1.5, "dash": "dot"},
                showlegend=False,
            ),
            row=row,
            col=1,
        )
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    fig.update_xaxes(title_text="trial number (search order)", row=n_rows, col=1)
    fig.update_layout(
        title={"text": _title(title, ranked)},
        height=850 if indicators else 450,
        legend={"orientation": "h", "y": 1.06 if indicators else 1.12, "x": 0.5},
    )
    return fig


# --------------------------------------------------------------------------------------- pruning


def pruning_rounds(strategy_rounds: Any, *, title: str = "TEG supernet pruning") -> go.Figure:
    """Per pruning round (one panel each), the rank-sum of removing each (choice, option).

    ``strategy_rounds`` is :attr:`PruningStrategy.rounds <teg_plugin.strategies.PruningStrategy.rounds>`
    (or the strategy itself). A larger rank-sum means a less important option; on each choice the
    largest is dropped. Per round: a ``"rank-sum"`` bar trace (x = [choice, option] categories; the
    dropped bars red, the others blue), a ``"dropped"`` marker trace above the dropped options, and a
    ``"bad removal"`` trace (grey x at 0) for options whose removal breaks the network (rank-sum
    -inf: always kept unless all are bad).
    """
    rounds = list(getattr(strategy_rounds, "rounds", strategy_rounds))
    if not rounds:
        raise ValueError("no pruning rounds to plot (run the PruningStrategy first)")
    panel_px, gap_px = 260, 170  # the gap leaves room for the rotated two-level tick labels
    height = len(rounds) * (panel_px + gap_px) + 120
    fig = make_subplots(
        rows=len(rounds),
        cols=1,
        vertical_spacing=gap_px / height if len(rounds) > 1 else 0.0,
        subplot_titles=[
            f"round {rnd.index}: dropped " + ", ".join(f"{c}={o}" for c, o in rnd.dropped.items()) for rnd in rounds
        ],
    )
    bad_in_legend = False
    for row, rnd in enumerate(rounds, start=1):
        first = row == 1
        cands = list(rnd.candidates)
        xs = [[c.choice for c in cands], [c.option for c in cands]]
        finite = [c.rank_sum if math.isfinite(c.rank_sum) else None for c in cands]
        is_dropped = [rnd.dropped.get(c.choice) == c.option for c in cands]
        fig.add_trace(
            go.Bar(
                x=xs,
                y=finite,
                name="rank-sum",
                legendgroup="rank-sum",
                showlegend=first,
                marker={"color": [_BEST_COLOR if d else "steelblue" for d in is_dropped]},
                customdata=[
                    [c.choice, c.option, *(c.ranks[k] for k in INDICATORS), *(c.deltas[k] for k in INDICATORS)]
                    for c in cands
                ],
                hovertemplate=(
                    "remove %{customdata[1]} from %{customdata[0]}<br>rank-sum %{y}"
                    "<br>ranks T/E/G %{customdata[2]:.1f} / %{customdata[3]:.1f} / %{customdata[4]:.1f}"
                    "<br>relative harm Δκ/κ %{customdata[5]:.3g}, −Δregions/regions %{customdata[6]:.3g},"
                    " ΔMSE/MSE %{customdata[7]:.3g}"
                    "<extra></extra>"
                ),
            ),
            row=row,
            col=1,
        )
        dropped = [(c, y) for c, y, d in zip(cands, finite, is_dropped, strict=True) if d]
        fig.add_trace(
            go.Scatter(
                x=[[c.choice for c, _ in dropped], [c.option for c, _ in dropped]],
                y=[(y or 0.0) for _, y in dropped],
                mode="markers+text",
                name="dropped",
                legendgroup="dropped",
                showlegend=first,
                text=["dropped"] * len(dropped),
                textposition="top center",
                marker={"symbol": "triangle-down", "size": 10, "color": "black"},
                hoverinfo="skip",
                cliponaxis=False,
            ),
            row=row,
            col=1,
        )
        broken = [c for c in cands if not math.isfinite(c.rank_sum)]
        if broken:
            fig.add_trace(
                go.Scatter(
                    x=[[c.choice for c in broken], [c.option for c in broken]],
                    y=[0.0] * len(broken),
                    mode="markers",
                    name="bad removal",
                    legendgroup="bad",
                    showlegend=not bad_in_legend,
                    marker={"symbol": "x", "size": 9, "color": _BAD_COLOR},
                    hovertemplate="removing it breaks the network (kept)<extra></extra>",
                ),
                row=row,
                col=1,
            )
            bad_in_legend = True
        fig.update_yaxes(title_text="rank-sum", row=row, col=1)
    fig.update_layout(
        title={"text": f"{title}<br><sup>larger rank-sum = less important; the largest per choice is dropped</sup>"},
        height=height,
        bargap=0.15,
        margin={"t": 110},
    )
    return fig


# --------------------------------------------------------------------------------------- bundles


def study_figures(
    study_or_records: Any, *, for_dashboard: bool = False, rule: RankRule | None = None
) -> dict[str, go.Figure]:
    """The standard figures of a study (or of records), keyed by :data:`FIGURE_IDS`, ranked under
    ``rule`` (default: a study's own rank rule, records' the paper's).

    ``for_dashboard=True`` fits them to optuna-dashboard's plot cards (half the page wide, 450 px
    high): no fixed height, the 2-D landscape as a 2×2 grid, the search progress as the rank panel only.
    """
    if hasattr(study_or_records, "get_trials"):
        from teg_plugin.optuna._attrs import study_rule

        records = records_from_study(study_or_records)
        name = getattr(study_or_records, "study_name", None)
        rule = study_rule(study_or_records) if rule is None else rule
    else:
        records = as_records(study_or_records)
        name = None
    if not records:
        from teg_plugin.optuna._attrs import describe_score_attrs

        raise ValueError(f"no TEG trials to plot: no trial has the {describe_score_attrs()}")
    suffix = f" — {name}" if name else ""
    figures = {
        "teg-landscape": teg_landscape(records, title=f"TEG landscape{suffix}", rule=rule),
        "teg-landscape-2d": teg_landscape_2d(
            records, title=f"TEG landscape, 2-D projections{suffix}", columns=2 if for_dashboard else 3, rule=rule
        ),
        "teg-search-progress": search_progress(
            records, title=f"TEG search progress{suffix}", indicators=not for_dashboard, rule=rule
        ),
    }
    if for_dashboard:
        for fig in figures.values():
            fig.update_layout(height=None, margin={"l": 50, "r": 20, "t": 70, "b": 40})
    return figures


# --------------------------------------------------------------------------------------- helpers

_HOVER = (
    "<b>%{customdata[0]}</b><br>index %{customdata[1]} · trial %{customdata[2]}%{customdata[9]}"
    "<br>κ %{customdata[3]}<br>regions %{customdata[4]}<br>KR MSE %{customdata[5]}"
    "<br>TEG rank %{customdata[6]} of %{customdata[7]} (rank-sum %{customdata[8]})<extra></extra>"
)


def _customdata(group: Sequence[RankedRecord]) -> list[list[Any]]:
    return [
        [
            r.record.arch,
            "-" if r.record.index is None else r.record.index,
            r.record.order,
            _fmt(r.record.ntk_cond),
            _fmt(r.record.regions),
            _fmt(r.record.kr_mse),
            r.rank,
            r.n_archs,
            "bad" if not math.isfinite(r.rank_sum) else f"{r.rank_sum:g}",
            f" ({r.record.state.lower()})" if r.record.state else "",
        ]
        for r in group
    ]


def _coordinates(ranked: Sequence[RankedRecord]) -> dict[int, tuple[float, float, float]]:
    """Plot coordinates per record (keyed by ``id``); undefined ones go just past the worst good value."""
    fallback = []
    for key in INDICATORS:
        values = [v for r in ranked if (v := r.record.value(key)) is not None and not r.record.is_bad]
        if not values:
            values = [v for r in ranked if (v := r.record.value(key)) is not None] or [0.0]
        lo, hi = min(values), max(values)
        pad = 0.1 * (hi - lo) or 0.1 * abs(hi) or 1.0
        fallback.append(lo - pad if key == "regions" else hi + pad)  # the "worst" edge
    out = {}
    for r in ranked:
        given = [r.record.value(key) for key in INDICATORS]
        out[id(r)] = tuple(f if v is None else v for v, f in zip(given, fallback, strict=True))
    return out  # type: ignore[return-value]


def _xyz(group: Sequence[RankedRecord], coords: dict[int, tuple[float, float, float]]) -> dict[str, list[float]]:
    return {axis: [coords[id(r)][i] for r in group] for i, axis in enumerate("xyz")}


def _title(title: str, ranked: Sequence[RankedRecord]) -> str:
    n_bad = len({r.record.arch for r in ranked if r.record.is_bad})
    n = ranked[0].n_archs if ranked else 0
    return f"{title}<br><sup>{len(ranked)} evaluations, {n} distinct architectures, {n_bad} bad</sup>"


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "undefined"
    return f"{value:.6g}"


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None
