"""The raters world's exact regularised Nash (nash.json) and the class metrics a run reports."""

import json

import numpy as np
import pytest
import torch

from arena.worlds import raters
from arena.worlds.lowrank import LowrankWorld, build_lowrank_world
from trainers.lm import TrainConfig, train
from trainers.lm import common as C
from trainers.lm.exact import class_of_text, enumerate_classes


def test_class_game_is_correctness_first_then_the_style_cycle():
    P = raters.class_game()
    assert P.shape == (7, 7) and np.allclose(P + P.T, 1.0)
    terse, sentence, lst, terse_wrong, _, _, malformed = range(7)
    assert P[terse, sentence] == pytest.approx(2 / 3) and P[sentence, lst] == pytest.approx(2 / 3)
    assert P[lst, terse] == pytest.approx(2 / 3)                     # the cycle
    assert P[lst, terse_wrong] == 1.0 and P[terse_wrong, malformed] == 1.0
    q = "Repeat the number 5.\n"
    assert [raters.class_of(q, t) for t in ("5.", "The answer is 6.", "- answer: 5", "five")] == [0, 4, 2, 6]


def test_enumeration_equals_the_first_token_distribution(tmp_path):
    """A class read from the first letter: the tree enumeration must give the next-token sums."""
    world = build_lowrank_world(tmp_path / "w", LowrankWorld(n_contexts=3, n_actions=4, sft_steps=30))
    config = TrainConfig(policy=str(world / "ckpts" / "sft"), judge="j", prompts=str(world / "prompts.jsonl"), out="o")
    policy = C.load_policy(config)
    known = C.load_known_nash(config, policy.tokenizer)
    first = C.class_distribution(policy.model, policy, known.contexts, known.token_class, 4)
    dist = enumerate_classes(policy.model, policy.tokenizer, known.contexts, lambda p, t: class_of_text(t, "ABCD"), 4,
                             max_new_tokens=2, min_prob=1e-3, banned=policy.banned)
    assert float(dist.pruned.max()) < 0.2
    assert torch.allclose(dist.probs.sum(-1) + dist.pruned, torch.ones(3, dtype=torch.float64))
    # Up to the pruned mass, the enumeration is the next-token distribution summed within
    # classes (a response that starts with end-of-sequence is "", class 0).
    assert (dist.probs <= first + 1e-9).all()
    assert torch.allclose((first - dist.probs).sum(-1), dist.pruned)
    # `leaves` lists the complete responses it found, with the class their text has
    leaves = []
    again = enumerate_classes(policy.model, policy.tokenizer, known.contexts, lambda p, t: class_of_text(t, "ABCD"), 4,
                              max_new_tokens=2, min_prob=1e-3, banned=policy.banned, leaves=leaves)
    assert torch.equal(again.probs, dist.probs) and len(leaves) == len({(x, tuple(t)) for x, t, _ in leaves})
    assert all(c == class_of_text(policy.tokenizer.decode(t, skip_special_tokens=True), "ABCD") for _, t, c in leaves)
    assert {(x, c) for x, _, c in leaves} == {tuple(i) for i in (dist.probs > 0).nonzero().tolist()}


@pytest.fixture(scope="module")
def small_raters(tmp_path_factory):
    return raters.build_raters_world(tmp_path_factory.mktemp("r") / "raters", n_prompts=4, steps=150)


@pytest.mark.slow  # builds a raters world: about a minute on 2 shared cores
def test_raters_world_writes_its_certified_regularised_nash(small_raters):
    nash = json.loads((small_raters / "nash.json").read_text())
    P, pi_ref, pi = (np.array(nash[k]) for k in ("P", "pi_ref", "pi_star"))
    assert nash["classes"] == list(raters.CLASSES) and len(nash["contexts"]) == 4
    assert np.allclose(P[0], raters.class_game()) and nash["gap"] < 1e-10
    # the fixed point π ∝ π_ref exp(P(· ≻ π)/β), per prompt
    fixed = pi_ref * np.exp(np.einsum("xab,xb->xa", P, pi) / nash["beta"])
    assert np.allclose(pi, fixed / fixed.sum(1, keepdims=True), atol=1e-9)
    assert not np.allclose(pi[:, :3].mean(0), 1 / 3, atol=0.05)     # not the unregularised ⅓ each


