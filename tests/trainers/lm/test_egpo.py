"""EGPO LM trainer: both phases' expected gradients against the exact tabular EGPO update on
one-token responses, and the trainer's extragradient mechanics (both steps from θ_k)."""

import json

import numpy as np
import pytest
import torch
from scipy.special import log_softmax

from trainers.lab.algorithms import egpo_explicit_step, egpo_step
from trainers.lab.games import Game, lowrank_game
from trainers.losses import nash_md_loss, sequence_kl

X, Y, BETA, S = 3, 4, 0.3, 0.8


@pytest.fixture(scope="module")
def game():
    base = lowrank_game(X, Y, 2, 3.0, 0, reference="random")
    return Game(P=base.P, pi_ref=base.pi_ref, weights=base.weights)


def expected_gradient(theta0: np.ndarray, log_opp: np.ndarray, game: Game) -> np.ndarray:
    """E[∇_θ L] of EGPO's per-phase surrogate (`nash_md_loss`: player y ~ π_θ, opponent y' ~ π_opp,
    exact P, sequence KL to π_ref), every pair (y, y') weighted by π_θ(y) π_opp(y')."""
    theta = torch.tensor(theta0, requires_grad=True)
    lp = torch.log_softmax(theta, 1)
    pi, opp = lp.exp().detach(), np.exp(log_opp)
    total = 0.0
    for x in range(X):
        for y in range(Y):
            kl = sequence_kl(lp[x, y:y + 1], torch.tensor([game.log_pi_ref[x, y]]))
            for y2 in range(Y):
                row = nash_md_loss(lp[x, y:y + 1], torch.tensor([game.P[x, y, y2]]), kl, beta=BETA).loss
                total = total + pi[x, y] * float(opp[x, y2]) * row
    total.backward()
    return theta.grad.numpy()


def along(log_pi: np.ndarray, log_next: np.ndarray) -> np.ndarray:
    """−π ⊙ (h − E_π h) with h = (log π_next − log π)/s: the vanilla gradient whose natural-gradient
    step of size s is the tabular step log π → log π_next (row constants cancel)."""
    h = (log_next - log_pi) / S
    p = np.exp(log_pi)
    return -p * (h - (p * h).sum(1, keepdims=True))


def test_both_phases_follow_the_exact_tabular_egpo_update(game):
    """Extrapolation: E∇L(θ_k; π_k) is the direction of θ_{k+½} (`egpo_explicit_step` against π_k);
    update: E∇L(θ_k; π_{k+½}) is the direction of egpo_step's θ_{k+1}. Asymmetric π_k, random π_ref."""
    rng = np.random.default_rng(3)
    theta0 = rng.standard_normal((X, Y))
    log_pi = log_softmax(theta0, axis=1)
    log_half = egpo_explicit_step(log_pi, log_pi, game=game, beta=BETA, step=S)
    g_half = expected_gradient(theta0, log_pi, game)
    assert g_half == pytest.approx(along(log_pi, log_half), abs=1e-12)
    g_full = expected_gradient(theta0, log_half, game)
    assert g_full == pytest.approx(along(log_pi, egpo_step(log_pi, game=game, beta=BETA, step=S)), abs=1e-12)
    # the check can fail: the extrapolated opponent changes the update (a plain mirror-descent
    # step, π_k as the opponent twice, is another direction)
    assert np.abs(g_full - g_half).max() > 1e-3 and np.abs(g_full).max() > 1e-2   # 9 orders above the tolerance


