"""The final choice (re-ranking the best candidates over further score seeds) and rank rules."""

from __future__ import annotations

import json
import math

import numpy as np
import optuna
import pytest
from scipy.stats import rankdata

from teg_plugin.cli import main
from teg_plugin.confirm import confirm, confirmation_seeds, top_candidates
from teg_plugin.optuna import (
    FINAL_CHOICE_ATTR,
    FINAL_SCORES_ATTR,
    TEGSampler,
    best_trial,
    current_final_choice,
    run_final_choice,
    zero_cost_objective,
)
from teg_plugin.optuna._attrs import SEARCH_SETTINGS_ATTR
from teg_plugin.scores import PAPER_RULE, RULE_TERMS, RankRule, TEGScore, best_index, distinct_order, rank_sums

FAST = ["--dataset", "synthetic", "--repeat", "1", "--batch-size", "8", "--quiet"]
GOOD = [6111, 1462, 11472, 13814, 15144]


def test_confirmation_seeds_are_derived_distinct_and_stable() -> None:
    seeds = confirmation_seeds(7, 4)
    assert len(set(seeds)) == 4 and 7 not in seeds and seeds == confirmation_seeds(7, 4)
    assert seeds[:2] == confirmation_seeds(7, 2) and confirmation_seeds(8, 2) != seeds[:2]
    assert set(seeds).isdisjoint(range(7, 12))  # not the seeds of --vary-score-seed's runs
    assert confirmation_seeds(7, 0) == ()


def test_rank_rule_weights_and_complexity_term() -> None:
    scores = [TEGScore(1, 10, 3), TEGScore(2, 30, 2), TEGScore(3, 20, 1), TEGScore(math.nan, 1, 1)]
    np.testing.assert_array_equal(rank_sums(scores, PAPER_RULE), rank_sums(scores))
    np.testing.assert_array_equal(rank_sums(scores, RankRule.parse("ntk_cond")), [1, 2, 3, math.inf])
    # regions ranks (2nd, 1st, ... ) weigh 2; kr_mse 1
    np.testing.assert_array_equal(
        rank_sums(scores, RankRule.parse("regions=2,kr_mse")), [3 * 2 + 3, 1 * 2 + 2, 2 * 2 + 1, math.inf]
    )
    with_params = RankRule.parse("ntk_cond,params=0.5")
    extra = [{"params": c} for c in (5, 50, 500, 5000)]
    np.testing.assert_array_equal(rank_sums(scores, with_params, extra), [1 + 1.5, 2 + 1.0, 3 + 0.5, math.inf])
    with pytest.raises(ValueError, match="ranks by params: pass their values"):
        rank_sums(scores, with_params)
    # params alone is a rule too: the bad score still ranks last whatever its parameter count
    np.testing.assert_array_equal(rank_sums(scores, RankRule.parse("params"), extra), [3, 2, 1, math.inf])
    for bad, needle in (
        ("speed=1", "unknown term 'speed'"),
        ("ntk_cond=-1", ">= 0"),
        ("params=0", "at least one"),
        ("regions=x", "not name=number"),
        ("regions,regions=2", "appears twice"),
    ):
        with pytest.raises(ValueError, match=needle):
            RankRule.parse(bad)
    assert RankRule.parse(str(with_params)) == with_params and str(PAPER_RULE) == "ntk_cond=1,regions=1,kr_mse=1"