def test_kl_counts_a_class_below_the_enumerations_resolution_at_the_resolution():
    """An enumerated class distribution has π = 0 for a class whose responses were all pruned;
    the KL to π*_β counts it at the resolution (1e-4), not at 0; exact first-token classes keep 0."""
    pi_star = torch.tensor([[0.6, 0.3, 0.099, 0.001], [0.5, 0.3, 0.2, 0.0]], dtype=torch.float64)
    pi = torch.tensor([[0.62, 0.28, 0.1, 0.0], [0.5, 0.3, 0.2, 0.0]], dtype=torch.float64)
    common = dict(contexts=["a", "b"], pi_star=pi_star, weights=torch.tensor([0.5, 0.5], dtype=torch.float64),
                  beta=0.1)
    enumerated = C.nash_metrics(pi, C.KnownNash(token_class=None, classify=raters.class_of, **common))
    floor = C.ENUMERATION_MIN_PROB
    row0 = sum(p * np.log(p / max(q, floor)) for p, q in zip(pi_star[0].tolist(), pi[0].tolist()))
    assert enumerated["kl_to_nash"] == pytest.approx(0.5 * row0, rel=1e-9)
    assert enumerated["kl_to_nash"] < 0.01                             # not 0.001·log(0.001/1e-300)/2 ≈ 0.34
    exact = C.nash_metrics(pi, C.KnownNash(token_class=torch.zeros(5, dtype=torch.long), **common))
    assert exact["kl_to_nash"] > 0.3                                   # exact π: a zero is a zero
    assert enumerated["tv_to_nash"] == exact["tv_to_nash"] == pytest.approx(0.5 * 0.5 * 0.042)


@pytest.mark.slow
def test_a_raters_run_reports_tv_kl_and_classes(small_raters, tmp_path):
    out = train("nash-mp", TrainConfig(policy=str(small_raters / "ckpts" / "sft"), judge=raters.JUDGE_SPEC,
                                       prompts=str(small_raters / "prompts.jsonl"), out=str(tmp_path / "nmp"),
                                       steps=2, batch_size=2, max_new_tokens=24, eval_every=0, save_every=0))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert "tv_to_nash" not in rows[0]                               # enumerated at the end only (eval off)
    last = rows[-1]
    assert 0 < last["tv_to_nash"] <= 1 and last["kl_to_nash"] > 0 and 0 <= last["nash_pruned"] < 0.1
    assert len(last["class_probs"]) == 7 and sum(last["class_probs"]) == pytest.approx(1.0)
    card = json.loads((out / "arena_card.json").read_text())
    assert card["tv_to_nash"] == last["tv_to_nash"]


@pytest.mark.slow  # two short Nash-MP runs on the 4-prompt world: under a minute of CPU (plus the world)
def test_nash_mp_moves_the_raters_policy_towards_pi_star_at_3x_the_demo_budget_per_prompt(small_raters, tmp_path):
    """The convergence record in miniature (benchmarks/RESULTS.trainers-convergence.md).

    3× the demo's budget is 144 judged pairs per prompt (300 steps × 16 prompts × 3 over 100
    prompts): here 72 steps × 8 prompts over 4. At β = 0.1 the target TV ≤ 0.03 is out of
    reach at that budget (the tabular sampled estimator itself stops near 0.09,
    benchmarks/bench_convergence.py); what holds is that the policy more than halves its
    distance to π*_β and keeps every style. At β = 0.01 no style collapses."""
    nash = json.loads((small_raters / "nash.json").read_text())
    tv_ref = float(np.mean(0.5 * np.abs(np.array(nash["pi_star"]) - np.array(nash["pi_ref"])).sum(1)))

    def run(beta):
        out = train("nash-mp", TrainConfig(policy=str(small_raters / "ckpts" / "sft"), judge=raters.JUDGE_SPEC,
                                           prompts=str(small_raters / "prompts.jsonl"), out=str(tmp_path / f"b{beta}"),
                                           steps=72, batch_size=8, lr=2e-3, lr_schedule="linear", beta=beta,
                                           max_new_tokens=24, eval_every=0, save_every=0))
        return json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])

    last = run(0.1)
    assert last["tv_to_nash"] < min(0.5 * tv_ref, 0.15)             # measured 0.108 (π_ref: 0.294)
    assert min(last["class_probs"][:3]) > 0.03                      # terse, sentence, list all kept
    assert sum(last["class_probs"][3:]) < 0.06                      # wrong and malformed answers suppressed
    low = run(0.01)
    assert min(low["class_probs"][:3]) > 0.02                       # no collapsed style at β = 0.01