def test_natural_gradient_steps_of_the_expected_gradients_are_egpo(game):
    """Two natural-gradient steps θ ← θ_k − s F⁻¹ E∇L (for a softmax row, −F⁻¹ applied to
    −π ⊙ (h − E_π h) gives h up to a row constant), the second against the first's policy,
    land on egpo_step exactly: the tabular EGPO iterate, several iterations long."""
    rng = np.random.default_rng(4)
    log_pi = log_softmax(rng.standard_normal((X, Y)), axis=1)
    want = log_pi
    for _ in range(3):
        g_half = expected_gradient(log_pi, log_pi, game)
        log_half = log_softmax(log_pi - S * g_half / np.exp(log_pi), axis=1)
        g = expected_gradient(log_pi, log_half, game)
        log_pi = log_softmax(log_pi - S * g / np.exp(log_pi), axis=1)
        want = egpo_step(want, game=game, beta=BETA, step=S)
        assert log_pi == pytest.approx(want, abs=1e-10)


@pytest.fixture(scope="module")
def world(tiny_lowrank_world):
    return tiny_lowrank_world(40)


def test_egpo_trainer_steps_twice_from_theta_k(world, tmp_path, monkeypatch):
    """Each step: an extrapolation step from θ_k, then the update from θ_k again (not from
    θ_{k+½}), each phase judging one pair per prompt."""
    from arena.worlds.lowrank import JUDGE_SPEC
    from trainers.lm import TrainConfig, train
    from trainers.lm import common as C

    before: list[dict[str, torch.Tensor]] = []
    after: list[dict[str, torch.Tensor]] = []
    real = C.clip_and_step

    def recording(policy, opt, config, k):
        before.append(policy.copy_trainable())
        norm = real(policy, opt, config, k)
        after.append(policy.copy_trainable())
        return norm

    monkeypatch.setattr(C, "clip_and_step", recording)
    out = train("egpo", TrainConfig(policy=str(world / "ckpts" / "sft"), judge=JUDGE_SPEC,
                                    prompts=str(world / "prompts.jsonl"), out=str(tmp_path / "egpo"), steps=2,
                                    batch_size=4, max_new_tokens=4, lr=0.05, eval_every=0, save_every=0))
    assert len(before) == 4                                               # two optimiser steps per step
    for k in (0, 2):   # the update starts from θ_k (the extrapolation's start), not from θ_{k+½}
        assert all(torch.equal(before[k + 1][n], before[k][n]) for n in before[k])
        assert any(not torch.equal(after[k][n], before[k][n]) for n in before[k])
        assert any(not torch.equal(after[k + 1][n], after[k][n]) for n in before[k])
    assert all(torch.equal(before[2][n], after[1][n]) for n in before[2])   # step 2 starts at θ_1
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["judge_queries"] for r in rows] == [8, 16]                   # 4 prompts × 2 phases per step
    assert all(r["grad_norm_extrapolation"] > 0 and np.isfinite(r["loss"]) for r in rows)
    assert rows[-1]["kl_to_nash"] > 0


def test_egpo_resume_gives_the_uninterrupted_result(world, tmp_path):
    """θ_{k+½} is transient (not in the resume state): a run cut after step 3 and resumed from
    its step-2 state ends with the weights of the uninterrupted run."""
    from arena.worlds.lowrank import JUDGE_SPEC
    from safetensors.torch import load_file

    from trainers.lm import TrainConfig, train

    def cfg(out, **kw):
        return TrainConfig(policy=str(world / "ckpts" / "sft"), judge=JUDGE_SPEC, prompts=str(world / "prompts.jsonl"),
                           out=str(out), steps=4, batch_size=4, max_new_tokens=4, lr=0.05, eval_every=0, **kw)

    class Stop(Exception):
        pass

    def stop_at_3(step, row):
        if step == 3:
            raise Stop

    full = train("egpo", cfg(tmp_path / "full", save_every=0))
    with pytest.raises(Stop):
        train("egpo", cfg(tmp_path / "cut", save_every=2), progress=stop_at_3)
    resumed = train("egpo", cfg(tmp_path / "cut", save_every=2), resume=True)
    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    sft = load_file(world / "ckpts" / "sft" / "model.safetensors")
    assert any(not torch.allclose(a[k], sft[k], atol=1e-4) for k in a)       # it did train