def test_rank_rule_proxy_terms_parse_and_round_trip() -> None:
    from teg_plugin.proxies import PROXIES

    rule = RankRule.parse("synflow=0.5, kr_mse,ntk_cond,regions")
    # kept in one order (indicators, params, proxies in the registry's order) so equal rules compare equal
    assert rule.weights == (("ntk_cond", 1.0), ("regions", 1.0), ("kr_mse", 1.0), ("synflow", 0.5))
    assert str(rule) == "ntk_cond=1,regions=1,kr_mse=1,synflow=0.5" and RankRule.parse(str(rule)) == rule
    assert rule == RankRule.parse("ntk_cond,regions,kr_mse,synflow=0.5")
    assert rule.proxies == rule.extra_terms == ("synflow",) and rule.complexity == 0
    alone = RankRule.parse("nwot")
    assert alone.weights == (("nwot", 1.0),) and alone.proxies == ("nwot",) and str(alone) == "nwot=1"
    mixed = RankRule.parse("zen=2,params,regions=0,nwot")  # a weight of 0 drops the term
    assert str(mixed) == "params=1,nwot=1,zen=2" and mixed.extra_terms == ("params", "nwot", "zen")
    assert mixed.proxies == ("nwot", "zen") and mixed.complexity == 1 and RankRule.parse(str(mixed)) == mixed
    # every registered proxy is a term, in its registry direction; params is the complexity term
    for name, proxy in PROXIES.items():
        assert RankRule.parse(name).terms == (name,)
        assert RULE_TERMS[name] is proxy.higher_is_better
    assert RankRule.parse("params").proxies == ()
    with pytest.raises(ValueError) as error:
        RankRule.parse("ntk_cond,synflw")
    message = str(error.value)
    assert "unknown term 'synflw'" in message and "\n" not in message
    for known in ("ntk_cond", "regions", "kr_mse", "params", "synflow", "nwot", "zen"):
        assert known in message


def test_rank_sums_with_a_proxy_term_by_hand() -> None:
    scores = [TEGScore(1, 10, 3), TEGScore(2, 30, 2), TEGScore(3, 20, 1), TEGScore.flagged("x"), TEGScore(4, 40, 4)]
    extra = [
        {"synflow": 7.0},
        {"synflow": 9.0},
        {"synflow": math.nan},
        {"synflow": 100.0},
        {"synflow": 7.0, "nwot": 1.0},
    ]
    rule = RankRule.parse("ntk_cond,regions,kr_mse,synflow=0.5")
    # among the 4 good scores: T ranks 1,2,3,4; E (higher better) 4,2,3,1; G 3,2,1,4;
    # synflow (higher better) ranks 9 first, the two 7s share 2.5, NaN last (4); the bad one's 100 is not read
    teg = np.array([1 + 4 + 3, 2 + 2 + 2, 3 + 3 + 1, 4 + 1 + 4], dtype=float)
    expected = teg + 0.5 * np.array([2.5, 1, 4, 2.5])
    got = rank_sums(scores, rule, extra)
    np.testing.assert_array_equal(got[[0, 1, 2, 4]], expected)
    assert got[3] == math.inf
    # a proxy alone: NaN values share the last places; the indicators do not count
    nwot = RankRule.parse("nwot=2")
    values = [{"nwot": v} for v in (3.0, math.nan, 5.0, 1.0, math.inf)]
    np.testing.assert_array_equal(rank_sums(scores, nwot, values), [2 * 2, 2 * 3.5, 2 * 1, math.inf, 2 * 3.5])
    with pytest.raises(ValueError, match="score 1 has no value of 'nwot'"):
        rank_sums(scores, nwot, [{"nwot": 1.0}, {}, {"nwot": 1.0}, {}, {"nwot": 1.0}])
    with pytest.raises(ValueError, match="2 for 5 scores"):
        rank_sums(scores, nwot, values[:2])
    # the same shape everywhere: distinct_order and best_index take it too
    assert best_index(scores, nwot, values) == 2
    assert distinct_order(["a", "b", "c", "d", "e"], scores, nwot, values) == [2, 0, 1, 4, 3]


def test_top_candidates_skip_bad_and_isomorphic_repeats(space) -> None:
    twin = next(arch for arch in map(space.arch_at, range(200)) if space.canonical(arch) != arch)
    a, b, c = space.canonical(twin), space.arch_at(GOOD[1]), space.arch_at(GOOD[2])
    scores = [TEGScore(1, 9, 1), TEGScore(2, 8, 2), TEGScore.flagged("bad"), TEGScore(1, 9, 1)]
    assert top_candidates(space, [a, b, c, twin], scores, 5) == [a, b]  # the twin repeats a; c is bad
    assert top_candidates(space, [a, b, c, twin], scores, 1) == [a]
    assert top_candidates(space, [c], scores[2:3], 3) == []


