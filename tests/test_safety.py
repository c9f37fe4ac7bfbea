"""The safety layer: metrics, safe depths, batched vs recursive search, the oracle on hand-made
driving situations, the shield's rule and wrapper, classifier training, CLI and bad input."""

from __future__ import annotations

import dataclasses
import json

import gymnasium
import numpy as np
import pytest
import torch

import rlgan  # noqa: F401  (registers the envs)
from rlgan.cli import main
from rlgan.envs.driving import Action
from rlgan.envs.registration import DRIVING_ID
from rlgan.data.augment import jitter_colours
from rlgan.safety.classifier import ClassifierShape, MirrorAveraged, SafetyClassifier
from rlgan.safety.evaluation import evaluate_shield, percent_with_error, removed_fraction, return_kept
from rlgan.safety.metrics import classification_report, precision_recall, roc_auc, roc_auc_stderr
from rlgan.safety.oracle import OracleSearch
from rlgan.safety.policies import as_policy
from rlgan.safety.run import SafetyRunInfo, load_safety_run, save_safety_run
from rlgan.safety.search import LearnedSearch, SearchConfig
from rlgan.safety.shield import Shield, ShieldWrapper, choose_action
from rlgan.safety.classifier_eval import evaluate_classifier
from rlgan.safety.pairs import generated_pairs
from rlgan.safety.training import ClassifierConfig, train_classifier
from rlgan.safety.tree import Level, SearchResult, safe_depths
from conftest import record_dataset, write_noise_dataset
from reference_search import recursive_search
from toy_envs import MovingSquareEnv

LEFT, RIGHT, UP = int(Action.LEFT), int(Action.RIGHT), int(Action.UP)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- fakes ----------------------------------------------------------------------------------
class ChaoticPredictor:
    """Frames hold one value v in [-1, 1] everywhere; the next value is a chaotic function of
    the last two frames, the action and the sample index, so trees are irregular."""

    frame_shape = (16, 16, 1)
    n_actions = 3
    env_id = "toy"

    def __init__(self, history: int = 2) -> None:
        self.history = history
        self.calls = 0

    def predict(self, frames, actions, n_samples=1, generator=None):
        self.calls += 1
        last = (frames[:, -1].mean(dim=(1, 2, 3)) + 1) / 2
        previous = (frames[:, 0].mean(dim=(1, 2, 3)) + 1) / 2
        samples = torch.arange(n_samples, dtype=torch.float32)
        value = (3.7 * last + 1.3 * previous + 0.13 * (actions.float() + 1))[:, None] + 0.011 * samples
        value = torch.remainder(value, 1.0) * 2 - 1  # (B, K)
        return value[:, :, None, None, None].expand(-1, -1, 1, 16, 16).clone()


def threshold_classifier(pairs: torch.Tensor) -> torch.Tensor:
    """Unsafe when the child's value is above 0.4 (logit)."""
    return 50.0 * (pairs[:, 1].mean(dim=(1, 2)) - 0.4)


class CopyLastPredictor:
    """Predicts that nothing changes (for shield tests on driving-sized frames)."""

    history, n_actions, frame_shape, env_id = 1, 3, (64, 64, 3), "rlgan/Driving-v0"

    def predict(self, frames, actions, n_samples=1, generator=None):
        return frames[:, -1:].expand(-1, n_samples, -1, -1, -1).clone()


class FixedSearch:
    """A search (or an oracle probe) that always answers the same safe depths."""

    history, n_actions = 1, 3

    def __init__(self, depths, depth=3, risks=None):
        self.depths = np.asarray(depths)
        self.risks = None if risks is None else np.asarray(risks, dtype=float)
        self.config = SearchConfig(depth=depth)

    def search(self, frames=None, env=None, actions=None):
        depths = self.depths.copy()
        risks = None if self.risks is None else self.risks.copy()
        if actions is not None:
            skipped = [a for a in range(3) if a not in actions]
            depths[skipped] = -1
            if risks is not None:
                risks[skipped] = np.nan
        return SearchResult(safe_depths=depths, depth=self.config.depth, nodes=0, elapsed_ms=0.0,
                            risks=risks)


class QPolicy:
    def __init__(self, action, q):
        self.action, self.q = action, np.asarray(q, dtype=float)

    def act(self, observation, env=None):
        return self.action

    def preferences(self, observation, env=None):
        return self.q


def driving_situation(env, gap=300.0, speed=20.0, lateral=0.0):
    """A straight road (episode start), car 0 in the middle lane ``gap`` m ahead at 10 m/s,
    car 1 far ahead on the left; the player at ``lateral`` m from the centre."""
    state = env.unwrapped.get_state()
    return dataclasses.replace(
        state, car_position=np.array([state.position + gap, state.position + 250.0]),
        car_lane=np.array([1, 0]), car_speed=np.array([10.0, 15.0]), speed=speed, lateral=lateral)


@pytest.fixture(scope="module")
def driving():
    env = gymnasium.make("rlgan/Driving-v0", cars=2)
    env.reset(seed=3)
    return env


def toy_dataset(path, steps=600, seed=0):
    """Random moves of the toy square (episodes of 7 steps), shards of 200."""
    record_dataset(path, MovingSquareEnv(max_steps=7), "toy/MovingSquare", {}, "random", steps,
                   seed=seed, shard_size=200)
    return path


# -- metrics and safe depths ------------------------------------------------------------------
def test_roc_auc_stderr_resamples_groups_together():
    rng = np.random.default_rng(1)
    labels = rng.random(300) < 0.2
    scores = rng.random(300) + 0.5 * labels
    single = roc_auc_stderr(labels, scores, np.arange(300))
    assert 0.005 < single < 0.05
    # Each example twice, both copies in one group: every resample is a resample of the
    # original examples doubled, the same AUC; as separate groups they would look independent.
    twice = np.repeat(np.arange(300), 2)
    assert roc_auc_stderr(labels[twice], scores[twice], twice) == single
    assert roc_auc_stderr(labels[twice], scores[twice], np.arange(600)) < 0.8 * single
    assert np.isnan(roc_auc_stderr(np.zeros(5, bool), np.arange(5.0), np.arange(5)))


def test_roc_auc_and_precision_recall_on_known_inputs():
    labels = np.array([0, 0, 1, 1, 0, 1], dtype=bool)
    assert roc_auc(labels, np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.7])) == 1.0
    assert roc_auc(labels, -np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.7])) == 0.0
    assert roc_auc(labels, np.full(6, 0.5)) == 0.5
    # 9 positive/negative pairs: 8 ordered right, 1 tie -> (8 + 0.5) / 9
    assert roc_auc(labels, np.array([0.1, 0.2, 0.8, 0.9, 0.7, 0.7])) == pytest.approx(8.5 / 9)
    assert np.isnan(roc_auc(np.zeros(3, bool), np.arange(3.0)))
    assert precision_recall(labels, np.array([0, 1, 1, 0, 0, 1], bool)) == (2 / 3, 2 / 3)
    report = classification_report(labels, np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.7]), 0.5)
    assert report == {"n": 6, "positives": 3, "precision": 1.0, "recall": 1.0, "accuracy": 1.0,
                      "roc_auc": 1.0}


def test_safe_depths_of_a_hand_made_tree():
    # Root: action 0 unsafe, 1 safe, 2 ends the episode safely. Node 1's children: only
    # action 2 safe, and its child at level 3 is unsafe for every action.
    levels = [Level(np.array([[True, False, False]]), np.array([[False, False, True]])),
              Level(np.array([[True, True, False]]), np.zeros((1, 3), bool)),
              Level(np.array([[True, True, True]]), np.zeros((1, 3), bool))]
    assert safe_depths(levels, 3).tolist() == [0, 2, 3]
    assert safe_depths(levels[:2], 2).tolist() == [0, 2, 2]


