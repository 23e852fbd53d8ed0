"""TEGScorer: determinism, isomorphism sharing, bad architectures, ranking, the score cache, bad input."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
import textwrap
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from teg_plugin.cache import CacheKey, ScoreCache
from teg_plugin.config import TEGConfig
from teg_plugin.data import ImageData
from teg_plugin.indicators.measure import measure_mask
from teg_plugin.indicators.ntk import centred_one_hot
from teg_plugin.inputs import ScoringInputs
from teg_plugin.scorer import TEGScorer, _mask_text, resolve_device
from teg_plugin.scores import (
    TEGScore,
    best_distinct_index,
    best_index,
    distinct_order,
    final_ranks,
    first_occurrences,
    indicator_ranks,
    rank_sums,
)
from teg_plugin.spaces.nb201 import NB201Arch
from teg_plugin.spaces.nb201._isomorphism import canonical_key

GOOD = [6111, 11472, 100]  # NB201 indices of three healthy architectures
ALL_NONE = NB201Arch(("none",) * 6)
DISCONNECTED = NB201Arch.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|none~0|none~1|none~2|")
# Two members of one isomorphism class (key "#+#+0": the output is the input; node 1 and 2 unused).
ISO_A = NB201Arch.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
ISO_B = NB201Arch.parse("|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")


def _values(score: TEGScore) -> tuple[float, float, float, bool]:
    return (score.ntk_cond, score.regions, score.kr_mse, score.bad)


# --- determinism and sharing ---------------------------------------------------------------------


def test_same_seed_bit_identical_different_seed_different(make_scorer, small_config: TEGConfig) -> None:
    archs = [make_scorer().space.arch_at(i) for i in GOOD]
    first, second = make_scorer(), make_scorer()
    a, b = first.score_many(archs), second.score_many(archs)
    assert [_values(s) for s in a] == [_values(s) for s in b]
    assert all(not s.bad and s.seconds > 0 for s in a)
    assert first.fingerprint == second.fingerprint
    other = make_scorer(config=replace(small_config, seed=1))
    c = other.score_many(archs)
    assert other.fingerprint != first.fingerprint
    assert all(x.ntk_cond != y.ntk_cond and x.kr_mse != y.kr_mse for x, y in zip(a, c))


def test_isomorphic_archs_share_one_measurement(make_scorer, small_config: TEGConfig) -> None:
    assert ISO_A != ISO_B and canonical_key(ISO_A) == canonical_key(ISO_B)
    scorer = make_scorer()
    a, b = scorer.score_many([ISO_A, ISO_B])
    assert scorer.n_measured == 1
    assert _values(a) == _values(b)
    # It is the class representative that is measured, whichever member came first.
    other = make_scorer()
    b2 = other.score(ISO_B)
    assert _values(b2) == _values(a) and other.n_measured == 1
    canonical = scorer.space.canonical(ISO_B)
    assert canonical not in (ISO_A, ISO_B)
    direct = measure_mask(
        scorer.space, scorer.space.mask_of(canonical), scorer.inputs, small_config, torch.device("cpu")
    )
    assert _values(direct) == _values(a)


def test_repeated_archs_measured_once(make_scorer) -> None:
    scorer = make_scorer()
    x, y = scorer.space.arch_at(GOOD[0]), scorer.space.arch_at(GOOD[2])
    scores = scorer.score_many([x, y, x, x])
    assert scorer.n_measured == 2
    assert scores[0] is scores[2] is scores[3] and scores[1] is not scores[0]
    scorer.score(y)  # memoised
    assert scorer.n_measured == 2


def test_bad_architectures_flagged_and_ranked_last(make_scorer) -> None:
    scorer = make_scorer()
    good = [scorer.space.arch_at(i) for i in GOOD[:2]]
    archs = [ALL_NONE, good[0], DISCONNECTED, good[1]]
    ranked = scorer.rank(archs)  # must not raise
    assert [r.arch for r in ranked] == archs
    bad = [ranked[0], ranked[2]]
    for r in bad:
        assert r.score.bad and r.score.reason and "condition number" in r.score.reason
        assert math.isnan(r.score.ntk_cond) and math.isnan(r.score.kr_mse)
        assert r.rank_sum == math.inf and r.rank == 3
        d = r.to_dict()
        assert d["ntk_cond"] is None and d["kr_mse"] is None and d["rank_sum"] is None and d["bad"] is True
        json.dumps(d, allow_nan=False)
    assert all(r.rank in (1, 2) for r in (ranked[1], ranked[3])) and min(ranked[1].rank, ranked[3].rank) == 1
    assert not ranked[1].score.bad and not ranked[3].score.bad
    # Positions and indices are those of the given archs, not of their class representatives.
    assert [r.index for r in ranked] == [scorer.space.index(a) for a in archs]
    assert ranked[1].index == GOOD[0] and ranked[0].text == "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def test_non_finite_network_flagged_not_raised(make_scorer, monkeypatch) -> None:
    import teg_plugin.indicators.measure as measure

    def explode(*args, **kwargs):
        raise measure.NonFiniteError("the network produced non-finite logits")

    monkeypatch.setattr(measure, "ntk_jacobian", explode)
    scorer = make_scorer()
    score = scorer.score(scorer.space.arch_at(GOOD[0]))
    assert score.bad and score.reason == "the network produced non-finite logits"
    assert math.isnan(score.ntk_cond) and math.isnan(score.regions) and math.isnan(score.kr_mse)


# --- the scoring inputs --------------------------------------------------------------------------


def test_inputs_drawn_deterministically_and_disjoint(synthetic: ImageData, small_config: TEGConfig) -> None:
    config = replace(small_config, repeat=2)
    a, b = ScoringInputs.draw(synthetic, config), ScoringInputs.draw(synthetic, config)
    assert a.fingerprint == b.fingerprint and len(a.repeats) == 2
    assert (a.num_classes, a.in_channels) == (10, 3)
    for ra, rb in zip(a.repeats, b.repeats):
        assert torch.equal(ra.train_x, rb.train_x) and torch.equal(ra.region_batches[1], rb.region_batches[1])
    r0, r1 = a.repeats
    assert not torch.equal(r0.train_x, r1.train_x)  # each repeat draws its own batch
    assert r0.train_x.shape == r0.val_x.shape == (8, 3, 32, 32)
    # Training and held-out batches share no image (the synthetic images are all distinct).
    assert not (r0.train_x[:, None] == r0.val_x[None]).flatten(2).all(dim=2).any()
    assert torch.equal(r0.y_train, centred_one_hot(r0.train_y, 10)) and torch.equal(
        r0.y_val, centred_one_hot(r0.val_y, 10)
    )
    assert len(r0.region_batches) == 2 and r0.region_batches[0].shape == (100, 1, 3, 3)
    other = ScoringInputs.draw(synthetic, replace(config, seed=9))
    assert other.fingerprint != a.fingerprint and not torch.equal(other.repeats[0].train_x, r0.train_x)


def test_region_crops_are_windows_of_pool_images(synthetic: ImageData, small_config: TEGConfig) -> None:
    crops = ScoringInputs.draw(synthetic, small_config).repeats[0].region_batches[0]
    pixels, _ = synthetic.batch(torch.arange(len(synthetic)))
    # Every 3x3 window of every channel of every image: (N * C * 30 * 30, 9).
    windows = pixels.unfold(2, 3, 1).unfold(3, 3, 1).reshape(-1, 9)
    for crop in crops[:5]:
        assert (windows == crop.reshape(1, 9)).all(dim=1).any()


# --- rank-sums on hand-made scores ---------------------------------------------------------------


def test_rank_sums_hand_made() -> None:
    scores = [
        TEGScore(ntk_cond=10.0, regions=50.0, kr_mse=0.5),  # T 2.5, E 1.5, G 2   -> 6
        TEGScore(ntk_cond=5.0, regions=50.0, kr_mse=0.9),  # T 1,   E 1.5, G 3   -> 5.5
        TEGScore.flagged("nan logits"),  # bad: last
        TEGScore(ntk_cond=10.0, regions=20.0, kr_mse=0.1),  # T 2.5, E 3,   G 1   -> 6.5
    ]
    ranks = indicator_ranks(scores)
    np.testing.assert_array_equal(ranks[[0, 1, 3]], [[2.5, 1.5, 2], [1, 1.5, 3], [2.5, 3, 1]])
    assert np.isnan(ranks[2]).all()
    np.testing.assert_array_equal(rank_sums(scores), [6.0, 5.5, np.inf, 6.5])
    assert final_ranks(scores) == [2, 1, 4, 3]
    assert best_index(scores) == 1


def test_rank_ties_and_edge_cases() -> None:
    same = TEGScore(1.0, 2.0, 3.0)
    assert final_ranks([same, same, TEGScore(2.0, 1.0, 4.0)]) == [1, 1, 3]
    assert final_ranks([TEGScore.flagged("x"), TEGScore.flagged("y")]) == [1, 1]
    assert final_ranks([]) == []
    with pytest.raises(ValueError):
        best_index([])
    flagged = TEGScore.flagged("why", seconds=1.5)
    assert flagged.bad and flagged.reason == "why" and flagged.seconds == 1.5
    assert flagged.to_dict()["regions"] is None and TEGScore(1.0, math.inf, 2.0).to_dict()["regions"] is None


def test_a_non_finite_indicator_is_always_bad() -> None:
    # Built by hand (e.g. for Strategy.tell) without bad=True, a NaN must not tie every rank.
    good, better = TEGScore(10, 50, 0.1), TEGScore(5, 60, 0.05)
    undefined = TEGScore(math.nan, 70.0, 0.01)
    assert undefined.bad and undefined.reason == "undefined indicator (ntk_cond is nan)"
    assert TEGScore(1.0, 2.0, math.inf, reason="mine").reason == "mine"
    assert best_index([good, better, undefined]) == 1 and final_ranks([undefined, good, better]) == [3, 2, 1]
    assert isinstance(good.ntk_cond, float) and TEGScore(np.float32(2), np.int64(3), 1).regions == 3.0
    with pytest.raises(TypeError, match="TEGScore.regions must be a real number"):
        TEGScore(1.0, "many", 1.0)


def test_distinct_order_ranks_each_architecture_once() -> None:
    # b wins if c's repeat enters the ranks (as a multiset, c's two copies push b's rivals down);
    # ranked as the set {a, b, c}, a and b tie and a, told first, wins.
    a, b, c = TEGScore(1, 1, 1), TEGScore(2, 3, 2), TEGScore(3, 2, 3)
    assert best_index([a, b, c, c]) == 1
    assert distinct_order(["a", "b", "c", "c"], [a, b, c, c]) == [0, 1, 2]
    assert best_distinct_index(["a", "b", "c", "c"], [a, b, c, c]) == 0
    # A repeated key keeps its first score and position; bad ones come last; positions index the input.
    assert distinct_order(["x", "y", "x", "z"], [TEGScore.flagged("bad"), b, a, a]) == [3, 1, 0]
    assert first_occurrences(["x", "y", "x", "z", "y"]) == [0, 1, 3]
    with pytest.raises(ValueError, match="2 keys for 1 scores"):
        distinct_order(["a", "b"], [a])
    with pytest.raises(ValueError, match="no scores"):
        best_distinct_index([], [])


# --- the score cache -----------------------------------------------------------------------------


def test_cache_hit_in_second_scorer(make_scorer, tmp_path) -> None:
    path = tmp_path / "scores.sqlite"
    archs = [make_scorer().space.arch_at(i) for i in GOOD] + [ALL_NONE]
    first = make_scorer(cache=path)
    a = first.score_many(archs)
    assert first.n_measured == 4 and len(first.cache) == 4
    second = make_scorer(cache=str(path))
    b = second.score_many(archs)
    assert second.n_measured == 0
    for x, y in zip(a, b):
        assert y.seconds == 0.0
        assert y.bad == x.bad and y.reason == x.reason
        for key in ("ntk_cond", "regions", "kr_mse"):
            vx, vy = getattr(x, key), getattr(y, key)
            assert vx == vy or (math.isnan(vx) and math.isnan(vy)), key
    # Supernet masks are cached too.
    mask = {edge: ("nor_conv_1x1", "skip_connect") for edge in first.space.full_mask()}
    m1 = first.score_mask(mask)
    third = make_scorer(cache=path)
    m2 = third.score_mask(mask)
    assert third.n_measured == 0 and _values(m1) == _values(m2)


def test_cache_misses_for_other_config_or_data(
    make_scorer, small_config: TEGConfig, embedded: ImageData, tmp_path
) -> None:
    path = tmp_path / "scores.sqlite"
    arch = make_scorer().space.arch_at(GOOD[0])
    base = make_scorer(cache=path)
    base.score(arch)
    other_config = make_scorer(cache=path, config=replace(small_config, regions_batch_size=50))
    other_data = make_scorer(cache=path, data=embedded)
    assert len({base.fingerprint, other_config.fingerprint, other_data.fingerprint}) == 3
    other_config.score(arch)
    other_data.score(arch)
    assert other_config.n_measured == 1 and other_data.n_measured == 1
    assert len(ScoreCache(path)) == 3


_WORKER = textwrap.dedent(
    """
    import json, sys
    from teg_plugin.config import TEGConfig
    from teg_plugin.scorer import TEGScorer
    config = TEGConfig(repeat=1, batch_size=8, regions_batch_size=100, regions_batches=2)
    scorer = TEGScorer("nas-bench-201", "synthetic", config, device="cpu", cache=sys.argv[1])
    scorer.score_many([scorer.space.arch_at(int(i)) for i in sys.argv[2].split(",")])
    print(json.dumps({"n_measured": scorer.n_measured}))
    """
)


@pytest.mark.slow
def test_concurrent_processes_share_one_sqlite_cache(make_scorer, tmp_path) -> None:
    path = tmp_path / "shared.sqlite"  # fresh: both processes also race to create the table
    sets = ([1, 100, 200, 0, 2], [1, 100, 200, 300, 6111])  # overlap scored first, at the same time
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(path), ",".join(map(str, s))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in sets
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (_out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
    measured = [json.loads(out)["n_measured"] for out, _ in outputs]
    scorer = make_scorer(cache=path)
    expected = {scorer.space.format(scorer.space.canonical(scorer.space.arch_at(i))) for s in sets for i in s}
    assert len(expected) == 7
    # Each process measured what it did not find; overlapping archs may have been measured twice.
    assert all(2 <= m <= 5 for m in measured) and sum(measured) >= 7
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT arch, COUNT(*) FROM teg_scores GROUP BY arch").fetchall()
        total = db.execute("SELECT COUNT(*) FROM teg_scores").fetchone()[0]
    assert total == 7 and dict(rows) == {text: 1 for text in expected}
    # The rows are complete and correct: a third scorer measures nothing and agrees with a fresh one.
    union = sorted({i for s in sets for i in s})
    cached = scorer.score_many([scorer.space.arch_at(i) for i in union])
    assert scorer.n_measured == 0
    fresh = make_scorer().score_many([scorer.space.arch_at(i) for i in union[:2]])
    for x, y in zip(fresh, cached):
        assert x.ntk_cond == pytest.approx(y.ntk_cond, rel=1e-12) and x.regions == y.regions


def test_many_openers_of_one_fresh_cache(tmp_path) -> None:
    # Openers racing to create the table of a fresh database: every one must succeed.
    for trial in range(3):
        path = tmp_path / f"fresh{trial}.sqlite"
        barrier = threading.Barrier(6)
        errors: list[BaseException] = []

        def open_and_write(worker: int) -> None:
            barrier.wait()
            try:
                cache = ScoreCache(path)
                cache.put(CacheKey("s", f"arch{worker % 3}", "fp"), TEGScore(1.0, 2.0, float(worker)))
                cache.close()
            except BaseException as err:  # noqa: BLE001 - reported below
                errors.append(err)

        threads = [threading.Thread(target=open_and_write, args=(w,)) for w in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[0]
        assert len(ScoreCache(path)) == 3


def test_bad_cache_locations_give_clear_errors(tmp_path) -> None:
    for location, message in (
        ("foo://bar", "unknown database in score cache URL 'foo://bar'"),
        ("", "score cache location is empty"),
        (tmp_path, "is a folder"),
        ("sqlite:///" + str(tmp_path / "file.txt" / "c.sqlite"), "cannot create the folder"),
    ):
        (tmp_path / "file.txt").write_text("a file, not a folder")
        with pytest.raises(ValueError, match=message):
            ScoreCache(location)
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE teg_scores (key TEXT PRIMARY KEY, foo INTEGER)")
    not_sqlite = tmp_path / "notes.sqlite"
    not_sqlite.write_text("some text, not a database " * 200)
    for location, message in (
        (foreign, "holds a teg_scores table of another layout"),
        (not_sqlite, "cannot open the score cache"),
    ):
        with pytest.raises(ValueError, match=message):
            ScoreCache(location)


def test_postgres_cache_without_a_driver_names_the_extra(monkeypatch) -> None:
    import importlib.util

    from teg_plugin._database import MissingDriverError

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name.startswith("psycopg") else real(name, *a)
    )
    with pytest.raises(MissingDriverError, match=r"teg-plugin\[postgres\]") as info:
        ScoreCache("postgresql://me:secret@127.0.0.1:1/db")
    assert "secret" not in str(info.value)  # the password never reaches a message


def test_an_arch_may_be_given_as_text_or_choice_dict(make_scorer) -> None:
    scorer = make_scorer()
    arch = scorer.space.arch_at(GOOD[0])
    params = scorer.space.to_params(arch)
    reordered = dict(reversed(list(params.items())))
    scores = scorer.score_many([arch, scorer.space.format(arch), params, reordered])
    assert scorer.n_measured == 1 and len(set(scores)) == 1
    assert [r.arch for r in scorer.rank([scorer.space.format(arch)])] == [arch]
    with pytest.raises(ValueError, match="node groups"):
        scorer.score("|nor_conv_3x3~0|")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"space": 3}, "space must be a SearchSpace"),
        ({"config": [1]}, "config must be a TEGConfig"),
        ({"device": 0}, "device must be a str"),
        ({"cache": 3}, "cache must be a ScoreCache"),
    ],
)
def test_scorer_refuses_settings_of_the_wrong_type(settings: dict, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        TEGScorer(**{"data": "synthetic", **settings})


def test_scorer_takes_a_config_dict_and_refuses_one_arch_where_a_list_belongs(make_scorer) -> None:
    scorer = TEGScorer("nas-bench-201", data="synthetic", config={"repeat": 1, "batch_size": 8}, device="cpu")
    assert scorer.config.repeat == 1 and scorer.config.width == 3
    text = scorer.space.format(scorer.space.arch_at(5))
    for call in (scorer.score_many, scorer.rank):
        with pytest.raises(TypeError, match="got one str"):
            call(text)


def test_scorer_refuses_data_of_the_wrong_type() -> None:
    with pytest.raises(TypeError, match="ImageData"):
        TEGScorer("nas-bench-201", data=torch.zeros(4, 3, 32, 32))  # type: ignore[arg-type]


def test_cache_put_is_insert_if_absent() -> None:
    cache = ScoreCache("sqlite://")
    key = CacheKey("nas-bench-201", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "fp")
    assert cache.get(key) is None and len(cache) == 0
    bad = TEGScore.flagged("singular", seconds=2.0)
    assert cache.put(key, bad) is True
    assert cache.put(key, TEGScore(1.0, 2.0, 3.0)) is False  # the first write wins
    got = cache.get(key)
    assert got is not None and got.bad and got.reason == "singular" and got.seconds == 0.0
    assert math.isnan(got.ntk_cond) and math.isnan(got.regions) and len(cache) == 1
    other = CacheKey(key.space, key.arch, "another-fingerprint")
    assert cache.get(other) is None and cache.put(other, TEGScore(1.0, 2.0, 3.0)) is True
    assert cache.get_many([key, other]).keys() == {key, other}


# --- bad input -----------------------------------------------------------------------------------


def test_unknown_space_and_dataset(small_config: TEGConfig) -> None:
    with pytest.raises(ValueError, match="unknown search space 'nas-bench-999'"):
        TEGScorer("nas-bench-999", "synthetic", small_config, device="cpu")
    with pytest.raises(ValueError, match="unknown dataset 'no-such-data'"):
        TEGScorer("nas-bench-201", "no-such-data", small_config, device="cpu")


def test_pool_too_small_or_images_too_small(small_config: TEGConfig) -> None:
    tiny = ImageData(
        "tiny", torch.zeros(10, 3, 8, 8, dtype=torch.uint8), torch.arange(10) % 2, 2, (0.5,) * 3, (0.5,) * 3, "test"
    )
    with pytest.raises(ValueError, match=r"pool has 10 images.*need 16"):
        TEGScorer("nas-bench-201", tiny, small_config, device="cpu")
    small_images = ImageData(
        "pix", torch.zeros(40, 3, 2, 2, dtype=torch.uint8), torch.arange(40) % 2, 2, (0.5,) * 3, (0.5,) * 3, "test"
    )
    with pytest.raises(ValueError, match="smaller than the 3-pixel crops"):
        TEGScorer("nas-bench-201", small_images, small_config, device="cpu")


def test_devices() -> None:
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        TEGConfig(batch_size=1)
    with pytest.raises(ValueError, match="repeat"):
        TEGConfig(repeat=0)
    with pytest.raises(ValueError, match="singular_rtol"):
        TEGConfig(singular_rtol=0.0)
    with pytest.raises(ValueError, match="unknown TEGConfig fields"):
        TEGConfig.from_dict({"batchsize": 8})
    with pytest.raises(ValueError, match="singular_rtol must be a number"):
        TEGConfig(singular_rtol="1e-7")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed must be an int"):
        TEGConfig(seed=1.5)  # type: ignore[arg-type]
    # numpy integers are integers: stored as int, so the fingerprint is that of the plain value
    numpy_config = TEGConfig(batch_size=np.int64(8), repeat=np.int32(1))  # type: ignore[arg-type]
    assert (
        type(numpy_config.batch_size) is int
        and numpy_config.fingerprint() == TEGConfig(batch_size=8, repeat=1).fingerprint()
    )
    config = TEGConfig(repeat=1, batch_size=8)
    assert TEGConfig.from_dict(config.to_dict()) == config
    assert config.fingerprint() == TEGConfig(batch_size=8, repeat=1).fingerprint() != TEGConfig().fingerprint()
    with pytest.raises(ValueError, match="TEGConfig.init must be one of torch-default, kaiming-normal, got 'xavier'"):
        TEGConfig(init="xavier")


def test_settings_added_later_enter_the_fingerprint_only_away_from_their_old_values() -> None:
    # The values printed by the version before `init` and `ntk` existed (Kaiming, exact): caches made
    # then stay valid under those settings, and are never served for the new default init.
    legacy = TEGConfig(init="kaiming-normal", ntk="exact")
    assert legacy.fingerprint() == "f112ebdff9cd8824"
    assert TEGConfig(repeat=1, seed=4, init="kaiming-normal").fingerprint() == "46f9b574a56c2770"
    assert legacy.to_dict()["init"] == "kaiming-normal" and TEGConfig().init == "torch-default"
    assert TEGConfig().fingerprint() not in (legacy.fingerprint(), TEGConfig(ntk="frozen-bn").fingerprint())
    for config in (TEGConfig(), TEGConfig(ntk="frozen-bn"), legacy):
        assert TEGConfig.from_dict(config.to_dict()) == config


def test_supernet_progress_counts_every_new_mask_towards_the_expected_total(make_scorer, tmp_path, capsys) -> None:
    path = tmp_path / "scores.sqlite"
    masks = [
        {edge: ops for edge in make_scorer().space.full_mask()}
        for ops in (("nor_conv_1x1", "skip_connect"), ("nor_conv_3x3",))
    ]
    make_scorer(cache=path).score_mask(masks[0])  # cached before the run below
    capsys.readouterr()
    scorer = make_scorer(cache=path)
    scorer.show_supernet_progress, scorer.expected_supernet_evaluations = True, 2
    for mask in (*masks, masks[0]):  # the repeat is answered from memory and not counted again
        scorer.score_mask(mask)
    assert scorer.n_measured == 1
    err = capsys.readouterr().err
    assert "supernet evaluations" in err and "2/2" in err and "3/2" not in err


def test_score_mask_repeats_average_to_score_mask_and_are_cached(
    make_scorer, small_config: TEGConfig, tmp_path
) -> None:
    path = tmp_path / "scores.sqlite"
    scorer = make_scorer(cache=path)
    mask = {edge: ("nor_conv_1x1", "skip_connect") for edge in scorer.space.full_mask()}
    repeats = scorer.score_mask_repeats(mask)
    assert len(repeats) == small_config.repeat and scorer.n_measured == 1
    assert _values(scorer.score_mask(mask)) == _values(TEGScore.mean_of(repeats))  # measured together
    assert scorer.n_measured == 1
    again = make_scorer(cache=path)
    assert [_values(r) for r in again.score_mask_repeats(mask)] == [_values(r) for r in repeats]
    assert again.n_measured == 0
    # A mask whose mean alone is cached (as older versions stored it) is measured again for its repeats.
    other = {edge: ("nor_conv_3x3",) for edge in scorer.space.full_mask()}
    ScoreCache(tmp_path / "old.sqlite").put(scorer._key(_mask_text(other)), TEGScore(1.0, 2.0, 3.0))
    fresh = make_scorer(cache=tmp_path / "old.sqlite")
    assert fresh.score_mask(other) == TEGScore(1.0, 2.0, 3.0) and fresh.n_measured == 0
    fresh.score_mask_repeats(other)
    assert fresh.n_measured == 1


def test_parallel_tasks_stop_at_the_first_error() -> None:
    # On the CPU the repeats' tasks run in threads. An error (or Ctrl-C) must not wait for every
    # queued task: those not yet started are dropped. Each takes 50 ms, so running all 18 after the
    # error would take one worker 0.9 s; the main thread cancels them within milliseconds.
    from teg_plugin.indicators import measure

    started = threading.Event()
    ran: list[int] = []

    def fail() -> None:
        started.wait(5)
        raise ValueError("task 0 failed")

    def slow() -> None:
        started.set()
        threading.Event().wait(0.3)

    def record(i: int) -> None:
        threading.Event().wait(0.05)
        ran.append(i)

    tasks = [fail, slow, *[(lambda i=i: record(i)) for i in range(18)]]
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(ValueError, match="task 0 failed"):
            measure._run_tasks(tasks, torch.device("cpu"))
        assert torch.get_num_threads() == 2  # the intra-op thread count is restored after the error
    finally:
        torch.set_num_threads(saved)
    assert len(ran) < 18, ran