def test_confirm_with_a_proxy_rule_ranks_each_seed_by_that_seeds_proxies(make_scorer) -> None:
    scorer = make_scorer()
    archs = [scorer.space.arch_at(i) for i in GOOD[:4]]
    rule = RankRule.parse("regions,params=0.5,nwot")
    result = confirm(scorer, archs, seeds=1, rule=rule)
    complexities = [float(scorer.space.complexity(a)) for a in archs]
    for j, seed in enumerate(result.seeds):
        seeded = scorer.with_seed(seed)
        nwot = seeded.proxies(archs, ["nwot"])
        extra = [{"params": c, "nwot": v["nwot"]} for c, v in zip(complexities, nwot)]
        assert [c.extra[j] for c in result.candidates] == extra
        expected = rank_sums(seeded.score_many(archs), rule, extra)
        np.testing.assert_array_equal([c.rank_sums[j] for c in result.candidates], expected)
    assert nwot != scorer.proxies(archs, ["nwot"])  # the further seed's proxies are its own
    stored = result.to_dict()
    assert stored["rule"] == "regions=1,params=0.5,nwot=1" and len(stored["candidates"][0]["extra"]) == 2
    assert "extra" not in confirm(scorer, archs, seeds=1).to_dict()["candidates"][0]


def test_confirm_ranks_candidates_over_the_seeds_and_reuses_known_scores(make_scorer) -> None:
    scorer = make_scorer()
    archs = [scorer.space.arch_at(i) for i in GOOD[:4]]
    result = confirm(scorer, archs, seeds=2)
    assert result.seeds == (scorer.config.seed, *confirmation_seeds(scorer.config.seed, 2))
    # each candidate's scores are those its seed's scorer gives it
    for j, seed in enumerate(result.seeds):
        expected = scorer.with_seed(seed).score_many(archs)
        values = [(s.ntk_cond, s.regions, s.kr_mse) for s in expected]
        assert [(c.scores[j].ntk_cond, c.scores[j].regions, c.scores[j].kr_mse) for c in result.candidates] == values
        np.testing.assert_array_equal([c.rank_sums[j] for c in result.candidates], rank_sums(expected, result.rule))
    means = [c.mean_rank_sum for c in result.candidates]
    assert result.pick.mean_rank_sum == min(means) and [c.search_rank for c in result.candidates] == [1, 2, 3, 4]
    # every score already known: nothing is measured
    known = {(c.text, seed): c.scores[j] for c in result.candidates for j, seed in enumerate(result.seeds)}
    fresh = make_scorer()
    seen = []
    again = confirm(fresh, archs, seeds=2, known=known, on_score=lambda *a: seen.append(a))
    assert again.pick.text == result.pick.text and seen == [] and again.n_measured == 0 and result.n_measured == 4 * 3
    with pytest.raises(ValueError, match="at least one candidate"):
        confirm(scorer, [], seeds=1)


def _study(make_scorer, n_trials: int = 6):
    scorer = make_scorer()
    study = optuna.create_study(sampler=TEGSampler(scorer.space, scorer, seed=0))
    study.optimize(zero_cost_objective(scorer.space, scorer), n_trials=n_trials)
    return study, scorer


def test_study_final_choice_is_stored_resumed_and_goes_stale(make_scorer) -> None:
    study, scorer = _study(make_scorer)
    before = best_trial(study).user_attrs["arch"]

    class Stop(Exception):
        pass

    calls = []
    original = study.set_user_attr

    def interrupting(key, value):  # the final choice stops after its second new score
        original(key, value)
        if key == FINAL_SCORES_ATTR:
            calls.append(1)
            if len(calls) == 2:
                raise Stop

    study.set_user_attr = interrupting  # type: ignore[method-assign]
    with pytest.raises(Stop):
        run_final_choice(study, scorer, top=3, seeds=2)
    study.set_user_attr = original  # type: ignore[method-assign]
    assert len(study.user_attrs[FINAL_SCORES_ATTR]["scores"]) == 2 and FINAL_CHOICE_ATTR not in study.user_attrs
    fresh = make_scorer()  # a new process: only the study remembers
    final = run_final_choice(study, fresh, top=3, seeds=2)
    assert final is not None and len(final.candidates) == 3
    assert final.n_measured == 3 * 2 - 2  # the two finished scores were not measured again
    stored = study.user_attrs[FINAL_CHOICE_ATTR]
    assert stored["pick"] == final.pick.text and current_final_choice(study) == stored
    assert best_trial(study).user_attrs["arch"] == final.pick.text
    assert final.candidates[0].text == before  # the search's own best is the first candidate
    # the same answer when asked through best_trial, without measuring anything
    assert run_final_choice(study, make_scorer(), top=3, seeds=2).n_measured == 0
    assert best_trial(study, make_scorer(), confirm_top=3, confirm_seeds=2).user_attrs["arch"] == final.pick.text
    # a study that gained trials no longer answers with the old final choice
    study.optimize(zero_cost_objective(scorer.space, scorer), n_trials=1)
    assert current_final_choice(study) is None