# -- learned search ---------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["breadth-first", "depth-first"])
@pytest.mark.parametrize("depth,samples,history", [(1, 1, 1), (2, 1, 2), (3, 2, 2), (4, 1, 1), (4, 3, 2)])
@pytest.mark.parametrize("start", [0.05, 0.37, 0.81])
def test_batched_search_equals_recursive_search(depth, samples, history, start, strategy):
    predictor = ChaoticPredictor(history)
    frames = np.full((history, 16, 16, 1), int(start * 255), dtype=np.uint8)
    config = SearchConfig(depth=depth, samples=samples, threshold=0.5, node_budget=10_000,
                          strategy=strategy)
    result = LearnedSearch(predictor, threshold_classifier, config).search(frames)
    assert result.safe_depths.dtype == np.int64 and result.safe_depths.shape == (3,)
    assert result.depth == depth and result.elapsed_ms >= 0.0
    if strategy == "breadth-first":
        assert predictor.calls <= depth  # one batched generator call per level
    assert result.safe_depths.tolist() == recursive_search(predictor, threshold_classifier, frames, config).tolist()


@pytest.mark.parametrize("depth,budget", [(3, 10_000), (5, 10_000), (4, 40)])
@pytest.mark.parametrize("start", np.linspace(0.02, 0.98, 13).tolist())
def test_depth_first_search_gives_the_breadth_first_depths_from_fewer_nodes(depth, budget, start):
    frames = np.full((2, 16, 16, 1), int(start * 255), dtype=np.uint8)
    results = {strategy: LearnedSearch(ChaoticPredictor(), threshold_classifier,
                                       SearchConfig(depth=depth, node_budget=budget, strategy=strategy)
                                       ).search(frames)
               for strategy in ("breadth-first", "depth-first")}
    breadth, deep = results["breadth-first"], results["depth-first"]
    assert deep.nodes <= breadth.nodes <= budget
    if breadth.depth == deep.depth == depth:  # neither ran out of budget
        assert deep.safe_depths.tolist() == breadth.safe_depths.tolist()
    else:  # each knows every safe depth up to the horizon it reports
        horizon = min(breadth.depth, deep.depth)
        assert (np.minimum(deep.safe_depths, horizon) == np.minimum(breadth.safe_depths, horizon)).all()
    np.testing.assert_array_equal(deep.risks, breadth.risks)


@pytest.mark.parametrize("cut", [-0.6, -0.3, 0.0, 0.3])
def test_depth_first_search_backtracks_to_the_recursive_depths(cut):
    """Cuts where many children are unsafe: first actions die out at every depth, and the
    depth-first search has to leave dead branches for others."""
    def classifier(pairs):
        return 50.0 * (pairs[:, 1].mean(dim=(1, 2)) - cut)

    backtracked, depths_seen = 0, set()
    for depth in (3, 5):
        config = SearchConfig(depth=depth, node_budget=10_000)
        for start in np.linspace(0.01, 0.99, 25):
            frames = np.full((2, 16, 16, 1), int(start * 255), dtype=np.uint8)
            predictor = ChaoticPredictor()
            result = LearnedSearch(predictor, classifier, config).search(frames)
            expected = recursive_search(ChaoticPredictor(), classifier, frames, config)
            assert result.safe_depths.tolist() == expected.tolist()
            backtracked += predictor.calls > depth
            depths_seen.update(expected.tolist())
    assert backtracked > 0 and len(depths_seen) >= 3


@pytest.mark.parametrize("depth", [1, 3, 5])
def test_depth_first_search_of_a_safe_tree_predicts_one_path_per_first_action(depth):
    predictor = ChaoticPredictor()
    never_unsafe = LearnedSearch(predictor, lambda pairs: torch.full((len(pairs),), -9.0),
                                 SearchConfig(depth=depth))
    result = never_unsafe.search(np.full((2, 16, 16, 1), 40, dtype=np.uint8))
    assert result.safe_depths.tolist() == [depth] * 3 and result.depth == depth
    assert result.nodes == 3 * depth and predictor.calls == depth


@pytest.mark.parametrize("depth,budget", [(3, 10_000), (5, 10_000), (4, 20)])
def test_searches_of_many_states_at_once_equal_one_search_each_in_fewer_calls(depth, budget):
    def classifier(pairs):
        return 50.0 * (pairs[:, 1].mean(dim=(1, 2)) - 0.1)

    config = SearchConfig(depth=depth, node_budget=budget)
    starts = np.linspace(0.01, 0.99, 17)
    frames = np.stack([np.stack([np.full((16, 16, 1), int(a * 255), np.uint8),
                                 np.full((16, 16, 1), int(b * 255), np.uint8)])
                       for a, b in zip(starts, starts[::-1])])
    actions = [None if i % 3 == 0 else [i % 3] if i % 3 == 1 else [0, 2] for i in range(len(frames))]
    predictor = ChaoticPredictor()
    together = LearnedSearch(predictor, classifier, config).search_many(frames, actions)
    alone_calls = 0
    for state, state_actions, result in zip(frames, actions, together):
        alone_predictor = ChaoticPredictor()
        alone = LearnedSearch(alone_predictor, classifier, config).search(state, actions=state_actions)
        alone_calls += alone_predictor.calls
        assert result.safe_depths.tolist() == alone.safe_depths.tolist()
        assert (result.depth, result.nodes) == (alone.depth, alone.nodes)
        np.testing.assert_allclose(result.risks, alone.risks, rtol=1e-5, atol=1e-9)
    assert predictor.calls < alone_calls / 4
    with pytest.raises(ValueError, match="got 17 states and 2 action lists"):
        LearnedSearch(ChaoticPredictor(), classifier, config).search_many(frames, actions[:2])


def test_depth_first_search_stops_at_the_budget_and_reports_the_horizon_it_knows():
    search = LearnedSearch(ChaoticPredictor(), lambda pairs: torch.full((len(pairs),), -9.0),
                           SearchConfig(depth=4, node_budget=8))
    result = search.search(np.full((2, 16, 16, 1), 40, dtype=np.uint8))
    assert result.nodes == 6 and result.depth == 2 and result.safe_depths.tolist() == [2, 2, 2]


@pytest.mark.parametrize("start", [0.05, 0.37, 0.81])
def test_searching_some_first_actions_gives_their_full_search_depths(start):
    frames = np.full((2, 16, 16, 1), int(start * 255), dtype=np.uint8)
    search = LearnedSearch(ChaoticPredictor(), threshold_classifier, SearchConfig(depth=3))
    full = search.search(frames).safe_depths
    for actions in ([0], [2], [1, 2]):
        part = search.search(frames, actions=actions).safe_depths
        assert [part[a] for a in actions] == [full[a] for a in actions]
        assert all(part[a] == -1 for a in range(3) if a not in actions)
    with pytest.raises(ValueError, match="distinct values in 0..2"):
        search.search(frames, actions=[3])


@pytest.mark.parametrize("samples", [1, 3])
def test_search_reports_the_first_step_risk_of_each_searched_action(samples):
    predictor = ChaoticPredictor()
    frames = np.full((2, 16, 16, 1), 90, dtype=np.uint8)
    search = LearnedSearch(predictor, threshold_classifier, SearchConfig(depth=2, samples=samples))
    root = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(127.5).sub(1).unsqueeze(0)
    children = predictor.predict(root.expand(3, -1, -1, -1, -1), torch.arange(3), samples)
    parents = root[:, -1].expand(3 * samples, -1, -1, -1)
    pairs = torch.cat([parents, children.reshape(3 * samples, 1, 16, 16)], dim=1)
    expected = torch.sigmoid(threshold_classifier(pairs)).reshape(3, samples).amax(dim=1).numpy()
    result = search.search(frames)
    assert result.risks.dtype == np.float64 and result.risks.shape == (3,)
    np.testing.assert_allclose(result.risks, expected, rtol=1e-5)
    assert ((result.risks >= 0.5) == (result.safe_depths == 0)).all()
    part = search.search(frames, actions=[2]).risks
    assert np.isnan(part[:2]).all() and part[2] == pytest.approx(expected[2], rel=1e-5)


def test_search_prunes_unsafe_nodes_and_stops_at_the_budget():
    frames = np.full((2, 16, 16, 1), 40, dtype=np.uint8)
    predictor = ChaoticPredictor()
    breadth = dict(strategy="breadth-first")
    full = LearnedSearch(predictor, threshold_classifier,
                         SearchConfig(depth=3, node_budget=10_000, **breadth)).search(frames)
    assert full.nodes < 3 + 9 + 27  # some nodes were pruned
    everything_unsafe = LearnedSearch(predictor, lambda pairs: torch.full((len(pairs),), 9.0),
                                      SearchConfig(depth=3, **breadth)).search(frames)
    assert everything_unsafe.safe_depths.tolist() == [0, 0, 0] and everything_unsafe.nodes == 3
    never_unsafe = LearnedSearch(predictor, lambda pairs: torch.full((len(pairs),), -9.0),
                                 SearchConfig(depth=3, node_budget=12, **breadth))
    result = never_unsafe.search(frames)
    assert result.depth == 2 and result.nodes == 12 and result.safe_depths.tolist() == [2, 2, 2]


