"""A study's rank rule: the sampler, the objective, the pruner, best_trial, the final choice and the
figures rank by the one rule the study records, with its proxies stored in each trial."""

from __future__ import annotations

import math
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from teg_plugin.optuna import TEGPruner, TEGSampler, best_trial, run_final_choice, suggest, zero_cost_objective
from teg_plugin.optuna._attrs import RANK_RULE_ATTR, rule_extra, study_rule
from teg_plugin.plots import rank_records, records_from_study
from teg_plugin.scores import PAPER_RULE, RankRule, TEGScore, best_distinct_index, rank_sums
from teg_plugin.spaces.nb201 import EDGE_NAMES, OPS, NB201Space
from teg_plugin.strategies import EvolutionStrategy, RandomStrategy

NWOT = RankRule.parse("nwot")
SPACE = NB201Space()


def _zero_cost_study(sampler: TEGSampler, objective: Any, n_trials: int, storage: Any = None) -> optuna.Study:
    study = optuna.create_study(sampler=sampler, storage=storage, study_name="rule", load_if_exists=True)
    study.optimize(objective, n_trials=n_trials)
    return study


def _expected_best(study: optuna.Study, rule: RankRule) -> str:
    """The best distinct architecture of the complete trials under ``rule``, by hand from the attrs
    (``nwot`` and ``params``: the terms these tests use)."""
    complete = [t for t in sorted(study.trials, key=lambda t: t.number) if t.state == TrialState.COMPLETE]
    scores = [TEGScore.from_dict(t.user_attrs) for t in complete]
    stored = {"nwot": "proxy_nwot", "params": "complexity"}
    extra = [
        {
            term: math.nan if t.user_attrs[stored[term]] is None else t.user_attrs[stored[term]]
            for term in rule.extra_terms
        }
        for t in complete
    ]
    archs = [t.user_attrs["arch"] for t in complete]
    return archs[best_distinct_index(archs, scores, rule, extra)]


def test_the_sampler_proposes_what_its_strategy_ranking_by_the_rule_asks(space, fake, evolution_options) -> None:
    sampler = TEGSampler(space, fake, seed=2, rule="nwot", strategy_options=evolution_options)
    study = _zero_cost_study(sampler, zero_cost_objective(space, fake, rule=NWOT), 14)
    # The same strategy driven by hand, ranking by the same proxy values.
    strategy = EvolutionStrategy(
        space, seed=2, rule=NWOT, proxy_values=lambda a: fake.proxies([a], ["nwot"])[0], **evolution_options
    )
    expected = []
    for _ in range(14):
        arch = strategy.ask()
        strategy.tell(arch, fake.score(arch))
        expected.append(space.format(arch))
    trials = sorted(study.trials, key=lambda t: t.number)
    assert [t.user_attrs["arch"] for t in trials] == expected
    paper = TEGSampler(space, fake, seed=2, strategy_options=evolution_options)
    assert [
        t.user_attrs["arch"] for t in _zero_cost_study(paper, zero_cost_objective(space, fake), 14).trials
    ] != expected
    # Each trial stores its proxy (None where flagged), the study its rule, and best_trial ranks by it.
    for trial in trials:
        value = fake.proxy(space.format(space.canonical(space.parse(trial.user_attrs["arch"]))), "nwot")
        assert trial.user_attrs["proxy_nwot"] == (None if math.isnan(value) else value)
    assert study.user_attrs[RANK_RULE_ATTR] == "nwot=1" and study_rule(study) == NWOT
    assert best_trial(study).user_attrs["arch"] == _expected_best(study, NWOT) == space.format(strategy.best())


def test_a_resumed_rule_search_continues_from_the_stored_proxies(space, fake, evolution_options, trial_params) -> None:
    objective = zero_cost_objective(space, fake, rule=NWOT)
    make = lambda scorer: TEGSampler(space, scorer, seed=5, rule=NWOT, strategy_options=evolution_options)  # noqa: E731
    whole = trial_params(_zero_cost_study(make(fake), objective, 12))

    storage = optuna.storages.InMemoryStorage()
    _zero_cost_study(make(fake), objective, 6, storage)
    fresh = type(fake)(space)  # a new process: nothing in memory
    resumed = _zero_cost_study(make(fresh), zero_cost_objective(space, fresh, rule=NWOT), 6, storage)
    assert trial_params(resumed) == whole
    # The six told trials' proxies were read from the study, never recomputed.
    new = {t.user_attrs["arch"] for t in resumed.trials if t.number >= 6}
    assert fresh.proxied and set(fresh.proxied) <= new


def test_guided_mode_proposes_the_window_best_under_the_rule(space, fake) -> None:
    sampler = TEGSampler(space, fake, strategy="random", seed=1, steps_per_trial=3, rule=NWOT)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda trial: (suggest(space, trial), 0.0)[1], n_trials=1)
    # The window: the random strategy's steps until three isomorphism classes were scored.
    strategy = RandomStrategy(space, seed=1)
    window: list[Any] = []
    while len({space.canonical(a) for a in window}) < 3:
        arch = strategy.ask()
        strategy.tell(arch, fake.score(arch))
        window.append(arch)
    texts = [space.format(space.canonical(a)) for a in window]
    scores = [fake.score(a) for a in window]
    best = window[best_distinct_index(texts, scores, NWOT, [{"nwot": fake.proxy(t, "nwot")} for t in texts])]
    assert study.trials[0].user_attrs["arch"] == space.format(best)