def test_a_study_final_choice_may_rank_by_a_proxy(make_scorer) -> None:
    """The Optuna side gets proxy rules for its final choice through confirm, unchanged."""
    study, scorer = _study(make_scorer, n_trials=4)
    final = run_final_choice(study, scorer, top=3, seeds=1, rule=RankRule.parse("nwot"))
    assert final is not None and study.user_attrs[FINAL_CHOICE_ATTR]["rule"] == "nwot=1"
    assert all(len(c.extra) == 2 for c in final.candidates) and not any(
        s.bad for c in final.candidates for s in c.scores
    )
    for j in range(2):  # under each seed, the candidates' rank-sums are their nwot ranks (higher first)
        nwot = np.array([c.extra[j]["nwot"] for c in final.candidates])
        np.testing.assert_array_equal([c.rank_sums[j] for c in final.candidates], rankdata(-nwot))


def test_search_cli_reports_and_resumes_the_final_choice(capsys, tmp_path) -> None:
    storage = f"sqlite:///{tmp_path / 'final.db'}"
    argv = [
        "search",
        "--budget",
        "5",
        "--storage",
        storage,
        *FAST,
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--confirm-top",
        "3",
        "--confirm-seeds",
        "1",
        "--format",
        "json",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    final = summary["final_choice"]
    assert final["candidates"] == 3 and len(final["seeds"]) == 2 and final["rule"] == "regions=1,kr_mse=2"
    study = optuna.load_study(study_name=summary["study_name"], storage=storage)
    assert study.user_attrs[FINAL_CHOICE_ATTR]["pick"] == summary["best_arch"]
    # the dashboard note says how the pick was made
    from teg_plugin.dashboard import best_trial_note
    from teg_plugin.plots import rank_records, records_from_study

    note = best_trial_note(rank_records(records_from_study(study)), final_choice=current_final_choice(study))
    assert "**Final choice:**" in note and "(pick)" in note and summary["best_arch"] in note
    # run again: nothing new is measured, the same answer
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["best_arch"] == summary["best_arch"] and again["n_measured_here"] == 0
    # --confirm-top 0: the search's own best, no final choice
    assert main([*argv[:-2], "--confirm-top", "0", "--study-name", "plain", "--format", "json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert "final_choice" not in plain and plain["best_arch"] == final["pick_before"]


def test_search_refuses_an_old_default_study_with_a_one_line_hint(capsys, tmp_path) -> None:
    storage = f"sqlite:///{tmp_path / 'old.db'}"
    base = ["search", "--storage", storage, *FAST, "--no-cache", "--confirm-top", "0", "--format", "json"]
    assert main([*base, "--budget", "1", "--init", "kaiming-normal"]) == 0
    name = json.loads(capsys.readouterr().out)["study_name"]
    study = optuna.load_study(study_name=name, storage=storage)
    settings = dict(study.user_attrs[SEARCH_SETTINGS_ATTR])
    del settings["init"], settings["ntk"]  # as teg-nas 0.1 stored them
    study.set_user_attr(SEARCH_SETTINGS_ATTR, settings)
    assert main([*base, "--budget", "2"]) == 2
    err = capsys.readouterr().err
    assert "pass --init kaiming-normal to resume this study" in err and err.count("\n") == 1
    assert main([*base, "--budget", "2", "--init", "kaiming-normal"]) == 0


@pytest.mark.parametrize("value", ["-1", "x"])
def test_final_choice_options_are_checked(capsys, value: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(["search", "--confirm-top", value])
    assert info.value.code == 2 and "--confirm-top" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["search", "--confirm-rule", "speed=2"])
    assert "unknown term 'speed'" in capsys.readouterr().err