@pytest.mark.parametrize("options,message", [
    ({"depth": 0}, "depth must be an integer in 1..8"), ({"depth": 9}, "depth must be"),
    ({"depth": True}, "depth must be an integer in 1..8, got True"),
    ({"threshold": 1.5}, "threshold must be in"), ({"samples": 0}, "samples must be"),
    ({"node_budget": 0}, "node_budget must be"),
    ({"strategy": "best-first"}, "strategy must be one of depth-first, breadth-first")])
def test_search_config_rejects_bad_values(options, message):
    with pytest.raises(ValueError, match=message):
        SearchConfig(**options)


def test_budget_that_cannot_cover_depth_one_is_an_error():
    with pytest.raises(ValueError, match="node_budget 2 cannot cover even depth 1"):
        LearnedSearch(ChaoticPredictor(), threshold_classifier, SearchConfig(node_budget=2))
    with pytest.raises(ValueError, match="expected 2 frame"):
        LearnedSearch(ChaoticPredictor(), threshold_classifier).search(np.zeros((1, 16, 16, 1), np.uint8))


# -- oracle search in the driving simulator ---------------------------------------------------
@pytest.mark.parametrize("batched", [True, False])
def test_oracle_marks_the_right_actions_unsafe(driving, batched):
    oracle = OracleSearch.for_env(driving, SearchConfig(depth=3), batched=batched)
    assert oracle.batched == batched
    assert oracle.search_state(driving_situation(driving)).safe_depths.tolist() == [3, 3, 3]
    # The road edge just to the left: steering left leaves the road at once.
    assert oracle.search_state(driving_situation(driving, lateral=-5.3)).safe_depths.tolist() == [0, 3, 3]
    assert oracle.search_state(driving_situation(driving, lateral=5.3)).safe_depths.tolist() == [3, 0, 3]
    # A slower car 4.8 m straight ahead, the player a little right of it: only steering right
    # twice clears it before the crash at the second step.
    depths = oracle.search_state(driving_situation(driving, gap=4.8, speed=25.0, lateral=0.8)).safe_depths
    assert depths[RIGHT] == 3 and depths[UP] == 1 and depths[LEFT] == 1
    # The search never moves the env it reads.
    before = driving.unwrapped.get_state()
    oracle.search(env=driving)
    assert driving.unwrapped.get_state() == before
    oracle.close()


@pytest.mark.parametrize("depth", [1, 3, 5])
def test_depth_first_oracle_equals_breadth_first_from_fewer_steps(depth):
    env = gymnasium.make(DRIVING_ID, hazard_start=1.0, max_steps=30)
    searches = {strategy: OracleSearch.for_env(env, SearchConfig(depth=depth, strategy=strategy))
                for strategy in ("depth-first", "breadth-first")}
    nodes = {strategy: 0 for strategy in searches}
    policy = np.random.default_rng(depth)
    for episode in range(12):
        env.reset(seed=episode)
        for _ in range(8):
            results = {strategy: search.search(env=env) for strategy, search in searches.items()}
            assert (results["depth-first"].safe_depths.tolist()
                    == results["breadth-first"].safe_depths.tolist())
            assert results["depth-first"].depth == results["breadth-first"].depth == depth
            for strategy, result in results.items():
                nodes[strategy] += result.nodes
            if env.step(int(policy.integers(3)))[2]:
                break
    if depth > 1:
        assert nodes["depth-first"] < nodes["breadth-first"] / 2
    for search in searches.values():
        search.close()


def test_depth_first_oracle_within_a_node_budget_reports_the_horizon_it_reached(driving):
    state = driving_situation(driving, gap=4.8, speed=25.0, lateral=0.8)
    full = OracleSearch.for_env(driving, SearchConfig(depth=3)).search_state(state)
    tight = OracleSearch.for_env(driving, SearchConfig(depth=3, node_budget=4)).search_state(state)
    assert tight.nodes <= 4 and tight.depth < 3
    assert (tight.safe_depths == np.minimum(full.safe_depths, tight.depth)).all()


def test_oracle_on_hide_and_seek_batched_equals_loop():
    env = gymnasium.make("rlgan/HideAndSeek-v0")
    env.reset(seed=1)
    for _ in range(12):  # past the preparation phase
        env.step(0)
    batched = OracleSearch.for_env(env, SearchConfig(depth=2))
    loop = OracleSearch.for_env(env, SearchConfig(depth=2), batched=False)
    assert batched.batched and not loop.batched
    assert batched.search(env=env).safe_depths.tolist() == loop.search(env=env).safe_depths.tolist()


def test_oracle_needs_get_state():
    gymnasium.register("toy/MovingSquare-v0", entry_point=MovingSquareEnv) \
        if "toy/MovingSquare-v0" not in gymnasium.registry else None
    with pytest.raises(ValueError, match="has no get_state"):
        OracleSearch("toy/MovingSquare-v0")


# -- shield ---------------------------------------------------------------------------------------
def test_choose_action_never_overrides_a_safe_action_and_always_overrides_depth_zero():
    rng = np.random.default_rng(0)
    for _ in range(500):
        depths = rng.integers(0, 4, size=3)
        proposed = int(rng.integers(3))
        chosen = choose_action(depths, proposed, 3, rng.normal(size=3))
        if depths[proposed] >= 3:
            assert chosen == proposed
        else:
            assert depths[chosen] == depths.max()
        if depths[proposed] == 0 and depths.max() > 0:
            assert chosen != proposed


def test_lazy_shield_decides_like_the_full_search(driving):
    rng = np.random.default_rng(1)
    for _ in range(100):
        depths, proposed = rng.integers(0, 4, size=3), int(rng.integers(3))
        q = rng.normal(size=3)
        lazy = Shield(FixedSearch(depths), policy=QPolicy(proposed, q)).decide(None, proposed)
        full = Shield(FixedSearch(depths), policy=QPolicy(proposed, q), lazy=False).decide(None, proposed)
        assert lazy.shielded_action == full.shielded_action
    oracle = OracleSearch.for_env(driving, SearchConfig(depth=3))
    situation = driving_situation(driving, gap=4.8, speed=25.0, lateral=0.8)
    driving.unwrapped.set_state(situation)
    for proposed in range(3):
        lazy = Shield(oracle).decide(None, proposed, driving)
        full = Shield(oracle, lazy=False).decide(None, proposed, driving)
        assert lazy.shielded_action == full.shielded_action == RIGHT
        assert full.safe_depths.tolist() == [1, 3, 1]
        assert lazy.safe_depths[proposed] == full.safe_depths[proposed]


def test_choose_action_breaks_ties_by_policy_preference():
    depths = np.array([2, 0, 2])
    assert choose_action(depths, 1, 3, preferences=np.array([0.1, 9.0, 0.5])) == 2
    assert choose_action(depths, 1, 3, preferences=np.array([0.9, 9.0, 0.5])) == 0
    assert choose_action(depths, 1, 3) == 0
    assert choose_action(depths, 1, 3, order=[2, 1, 0]) == 2
    assert choose_action(np.array([2, 1, 2]), 0, 3) == 0  # already among the safest


def test_choose_action_takes_the_least_risky_action_when_none_reaches_the_required_depth():
    risks = np.array([0.95, 0.6, 0.99])
    assert choose_action(np.array([0, 0, 0]), 2, 1, risks=risks) == 1
    assert choose_action(np.array([0, 0, 0]), 2, 1) == 2  # without risks the policy's own stays
    assert choose_action(np.array([1, 0, 1]), 1, 3, preferences=np.array([0.0, 0.0, 5.0]),
                         risks=risks) == 0  # depth first, then risk
    assert choose_action(np.array([0, 0, 0]), 1, 1, preferences=np.array([9.0, 0.0, 0.0]),
                         risks=np.array([0.7, 0.7, 0.9])) == 1  # the policy's own among the least risky
    # an action reaching the required depth is never swapped for a less risky one
    assert choose_action(np.array([0, 2, 2]), 0, 2, preferences=np.array([0.0, 0.0, 1.0]),
                         risks=np.array([0.9, 0.0, 0.4])) == 2
    assert choose_action(np.array([0, 3, 1]), 1, 3, risks=np.array([0.0, 0.9, 0.0])) == 1