def test_the_objective_stores_the_complexity_and_returns_the_rank_under_the_rule(space, fake) -> None:
    rule = RankRule.parse("regions,params=2")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    study.optimize(zero_cost_objective(space, fake, rule=rule), n_trials=8)
    trials = sorted(study.trials, key=lambda t: t.number)
    for trial in trials:
        assert trial.user_attrs["complexity"] == space.complexity(space.parse(trial.user_attrs["arch"]))
        assert "proxy_nwot" not in trial.user_attrs
    # The last trial's value: its rank-sum under the rule among every trial, over the good ones.
    last = trials[-1]
    assert last.state == TrialState.COMPLETE
    ordered = [last, *trials[:-1]]
    scores = [TEGScore.from_dict(t.user_attrs) for t in ordered]
    extra = rule_extra([t.user_attrs for t in ordered], rule)
    n_good = sum(not s.bad for s in scores)
    assert last.value == pytest.approx(rank_sums(scores, rule, extra)[0] / n_good)
    assert best_trial(study).user_attrs["arch"] == _expected_best(study, rule)


def test_a_study_holds_one_rule(space, fake) -> None:
    # The sampler records nwot; an objective ranking by the paper's rule is refused in the first trial.
    study = optuna.create_study(sampler=TEGSampler(space, fake, rule="nwot"))
    with pytest.raises(
        ValueError, match=r"ranks its trials by the rank rule nwot=1, and the zero-cost objective ranks by ntk_cond=1"
    ):
        study.optimize(zero_cost_objective(space, fake), n_trials=1)
    # A study searched by the paper's rule refuses another rule once it has scored trials.
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(zero_cost_objective(space, fake), n_trials=2)
    assert RANK_RULE_ATTR not in study.user_attrs and study_rule(study) == PAPER_RULE
    with pytest.raises(ValueError, match=r"\(the paper's\), and TEGSampler ranks by nwot=1"):
        study.sampler = TEGSampler(space, fake, rule="nwot")
        study.optimize(zero_cost_objective(space, fake, rule="nwot"), n_trials=1)


def test_rules_the_sampler_refuses(space, fake) -> None:
    with pytest.raises(ValueError, match="strategy 'prune' ranks each removal by the paper's rule"):
        TEGSampler(space, fake, strategy="prune", rule="nwot")
    with pytest.raises(TypeError, match=r"TEGSampler\(\.\.\., rule=\.\.\.\)"):
        TEGSampler(space, fake, strategy_options={"rule": NWOT})
    with pytest.raises(ValueError, match="unknown term 'nwt'"):
        TEGSampler(space, fake, rule="nwt")
    with pytest.raises(TypeError, match="rule must be a teg_plugin.scores.RankRule"):
        zero_cost_objective(space, fake, rule=3)  # type: ignore[arg-type]


def _hand_made(rows: list[tuple[tuple[int, ...], float, float, float | None]], rule: str | None) -> optuna.Study:
    """A study of complete trials ``(ops, kappa, regions, nwot)`` (kr_mse 0.5), ranking by ``rule``."""
    study = optuna.create_study()
    if rule is not None:
        study.set_user_attr(RANK_RULE_ATTR, rule)
    distributions = {edge: CategoricalDistribution(OPS) for edge in EDGE_NAMES}
    for ops, kappa, regions, nwot in rows:
        params = {edge: OPS[i] for edge, i in zip(EDGE_NAMES, ops)}
        attrs = {
            "arch": SPACE.format(SPACE.from_params(params)),
            "ntk_cond": kappa,
            "regions": regions,
            "kr_mse": 0.5,
            "bad": False,
            "proxy_nwot": nwot,
        }
        study.add_trial(
            create_trial(
                value=kappa, params=params, distributions=distributions, user_attrs=attrs, state=TrialState.COMPLETE
            )
        )
    return study


# TEG prefers the first (low kappa, many regions); nwot prefers the last; the third's nwot is flagged.
ROWS = [
    ((1, 1, 1, 1, 1, 1), 10.0, 900.0, 100.0),
    ((2, 2, 2, 2, 2, 2), 20.0, 800.0, 300.0),
    ((3, 3, 3, 3, 3, 3), 30.0, 700.0, None),
    ((4, 4, 4, 4, 4, 4), 40.0, 600.0, 500.0),
]


def test_best_trial_figures_and_the_final_choice_rank_by_the_study_rule(scorer) -> None:
    paper, by_nwot = _hand_made(ROWS, None), _hand_made(ROWS, "nwot")
    assert best_trial(paper).number == 0
    assert best_trial(by_nwot).number == 3
    records = records_from_study(by_nwot)
    assert [dict(r.extra) for r in records][0] == {"nwot": 100.0} and math.isnan(dict(records[2].extra)["nwot"])
    ranks = {r.order: r.rank for r in rank_records(records, NWOT)}
    assert ranks == {3: 1, 1: 2, 0: 3, 2: 4}  # the flagged proxy ranks last
    assert {r.order: r.rank for r in rank_records(records_from_study(paper))} == {0: 1, 1: 2, 2: 3, 3: 4}
    # The final choice's candidates are the study's best under its rule.
    final = run_final_choice(by_nwot, scorer, top=2, seeds=1, rule=PAPER_RULE)
    assert final is not None
    assert [c.text for c in final.candidates] == [
        by_nwot.trials[3].user_attrs["arch"],
        by_nwot.trials[1].user_attrs["arch"],
    ]


def test_the_pruner_ranks_by_the_study_rule() -> None:
    def decide(rule: str | None) -> bool:
        study = _hand_made(ROWS, rule)
        trial = study.ask()
        # The best TEG values of all, and the lowest nwot.
        for key, value in {"ntk_cond": 1.0, "regions": 990.0, "kr_mse": 0.1, "bad": False, "proxy_nwot": 1.0}.items():
            trial.set_user_attr(key, value)
        trial.set_user_attr("arch", "|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")
        return TEGPruner(quantile=0.5, n_warmup_trials=0).prune(study, study.trials[-1])

    assert decide(None) is False
    assert decide("nwot") is True