def test_lazy_shield_with_risks_decides_like_the_full_search():
    rng = np.random.default_rng(2)
    for _ in range(200):
        depths, proposed, risks = rng.integers(0, 3, size=3), int(rng.integers(3)), rng.random(3)
        q = rng.normal(size=3)
        lazy = Shield(FixedSearch(depths, depth=2, risks=risks), policy=QPolicy(proposed, q))
        full = Shield(FixedSearch(depths, depth=2, risks=risks), policy=QPolicy(proposed, q), lazy=False)
        assert lazy.decide(None, proposed).shielded_action == full.decide(None, proposed).shielded_action


def test_shield_wrapper_reports_its_decisions_on_a_toy_env():
    shield = Shield(FixedSearch([0, 3, 1]), policy=QPolicy(0, [5.0, 1.0, 2.0]))
    env = ShieldWrapper(MovingSquareEnv(), shield)
    env.reset(seed=0)
    _, _, _, _, info = env.step(0)
    assert info["shield_intervened"] and info["original_action"] == 0 and info["shielded_action"] == 1
    assert info["safe_depths"].tolist() == [0, 3, 1] and info["shield_latency_ms"] >= 0.0
    _, _, _, _, info = env.step(1)
    assert not info["shield_intervened"] and info["shielded_action"] == 1
    assert shield.act(np.zeros((16, 16, 3), np.uint8)) == 1
    with pytest.raises(ValueError, match="invalid action"):
        env.step(7)
    with pytest.raises(ValueError, match="required_depth must be an integer in 1..3"):
        Shield(FixedSearch([0, 0, 0]), required_depth=4)
    with pytest.raises(ValueError, match="required_depth must be an integer in 1..3, got True"):
        Shield(FixedSearch([0, 0, 0]), required_depth=True)


def test_oracle_shield_steers_away_from_the_road_edge(driving):
    env = gymnasium.make("rlgan/Driving-v0", cars=2)
    shielded = ShieldWrapper(env, Shield(OracleSearch.for_env(env, SearchConfig(depth=3))))
    shielded.reset(seed=3)
    env.unwrapped.set_state(driving_situation(env, lateral=-5.3))
    _, _, terminated, _, info = shielded.step(LEFT)
    assert info["shield_intervened"] and info["shielded_action"] in (RIGHT, UP)
    assert not info["unsafe"] and not terminated
    _, _, _, _, info = shielded.step(UP)  # safe: kept
    assert not info["shield_intervened"] and info["shielded_action"] == UP


def test_learned_shield_keeps_history_and_checks_frames():
    search = LearnedSearch(ChaoticPredictor(history=2), threshold_classifier, SearchConfig(depth=2))
    shield = Shield(search)
    frame = np.full((16, 16, 1), 10, np.uint8)
    decision = shield.decide(frame, 0)
    assert len(shield.history) == 2 and decision.latency_ms >= 0.0
    shield.decide(frame + 1, decision.shielded_action)
    assert np.array_equal(shield.history[-1], frame + 1)
    shield.reset()
    assert len(shield.history) == 0


# -- classifier ---------------------------------------------------------------------------------
def test_classifier_shapes_and_bad_input():
    model = SafetyClassifier(ClassifierShape(height=32, width=48, channels=1))
    assert model(torch.zeros(5, 2, 32, 48)).shape == (5,)
    with pytest.raises(ValueError, match="expected pairs of shape"):
        model(torch.zeros(5, 6, 32, 48))
    with pytest.raises(ValueError, match="height must be an integer >= 16"):
        ClassifierShape(height=8)


def test_mirror_averaged_classifier_scores_the_mean_of_a_pair_and_its_mirror_image():
    torch.manual_seed(0)
    model = SafetyClassifier(ClassifierShape(height=16, width=24, channels=3)).eval()
    pairs = torch.rand(7, 6, 16, 24) * 2 - 1
    mirrored = pairs.flip(-1)
    averaged = MirrorAveraged(model).eval()
    with torch.no_grad():
        expected = (torch.sigmoid(model(pairs)) + torch.sigmoid(model(mirrored))) / 2
        assert not torch.allclose(torch.sigmoid(model(pairs)), torch.sigmoid(model(mirrored)))
        assert torch.allclose(torch.sigmoid(averaged(pairs)), expected, atol=1e-6)
        assert torch.allclose(averaged(pairs), averaged(mirrored), atol=1e-5)
        # saturated logits stay finite instead of rounding to +-inf
        saturated = MirrorAveraged(lambda x: x[:, 0, 0, 0] * 1e3)(pairs)
        assert torch.isfinite(saturated).all()
    with pytest.raises(ValueError, match="expected pairs of shape"):
        averaged(torch.zeros(2, 4, 16, 24))


def test_classifier_training_lowers_loss_and_beats_chance(tmp_path):
    data = toy_dataset(tmp_path / "toy", steps=700)
    summary = train_classifier(data, tmp_path / "run", ClassifierConfig(steps=150, batch_size=32, device="cpu",
                                                                        checkpoint_every=50),
                               progress=False)
    assert summary["loss_end"] < summary["loss_start"]
    assert summary["metrics"]["real"]["roc_auc"] > 0.7
    model, info = load_safety_run(tmp_path / "run")
    assert info.env_id == "toy/MovingSquare" and info.frame_shape == (16, 16, 3)
    assert not model.training
    result = evaluate_classifier(tmp_path / "run", data)
    assert result["split"] == "held-out episodes" and result["real"] == summary["metrics"]["real"]
    with pytest.raises(FileExistsError, match="already holds a safety run"):
        train_classifier(data, tmp_path / "run", ClassifierConfig(steps=1), progress=False)


def test_training_with_a_world_model_adds_generated_pairs(tmp_path):
    data = write_noise_dataset(tmp_path / "data")
    summary = train_classifier(data, tmp_path / "run", ClassifierConfig(steps=3, batch_size=8, device="cpu",
                                                                   val_fraction=0.25),
                               predictor=CopyLastPredictor(), worldmodel_run=tmp_path / "wm",
                               progress=False)
    assert summary["generated_pairs"] == 18 and summary["metrics"]["generated"]["n"] == 6
    with pytest.raises(ValueError, match="world model was trained for toy, but the data"):
        train_classifier(data, tmp_path / "other", ClassifierConfig(steps=1), predictor=ChaoticPredictor(),
                         progress=False)


class BrighteningPredictor(CopyLastPredictor):
    """Each step adds (action + 1) / 10 to every value of the last frame (in [-1, 1]), clamped."""

    def predict(self, frames, actions, n_samples=1, generator=None):
        step = frames[:, -1:] + (actions.float() + 1)[:, None, None, None, None] / 10
        return step.clamp(-1, 1).expand(-1, n_samples, -1, -1, -1).clone()


def test_rollout_pairs_follow_the_models_open_loop_rollouts(tmp_path):
    from rlgan.data import TransitionDataset
    from rlgan.worldmodel.frames import to_uint8, to_unit

    data = write_noise_dataset(tmp_path / "data")  # 4 episodes of 6 steps, the last one unsafe
    pairs = generated_pairs(data, None, BrighteningPredictor(), 1000, np.random.default_rng(0),
                            torch.device("cpu"), rollout_depth=3)
    assert len(pairs) == 4 * (3 + 3 + 3 + 3 + 2 + 1)  # a rollout stops where its episode does
    assert pairs.unsafe.sum() == 4 * 3  # the crash, in the rollouts from it and the 2 steps before
    dataset = TransitionDataset(data, history=1)
    rows = dataset.indices[:3]  # the rollout from episode 0's first step: pairs 0, 1, 2
    frame = to_unit(torch.from_numpy(dataset.arrays["obs"][rows[0]]).permute(2, 0, 1))
    expected = [frame]
    for action in dataset.arrays["action"][rows]:
        expected.append((expected[-1] + (float(action) + 1) / 10).clamp(-1, 1))
    expected = to_uint8(torch.stack(expected))
    assert torch.equal(pairs.frame_t[:3], expected[:3]) and torch.equal(pairs.frame_t1[:3], expected[1:])
    assert not torch.equal(expected[1], expected[2]) and not pairs.unsafe[:3].any()
    few = generated_pairs(data, None, BrighteningPredictor(), 9, np.random.default_rng(0),
                          torch.device("cpu"), rollout_depth=3)
    assert len(few) == 3 + 2 + 1 and few.unsafe.sum() == 3  # 3 states: episode 0's last 3, into the crash
    with pytest.raises(ValueError, match="rollout_depth > 1 goes without counterfactual"):
        generated_pairs(data, None, BrighteningPredictor(), 9, np.random.default_rng(0),
                        torch.device("cpu"), every_action=True, rollout_depth=3)


def test_a_classifier_trains_and_is_evaluated_on_rollout_pairs(tmp_path, monkeypatch):
    import rlgan.safety.predictor

    data = write_noise_dataset(tmp_path / "data")
    config = ClassifierConfig(steps=2, batch_size=8, device="cpu", val_fraction=0.25, rollout_depth=3)
    summary = train_classifier(data, tmp_path / "run", config, predictor=BrighteningPredictor(),
                               worldmodel_run=tmp_path / "wm", progress=False)
    assert summary["generated_pairs"] == 3 * 15 and summary["metrics"]["generated"]["n"] == 15
    monkeypatch.setattr(rlgan.safety.predictor, "load_predictor", lambda run, device: BrighteningPredictor())
    result = evaluate_classifier(tmp_path / "run", data)  # the run's world model, its rollouts
    assert result["generated"]["n"] == 15 and result["generated"]["positives"] == 3
    with pytest.raises(ValueError, match="give the world model"):
        train_classifier(data, tmp_path / "alone", config, progress=False)
    assert not (tmp_path / "alone" / "config.json").exists()
    for bad in (0, 17, True, 2.0):
        with pytest.raises(ValueError, match=f"rollout_depth must be an integer in 1..16, got {bad!r}"):
            ClassifierConfig(rollout_depth=bad)
    with pytest.raises(ValueError, match="leave counterfactual and doom_horizon unset"):
        ClassifierConfig(rollout_depth=2, doom_horizon=1)


def driving_one_action_dataset(path, action, steps=120):
    """120 steps of rlgan/Driving-v0 (6 cars, episodes of at most 40 steps) taking ``action``
    only, recorded with seed 7; returns the env options."""
    kwargs = {"max_steps": 40, "cars": 6}
    record_dataset(path, gymnasium.make("rlgan/Driving-v0", **kwargs), "rlgan/Driving-v0", kwargs,
                   lambda observation: action, steps, seed=7)
    return kwargs


def test_counterfactual_pairs_label_every_action_by_replay(tmp_path):
    driving_one_action_dataset(tmp_path / "data", LEFT)  # off the road
    pairs = generated_pairs(tmp_path / "data", None, CopyLastPredictor(), 30, np.random.default_rng(0),
                            torch.device("cpu"), every_action=True)
    assert len(pairs) == 30 and pairs.frame_t1.shape == (30, 3, 64, 64)
    assert torch.equal(pairs.frame_t[0::3], pairs.frame_t[1::3])  # three actions per state
    by_state = pairs.unsafe.reshape(10, 3)
    assert by_state[:, int(Action.LEFT)].any()  # the recorded exits, replayed
    assert not by_state[:, int(Action.RIGHT)].all()  # steering back is safe somewhere
    summary = train_classifier(tmp_path / "data", tmp_path / "run",
                               ClassifierConfig(steps=2, batch_size=8, device="cpu", max_generated=30,
                                                counterfactual=True),
                               predictor=CopyLastPredictor(), progress=False)
    assert summary["generated_pairs"] % 3 == 0
    with pytest.raises(ValueError, match="counterfactual must be true or false, got 'maybe'"):
        ClassifierConfig(counterfactual="maybe")


def test_real_counterfactual_frames_are_the_simulators_next_frames(tmp_path):
    from rlgan.data import TransitionDataset
    from rlgan.data.replay import replay_every_action

    driving_one_action_dataset(tmp_path / "data", LEFT)
    options = dict(max_pairs=30, every_action=True, device=torch.device("cpu"))
    generated = generated_pairs(tmp_path / "data", None, CopyLastPredictor(), rng=np.random.default_rng(0), **options)
    real = generated_pairs(tmp_path / "data", None, CopyLastPredictor(), rng=np.random.default_rng(0),
                           frames="real", **options)
    both = generated_pairs(tmp_path / "data", None, CopyLastPredictor(), rng=np.random.default_rng(0),
                           frames="both", **options)
    assert torch.equal(real.frame_t, generated.frame_t) and np.array_equal(real.unsafe, generated.unsafe)
    assert torch.equal(generated.frame_t1, generated.frame_t)  # copy-last "predictions"
    dataset = TransitionDataset(tmp_path / "data", history=1)
    chosen = [int(np.flatnonzero((dataset.arrays["obs"][dataset.indices] == frame.permute(1, 2, 0).numpy())
                                 .all(axis=(1, 2, 3)))[0]) for frame in real.frame_t[::3]]
    true_frames, true_unsafe = replay_every_action(dataset, np.array(chosen), "rlgan/Driving-v0",
                                                   dataset.metadata["env_kwargs"], 3)
    assert torch.equal(real.frame_t1, torch.from_numpy(true_frames.reshape(-1, 64, 64, 3)).permute(0, 3, 1, 2))
    assert np.array_equal(real.unsafe, true_unsafe.reshape(-1))
    assert len(both) == 60 and torch.equal(both.frame_t1[30:], real.frame_t1)
    with pytest.raises(ValueError, match="unknown counterfactual_frames 'true'.*'generated', 'real', 'both'"):
        ClassifierConfig(counterfactual_frames="true")


def test_doomed_steps_are_labelled_unsafe_before_the_crash(driving):
    from rlgan.safety.labels import doom_oracle, outcome_labels

    # A slower car 4.8 m ahead: up and left crash at the second step whatever follows, right
    # escapes (the oracle test above); no first step is itself unsafe.
    driving.unwrapped.set_state(driving_situation(driving, gap=4.8, speed=25.0, lateral=0.8))
    before = driving.unwrapped.get_state()
    actions = [LEFT, RIGHT, UP]
    assert outcome_labels(driving, actions).tolist() == [False, False, False]
    oracle = doom_oracle("rlgan/Driving-v0", {"cars": 2}, 1)
    assert outcome_labels(driving, actions, oracle).tolist() == [True, False, True]
    assert driving.unwrapped.get_state() == before
    assert doom_oracle("rlgan/Driving-v0", {}, 0) is None
    with pytest.raises(ValueError, match="doom_horizon must be an integer in 0..4, got 5"):
        doom_oracle("rlgan/Driving-v0", {}, 5)
    with pytest.raises(ValueError, match="doom_horizon must be an integer in 0..4, got 1.5"):
        ClassifierConfig(doom_horizon=1.5)


def test_doom_horizon_relabels_recorded_steps_before_each_crash(tmp_path):
    from rlgan.data import TransitionDataset
    from rlgan.safety.labels import replayed_labels
    from rlgan.safety.pairs import real_pairs

    kwargs = driving_one_action_dataset(tmp_path / "data", UP)  # rear-ends a slower car
    recorded = real_pairs(tmp_path / "data", None)
    crashes = np.flatnonzero(recorded.unsafe)
    one, two = (real_pairs(tmp_path / "data", None, doom_horizon=h) for h in (1, 2))
    assert torch.equal(recorded.frame_t, one.frame_t)
    assert np.flatnonzero(one.unsafe).tolist() == sorted([*crashes, *(crashes - 1)])
    assert np.flatnonzero(two.unsafe).tolist() == sorted([*crashes, *(crashes - 1), *(crashes - 2)])
    generated = generated_pairs(tmp_path / "data", None, CopyLastPredictor(), 4, np.random.default_rng(0),
                                torch.device("cpu"), doom_horizon=1)
    assert len(generated) == 4 and generated.unsafe.sum() == 2  # the crash and the doomed step
    dataset = TransitionDataset(tmp_path / "data", history=1)
    with pytest.raises(ValueError, match=r"actions must have shape \(len\(items\), k\) = \(2, k\)"):
        replayed_labels(dataset, np.arange(2), np.zeros(2, np.int64), "rlgan/Driving-v0", kwargs)


def test_colour_jitter_recolours_both_frames_of_a_pair_alike():
    torch.manual_seed(0)
    frame = torch.rand(1, 3, 8, 8) * 2 - 1
    other = torch.rand(1, 3, 8, 8) * 2 - 1
    other[..., 0, 0] = frame[..., 0, 0]  # one pixel the frames share
    pairs = torch.cat([torch.cat([frame, frame], 1).expand(64, -1, -1, -1),
                       torch.cat([frame, other], 1).expand(64, -1, -1, -1)]).clone()
    original = pairs.clone()
    torch.manual_seed(1)
    jittered = jitter_colours(pairs, channels=3)
    torch.manual_seed(1)
    assert torch.equal(jitter_colours(original.clone(), channels=3), jittered)  # seeded
    assert jittered.shape == (128, 6, 8, 8) and jittered.dtype == torch.float32
    assert jittered.min() >= -1.0 and jittered.max() <= 1.0
    changed = (jittered != original).flatten(1).any(dim=1)
    assert 32 < int(changed.sum()) < 96  # about half the pairs
    assert torch.equal(jittered[:64, :3], jittered[:64, 3:])  # equal frames stay equal
    assert torch.equal(jittered[:, :3, 0, 0], jittered[:, 3:, 0, 0])  # one transform per pair
    assert not torch.equal(jittered[changed][:, :3, 0, 0], original[changed][:, :3, 0, 0])
    for bad in ("yes", True, 1.5):
        with pytest.raises(ValueError, match=r"colour_jitter must be a number in \[0, 1\], got"):
            ClassifierConfig(colour_jitter=bad)
    assert ClassifierConfig(colour_jitter=0.5).colour_jitter == 0.5


def test_classifier_training_recolours_the_configured_share_of_each_batch(tmp_path, monkeypatch):
    import rlgan.safety.training as training

    shares = []
    monkeypatch.setattr(training, "jitter_colours",
                        lambda pairs, channels, share: shares.append(share) or pairs)
    data = toy_dataset(tmp_path / "toy", steps=120)
    config = ClassifierConfig(steps=2, batch_size=8, device="cpu", colour_jitter=0.25)
    train_classifier(data, tmp_path / "run", config, progress=False)
    assert shares == [0.25, 0.25]
    train_classifier(data, tmp_path / "plain", dataclasses.replace(config, colour_jitter=0.0), progress=False)
    assert shares == [0.25, 0.25]  # 0: the recorded colours only


def test_training_needs_unsafe_examples(tmp_path):
    data = write_noise_dataset(tmp_path / "data", unsafe_end=False)
    with pytest.raises(ValueError, match="no unsafe step to learn from"):
        train_classifier(data, tmp_path / "run", ClassifierConfig(steps=1), progress=False)


# -- loading and the command line -------------------------------------------------------------
@pytest.fixture()
def driving_safety_run(tmp_path, monkeypatch):
    """A safety run for 64x64 driving frames whose world model is a copy-last fake."""
    model = SafetyClassifier(ClassifierShape())
    info = SafetyRunInfo(env_id="rlgan/Driving-v0", env_kwargs={}, frame_shape=(64, 64, 3), n_actions=3,
                         threshold=0.5, classifier=model.config, data=str(tmp_path), val_episodes=(),
                         worldmodel_run=str(tmp_path / "wm"))
    save_safety_run(tmp_path / "safety", model, info)
    monkeypatch.setattr("rlgan.safety.models.load_predictor", lambda run, device, compiled: CopyLastPredictor())
    return tmp_path / "safety"


def test_learned_shield_rejects_another_env_or_frame_size(driving_safety_run):
    from rlgan.safety.models import make_search, shielded_env

    search = make_search(str(driving_safety_run), gymnasium.make("rlgan/Driving-v0"), SearchConfig(depth=2))
    assert isinstance(search, LearnedSearch) and search.config.threshold == 0.5
    with pytest.raises(ValueError, match=r"shape \(64, 64, 3\).*\(32, 32, 3\)"):
        make_search(str(driving_safety_run), gymnasium.make("rlgan/Driving-v0", obs_height=32, obs_width=32))
    with pytest.raises(ValueError, match="trained for rlgan/Driving-v0, but .* rlgan/HideAndSeek-v0"):
        shielded_env(gymnasium.make("rlgan/HideAndSeek-v0"), str(driving_safety_run))


def test_cli_safety_train_and_eval(tmp_path, capsys, monkeypatch):
    data = toy_dataset(tmp_path / "toy", steps=300)
    assert main(["safety", "train", "--data", str(data), "--run", str(tmp_path / "run"), "--steps", "5",
                 "--device", "cpu", "--no-progress", "--set", "batch_size=16"]) == 0
    assert json.loads(capsys.readouterr().out)["train_pairs"] > 0
    assert main(["safety", "eval", "--run", str(tmp_path / "run"), "--data", str(data), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["real"]) >= {"precision", "recall", "roc_auc"} and result["generated"] is None
    assert main(["safety", "eval", "--run", str(tmp_path / "run"), "--data", str(data)]) == 0
    assert "ROC AUC" in capsys.readouterr().out
    loaded = []

    def spy(*args):
        model, info = load_safety_run(*args)
        loaded.append(model)
        return model, info

    monkeypatch.setattr("rlgan.safety.run.load_safety_run", spy)
    assert main(["safety", "eval", "--run", str(tmp_path / "run"), "--data", str(data),
                 "--mirror-average", "--json"]) == 0
    mirrored = json.loads(capsys.readouterr().out)
    assert mirrored["mirror_average"] and not result["mirror_average"]
    assert [type(model) for model in loaded] == [MirrorAveraged]
    assert mirrored["real"]["n"] == result["real"]["n"]
    monkeypatch.undo()
    assert main(["safety", "train", "--data", str(data), "--run", str(tmp_path / "x"),
                 "--set", "bacth_size=3"]) == 2
    assert "Did you mean 'batch_size'" in capsys.readouterr().err
    assert main(["safety", "eval", "--run", str(tmp_path / "nothing"), "--data", str(data)]) == 2


def test_rows_count_false_alarms_and_misses_against_the_oracle():
    env, always_left = MovingSquareEnv(max_steps=10), lambda observation: 0
    # the learned search fears action 0, the oracle finds it safe: every intervention is a false alarm
    shield_row = evaluate_shield("gan_shield", env, as_policy(always_left), 2,
                                 shield=Shield(FixedSearch([0, 3, 3])), probe=FixedSearch([3, 3, 0]))
    assert (shield_row["interventions_per_1000"], shield_row["false_alarms_per_1000"],
            shield_row["misses_per_1000"], shield_row["safe_depth"]) == (1000.0, 1000.0, 0.0, 3.0)
    # the oracle fears action 0: the agent alone misses every step, the shield none
    alone = evaluate_shield("agent", env, as_policy(always_left), 2, probe=FixedSearch([0, 3, 3]))
    assert (alone["misses_per_1000"], alone["false_alarms_per_1000"]) == (1000.0, 0.0)
    shielded = evaluate_shield("gan_shield", env, as_policy(always_left), 2,
                               shield=Shield(FixedSearch([0, 3, 3])), probe=FixedSearch([0, 3, 3]))
    assert (shielded["misses_per_1000"], shielded["false_alarms_per_1000"]) == (0.0, 0.0)
    unprobed = evaluate_shield("gan_shield", env, as_policy(always_left), 1,
                               shield=Shield(FixedSearch([0, 3, 3])))
    assert unprobed["false_alarms_per_1000"] is None and unprobed["misses_per_1000"] is None


def test_removed_and_return_kept_are_paired_fractions_undefined_without_a_base():
    agent = {"episode_unsafe": [2, 0, 2], "episode_steps": [100, 100, 100], "episode_returns": [10.0, 20.0, 30.0]}
    shielded = {"episode_unsafe": [1, 0, 0], "episode_steps": [100, 100, 200], "episode_returns": [10.0, 30.0, 50.0]}
    removed, removed_error = removed_fraction(agent, shielded)
    assert removed == pytest.approx(1 - (1 / 400) / (4 / 300)) and removed_error > 0
    kept, kept_error = return_kept(agent, shielded)
    assert kept == pytest.approx(90 / 60) and kept_error > 0
    assert percent_with_error(kept, None) == "150% +- n/a"
    assert (percent_with_error(0.823, 0.052), percent_with_error(0.823, 0.0042)) == ("82% +- 5%", "82% +- 0.4%")
    crashing = {**agent, "episode_returns": [-1.0, 0.5, -0.5]}  # a mean of -1/3: no ratio is meaningful
    assert return_kept(crashing, shielded) == (None, None)
    assert removed_fraction({**agent, "episode_unsafe": [0, 0, 0]}, shielded) == (None, None)
    assert percent_with_error(None, None) == "n/a"


def test_cli_shield_eval_with_oracle_and_learned_model(driving_safety_run, capsys):
    common = ["--env", "rlgan/Driving-v0", "--env-kwargs", "max_steps=15", "--agent", "scripted",
              "--episodes", "1", "--depth", "2", "--device", "cpu"]
    assert main(["shield", "eval", *common, "--shield", "oracle", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [row["name"] for row in rows] == ["agent", "oracle_shield"]
    assert set(rows[0]) == {"name", "return", "unsafe_per_1000", "safe_depth", "interventions_per_1000",
                            "latency_ms", "false_alarms_per_1000", "misses_per_1000", "steps",
                            "episodes", "unsafe_events", "episode_unsafe"}
    assert rows[0]["episodes"] == 1 and rows[0]["steps"] == 15
    assert sum(rows[0]["episode_unsafe"]) == rows[0]["unsafe_events"]
    assert {"removed", "removed_stderr", "return_kept", "return_kept_stderr"} <= set(rows[1])
    assert main(["shield", "eval", *common, "--shield", str(driving_safety_run), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [row["name"] for row in rows] == ["agent", "gan_shield", "oracle_shield"]
    assert all(row["latency_ms"] >= 0 for row in rows)
    assert main(["shield", "eval", *common, "--shield", str(driving_safety_run), "--json", "--no-oracle",
                 "--strategy", "breadth-first"]) == 0
    assert [row["name"] for row in json.loads(capsys.readouterr().out)["rows"]] == ["agent", "gan_shield"]
    with pytest.raises(SystemExit):
        main(["shield", "eval", *common, "--shield", "oracle", "--strategy", "best-first"])
    assert "invalid choice: 'best-first'" in capsys.readouterr().err
    assert main(["shield", "eval", *common, "--shield", "oracle"]) == 0
    assert "| oracle_shield |" in capsys.readouterr().out
    assert main(["shield", "eval", *common[:-4], "--depth", "9", "--shield", "oracle"]) == 2
    assert "depth must be an integer in 1..8" in capsys.readouterr().err
    assert main(["shield", "eval", *common, "--shield", "oracle", "--node-budget", "2"]) == 2
    assert "cannot cover even depth 1" in capsys.readouterr().err


def test_play_with_the_oracle_shield_runs_headless(tmp_path, capsys):
    assert main(["play", "driving", "--steps", "5", "--shield", "oracle"]) == 0
    assert "played 5 steps" in capsys.readouterr().out
    assert main(["play", "driving", "--steps", "5", "--shield", "oracle", "--record", str(tmp_path / "d")]) == 2


# -- outcome records --------------------------------------------------------------------------
OUTCOME_KWARGS = {"max_steps": 30, "hazard_start": 1.0}


def collect_random(path, episodes=4, resume=False, **options):
    from rlgan.safety.outcomes import OutcomeConfig, collect_outcomes

    settings = {"episodes": episodes, "num_envs": 2, "before": 3, "safe_fraction": 0.05, "doom_horizon": 1,
                "seed": 3, **options}
    config = OutcomeConfig(**settings)
    return collect_outcomes("rlgan/Driving-v0", OUTCOME_KWARGS, "random", path, config, resume, progress=False)


def test_outcome_records_hold_the_states_before_each_unsafe_step_and_every_actions_outcome(tmp_path):
    from rlgan.data.outcomes import load_outcomes

    metadata = collect_random(tmp_path / "a")
    records = load_outcomes(tmp_path / "a")
    assert records["frames"].shape[1:] == (2, 64, 64, 3) and records["next_frames"].shape[1:] == (3, 64, 64, 3)
    assert records["unsafe"].dtype == bool and records["action"].dtype == np.int64
    last = np.flatnonzero(records["steps_to_unsafe"] == 1)
    assert len(last) == sum(entry["unsafe_events"] for entry in metadata["shards"]) > 0
    assert records["unsafe"][last, records["action"][last]].all()  # the agent's own unsafe step
    assert set(records["steps_to_unsafe"]) <= {-1, 1, 2, 3} and (records["steps_to_unsafe"] == -1).any()
    for row in np.flatnonzero(records["steps_to_unsafe"] == 2):  # the next record is the state after
        after = row + 1
        assert records["episode"][after] == records["episode"][row] and records["steps_to_unsafe"][after] == 1
        assert np.array_equal(records["next_frames"][row, records["action"][row]], records["frames"][after, -1])
        assert np.array_equal(records["frames"][row, -1], records["frames"][after, 0])
    again = collect_random(tmp_path / "b")
    assert all(np.array_equal(value, load_outcomes(tmp_path / "b")[name]) for name, value in records.items())
    assert again["shards"][0]["sha256"] == metadata["shards"][0]["sha256"]


def test_outcome_collection_with_epsilon_records_the_random_actions_it_takes(tmp_path, monkeypatch):
    from rlgan.data.outcomes import load_outcomes
    from rlgan.safety import outcomes

    monkeypatch.setattr(outcomes, "batch_policy", lambda agent, venv, env: lambda obs, rng: np.zeros(len(obs), int))
    collect_random(tmp_path / "greedy", safe_fraction=1.0)
    assert (load_outcomes(tmp_path / "greedy")["action"] == 0).all()
    collect_random(tmp_path / "explore", episodes=8, before=6, safe_fraction=1.0, epsilon=0.3)
    records = load_outcomes(tmp_path / "explore")
    assert 0.1 < (records["action"] != 0).mean() < 0.3  # about epsilon * 2/3 of the steps
    chained = np.flatnonzero(records["steps_to_unsafe"] >= 2)  # the next record is the state after
    assert (records["action"][chained] != 0).any()
    for row in chained:
        assert records["steps_to_unsafe"][row + 1] == records["steps_to_unsafe"][row] - 1
        assert np.array_equal(records["next_frames"][row, records["action"][row]], records["frames"][row + 1, -1])
    with pytest.raises(ValueError, match=r"epsilon must be in \[0, 1\)"):
        outcomes.OutcomeConfig(epsilon=1.0)


def test_outcome_collection_takes_turns_between_variants_by_shard(tmp_path):
    from rlgan.data.outcomes import load_outcome_metadata, load_outcomes
    from rlgan.safety.outcomes import OutcomeConfig, collect_outcomes
    from rlgan.make import make_env

    config = OutcomeConfig(episodes=4, num_envs=2, before=2, safe_fraction=1.0, doom_horizon=0, seed=3)
    variants = [{"map": "snow"}, {"map": "night"}]
    metadata = collect_outcomes("rlgan/Driving-v0", {"max_steps": 4}, "random", tmp_path / "maps",
                                config, progress=False, variants=variants)
    assert metadata["variants"] == variants and load_outcome_metadata(tmp_path / "maps")["variants"] == variants
    records = load_outcomes(tmp_path / "maps")
    for episode, name in [(0, "snow"), (1, "snow"), (2, "night"), (3, "night")]:
        env = make_env("rlgan/Driving-v0", max_steps=4, map=name)
        first, _ = env.reset(seed=3 + episode)
        row = np.flatnonzero(records["episode"] == episode)[0]
        assert np.array_equal(records["frames"][row, -1], first)  # the shard's map drew it
        env.close()
    with pytest.raises(ValueError, match=r"variant \{'map': 'day'\} sets \['map'\]"):
        collect_outcomes("rlgan/Driving-v0", {"map": "day"}, "random", tmp_path / "twice", config,
                         progress=False, variants=[{"map": "day"}])
    with pytest.raises(ValueError, match="every variant must keep the observation and action spaces"):
        collect_outcomes("rlgan/Driving-v0", {"max_steps": 4}, "random", tmp_path / "gray", config,
                         progress=False, variants=[{}, {"grayscale": True}])
    assert not (tmp_path / "gray").exists()  # checked before anything is written


def test_outcome_collection_resumes_and_rejects_bad_input(tmp_path):
    from rlgan.data import DatasetError
    from rlgan.io import write_json
    from rlgan.data.outcomes import load_outcome_metadata, load_outcomes
    from rlgan.safety.outcomes import OutcomeConfig

    full = collect_random(tmp_path / "full")
    metadata = collect_random(tmp_path / "cut")
    metadata["shards"] = metadata["shards"][:1]  # as if stopped before the second batch was written
    write_json(tmp_path / "cut" / "metadata.json", metadata)
    with pytest.raises(DatasetError, match="pass --resume"):
        collect_random(tmp_path / "cut")
    with pytest.raises(DatasetError, match="cannot resume .* config"):
        collect_random(tmp_path / "cut", resume=True, before=2)
    collect_random(tmp_path / "cut", resume=True)
    assert load_outcome_metadata(tmp_path / "cut")["shards"] == full["shards"]
    longer = collect_random(tmp_path / "cut", episodes=6, resume=True)  # extended by one batch
    assert longer["shards"][:2] == full["shards"] and len(longer["shards"]) == 3
    (tmp_path / "cut" / "shard_00001.npz").write_bytes(b"not a shard")
    with pytest.raises(DatasetError, match="shard_00001.npz is corrupt"):
        load_outcomes(tmp_path / "cut")
    for options, message in [({"before": 0}, "before must be an integer >= 1"),
                             ({"safe_fraction": 1.5}, r"safe_fraction must be in \[0, 1\]"),
                             ({"doom_horizon": 9}, "doom_horizon must be an integer in 0..4")]:
        with pytest.raises(ValueError, match=message):
            OutcomeConfig(**options)
    with pytest.raises(ValueError, match="unknown agent 'nobody'.*Or the run directory of rlgan train"):
        from rlgan.safety.outcomes import collect_outcomes

        collect_outcomes("rlgan/Driving-v0", OUTCOME_KWARGS, "nobody", tmp_path / "c",
                         OutcomeConfig(episodes=2, num_envs=2), progress=False)
    assert not (tmp_path / "c").exists()  # nothing written, so a corrected retry needs no --resume


class NoisyCopyLastPredictor(CopyLastPredictor):
    """Copy-last plus a noise draw per pair from torch's global generator, as the GAN's z."""

    def predict(self, frames, actions, n_samples=1, generator=None):
        noise = torch.randn(len(frames), n_samples, 1, 1, 1, generator=generator)
        return (super().predict(frames, actions, n_samples) + 0.5 * noise).clamp(-1, 1)


def test_outcome_pairs_read_shard_by_shard_keep_each_states_frame_once(tmp_path):
    from rlgan.data.outcomes import load_outcome_metadata, load_outcomes
    from rlgan.safety.pairs import outcome_pairs, predicted_frames

    collect_random(tmp_path / "records", episodes=8, safe_fraction=0.3)
    sizes = [entry["records"] for entry in load_outcome_metadata(tmp_path / "records")["shards"]]
    assert len(sizes) == 4 and any(size % 3 for size in sizes)  # batches of 3 cross shard ends
    records = load_outcomes(tmp_path / "records")
    torch.manual_seed(0)
    expected = torch.cat([predicted_frames(NoisyCopyLastPredictor(), torch.from_numpy(
        records["frames"][start:start + 3, -1:]).permute(0, 1, 4, 2, 3).repeat_interleave(3, dim=0),
        torch.arange(3).repeat(len(records["frames"][start:start + 3])))
        for start in range(0, len(records["frames"]), 3)])
    torch.manual_seed(0)
    real, generated = outcome_pairs(tmp_path / "records", None, NoisyCopyLastPredictor(), torch.device("cpu"),
                                    batch_size=3)
    states = torch.from_numpy(records["frames"][:, -1]).permute(0, 3, 1, 2)
    assert real.frame_t.shape == (len(states), 3, 64, 64) and generated.frame_t is real.frame_t
    assert torch.equal(real.frames_t(slice(None)), states.repeat_interleave(3, dim=0))
    assert torch.equal(generated.frames_t(torch.tensor([4, 5])), states[[1, 1]])
    assert torch.equal(real.frame_t1, torch.from_numpy(records["next_frames"].reshape(-1, 64, 64, 3)).permute(0, 3, 1, 2))
    assert torch.equal(generated.frame_t1, expected) and not torch.equal(expected, real.frames_t(slice(None)))
    assert np.array_equal(real.unsafe, records["unsafe"].reshape(-1)) and np.array_equal(generated.unsafe, real.unsafe)
    some, _ = outcome_pairs(tmp_path / "records", [1, 6], None, torch.device("cpu"))
    chosen = np.isin(records["episode"], [1, 6])
    assert torch.equal(some.frame_t, states[chosen]) and len(some) == 3 * chosen.sum()


def test_classifier_refuses_outcome_pairs_larger_than_the_memory_available(tmp_path, monkeypatch):
    from rlgan.data.outcomes import load_outcomes

    collect_random(tmp_path / "records")
    records = len(load_outcomes(tmp_path / "records")["action"])
    needed = records * (1 + 2 * 3) * 64 * 64 * 3  # frame t once, every action's true and predicted t+1
    config = ClassifierConfig(steps=1, batch_size=4, device="cpu")
    monkeypatch.setattr("rlgan.safety.pairs.available_memory", lambda: needed - 1)
    with pytest.raises(ValueError, match=rf"pairs of the {records:,} outcome records .* take about .* "
                                         r"\(7 frames of \(64, 64, 3\) per record\), more than"):
        train_classifier(tmp_path / "records", tmp_path / "run", config, predictor=CopyLastPredictor(),
                         worldmodel_run=tmp_path / "wm", progress=False)
    assert not any((tmp_path / "run").glob("*.json")) and load_outcomes(tmp_path / "records")["action"].size
    monkeypatch.setattr("rlgan.safety.pairs.available_memory", lambda: needed)
    summary = train_classifier(tmp_path / "records", tmp_path / "run", config, predictor=CopyLastPredictor(),
                               worldmodel_run=tmp_path / "wm", progress=False)
    assert summary["train_pairs"] + summary["metrics"]["real"]["n"] == 3 * records


def test_classifier_trains_on_every_actions_outcome_records(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("rlgan.safety.predictor.load_predictor", lambda run, device: CopyLastPredictor())
    collect_random(tmp_path / "records", episodes=8)
    from rlgan.data.outcomes import load_outcomes

    records = load_outcomes(tmp_path / "records")
    config = ClassifierConfig(steps=3, batch_size=8, device="cpu", val_fraction=0.25)
    summary = train_classifier(tmp_path / "records", tmp_path / "run", config, predictor=CopyLastPredictor(),
                               worldmodel_run=tmp_path / "wm", progress=False)
    _, info = load_safety_run(tmp_path / "run")
    held_out = np.isin(records["episode"], info.val_episodes)
    assert summary["train_pairs"] == summary["generated_pairs"] == 3 * int((~held_out).sum())
    assert summary["train_unsafe"] == int(records["unsafe"][~held_out].sum())
    assert summary["metrics"]["real"]["n"] == summary["metrics"]["generated"]["n"] == 3 * int(held_out.sum())
    result = evaluate_classifier(tmp_path / "run", tmp_path / "records", worldmodel_run=tmp_path / "wm")
    assert result["split"] == "held-out episodes" and result["real"]["n"] == 3 * int(held_out.sum())
    with pytest.raises(ValueError, match="leave counterfactual and doom_horizon unset"):
        train_classifier(tmp_path / "records", tmp_path / "x", dataclasses.replace(config, doom_horizon=1),
                         progress=False)
    assert main(["safety", "collect", "--env-kwargs", "max_steps=20", "--agent", "random", "--episodes", "2",
                 "--num-envs", "2", "--doom-horizon", "0", "--out", str(tmp_path / "cli"), "--no-progress"]) == 0
    assert "states of 2 episodes" in capsys.readouterr().out
