"""Hand-computed values and gradients of the trainer losses (asymmetric inputs)."""

import math

import pytest
import torch

from trainers.losses import (nash_md_loss, nash_mp_loss, online_dpo_loss, online_ipo_loss, rloo_loss,
                             sequence_kl, token_kl)


def leaf(*values):
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


def const(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_nash_mp_gradient_matches_hand_computation():
    logp, logp_p = leaf(-1.0), leaf(-2.0)
    both = torch.cat([logp, logp_p])
    parts = nash_mp_loss(logp, logp_p, const(0.8), sequence_kl(both, const(-1.5, -1.0)),
                         sequence_kl(both, const(-0.5, -2.5)), beta=0.1, eta=0.5)
    parts.loss.backward()
    # ½[(½ − P) + β(logp − ref) + (β/η)(logp − tgt)] = ½[−0.3 + 0.05 − 0.1]
    assert logp.grad.item() == pytest.approx(-0.175)
    # ½[(P − ½) + β(logp' − ref') + (β/η)(logp' − tgt')] = ½[0.3 − 0.1 + 0.1]
    assert logp_p.grad.item() == pytest.approx(0.15)
    assert parts.kl_ref == pytest.approx(0.5 * (0.5 - 1.0))
    assert parts.kl_target == pytest.approx(0.5 * (-0.5 + 0.5))
    # The preferred sample's log-probability goes up under gradient descent.
    assert logp.grad.item() < 0 < logp_p.grad.item() + 0.1


def test_nash_mp_symmetric_in_the_two_samples():
    a = nash_mp_loss(const(-1.0), const(-2.0), const(0.8), sequence_kl(const(-1.0, -2.0), const(-1.5, -1.0)),
                     sequence_kl(const(-1.0, -2.0), const(-0.5, -2.5)), beta=0.1, eta=0.5)
    b = nash_mp_loss(const(-2.0), const(-1.0), const(0.2), sequence_kl(const(-2.0, -1.0), const(-1.0, -1.5)),
                     sequence_kl(const(-2.0, -1.0), const(-2.5, -0.5)), beta=0.1, eta=0.5)
    assert a.loss.item() == pytest.approx(b.loss.item())


def test_nash_md_gradient():
    logp = leaf(-1.0, -3.0)
    nash_md_loss(logp, const(0.8, 0.3), sequence_kl(logp, const(-1.5, -2.0)), beta=0.1).loss.backward()
    # (1/B)[(½ − P) + β(logp − ref)]
    assert logp.grad.tolist() == pytest.approx([0.5 * (-0.3 + 0.05), 0.5 * (0.2 - 0.1)])


def test_online_dpo_value_and_gradient():
    logp = leaf(-1.0)
    parts = online_dpo_loss(logp, const(-2.0), const(-1.5), const(-1.0), const(0.8), beta=0.1)
    h = 1.5  # (−1 + 1.5) − (−2 + 1)
    sig = 1 / (1 + math.exp(-0.1 * h))
    assert parts.loss.item() == pytest.approx(-0.8 * math.log(sig) - 0.2 * math.log(1 - sig))
    parts.loss.backward()
    assert logp.grad.item() == pytest.approx(-0.1 * (0.8 - sig))


def test_online_ipo_value_and_gradient():
    logp = leaf(-1.0)
    parts = online_ipo_loss(logp, const(-2.0), const(-1.5), const(-1.0), const(0.8), beta=0.1)
    assert parts.loss.item() == pytest.approx((1.5 - 3.0) ** 2)   # target (P − ½)/β = 3
    parts.loss.backward()
    assert logp.grad.item() == pytest.approx(2 * (1.5 - 3.0))


def test_rloo_leave_one_out_advantages():
    logp = torch.tensor([[-1.0, -2.0, -3.0]], dtype=torch.float64, requires_grad=True)
    rloo_loss(logp, const(-1.0, -1.0, -1.0).unsqueeze(0), const(1.0, 0.0, 0.5).unsqueeze(0), beta=0.5).loss.backward()
    # shaped reward [1, 0.5, 1.5]; leave-one-out baselines [1, 1.25, 0.75]; adv [0, −0.75, 0.75]
    assert logp.grad[0].tolist() == pytest.approx([0.0, 0.25, -0.25])


def test_bad_shapes_and_rates_are_refused():
    with pytest.raises(ValueError, match="shape"):
        nash_md_loss(const(1.0, 2.0), const(0.5), sequence_kl(const(1.0, 2.0), const(1.0, 1.0)), beta=0.1)
    with pytest.raises(ValueError, match="beta"):
        nash_md_loss(const(1.0), const(0.5), sequence_kl(const(1.0), const(1.0)), beta=0.0)
    with pytest.raises(ValueError, match="2B samples"):
        nash_mp_loss(const(1.0), const(1.0), const(0.5), sequence_kl(const(1.0), const(1.0)),
                     sequence_kl(const(1.0), const(1.0)), beta=0.1, eta=1.0)
    with pytest.raises(ValueError, match="K >= 2"):
        rloo_loss(const(1.0).unsqueeze(0), const(1.0).unsqueeze(0), const(1.0).unsqueeze(0), beta=0.1)


def test_token_kl_expected_gradient_is_the_exact_sequence_kl_gradient():
    """Two-token sequences over V = 3 symbols, enumerated: E_y[∇ surrogate(y)] = ∇ KL(π‖π_0)."""
    V = 3
    g = torch.Generator().manual_seed(0)
    a = torch.randn(V, generator=g, dtype=torch.float64, requires_grad=True)        # first-token logits
    b = torch.randn(V, V, generator=g, dtype=torch.float64, requires_grad=True)     # second token | first
    a0, b0 = torch.randn(V, generator=g, dtype=torch.float64), torch.randn(V, V, generator=g, dtype=torch.float64)
    la, lb = torch.log_softmax(a, -1), torch.log_softmax(b, -1)
    la0, lb0 = torch.log_softmax(a0, -1), torch.log_softmax(b0, -1)
    seqs = [(i, j) for i in range(V) for j in range(V)]
    # exact sequence KL
    exact = sum(torch.exp(la[i] + lb[i, j]) * (la[i] + lb[i, j] - la0[i] - lb0[i, j]) for i, j in seqs)
    want = torch.autograd.grad(exact, (a, b), retain_graph=True)
    # the estimator, weighted by the (detached) probability of each sequence
    lp = torch.stack([torch.stack([la, lb[i]]) for i, _ in seqs])                    # (9, 2, V)
    lp0 = torch.stack([torch.stack([la0, lb0[i]]) for i, _ in seqs])
    tokens = torch.tensor(seqs)
    term = token_kl(lp, lp0, tokens, torch.ones(9, 2, dtype=torch.long))
    w = torch.stack([torch.exp(la[i] + lb[i, j]) for i, j in seqs]).detach()
    got = torch.autograd.grad((w * term.surrogate).sum(), (a, b), retain_graph=True)
    assert torch.allclose(got[0], want[0], atol=1e-12) and torch.allclose(got[1], want[1], atol=1e-12)
    assert float((w * term.value).sum()) == pytest.approx(float(exact))
    # the sequence (score-function) estimator has the same expectation
    seq = sequence_kl(lp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).sum(-1),
                      lp0.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).sum(-1))
    got_seq = torch.autograd.grad((w * seq.surrogate).sum(), (a, b))
    assert torch.allclose(got_seq[0], want[0], atol=1e-12) and torch.allclose(got_seq[1], want[1], atol=1e-12)


def test_token_kl_ignores_padding():
    lp = torch.log_softmax(torch.randn(1, 3, 4, dtype=torch.float64), -1)
    lp0 = torch.log_softmax(torch.randn(1, 3, 4, dtype=torch.float64), -1)
    full = token_kl(lp, lp0, torch.tensor([[1, 2, 0]]), torch.tensor([[1, 1, 0]]))
    short = token_kl(lp[:, :2], lp0[:, :2], torch.tensor([[1, 2]]), torch.tensor([[1, 1]]))
    assert full.value.item() == pytest.approx(short.value.item())
    assert full.surrogate.item() == pytest.approx(short.surrogate.item())


def test_token_kl_surrogate_of_one_sequence_by_hand():
    """Per sample: Σ_t KL_t + Σ_s log π(y_s)·Σ_{t>s} KL_t; the KL still to come excludes step s itself."""
    lp = torch.log_softmax(torch.tensor([[[0.3, -1.0, 2.0], [1.0, 0.0, -0.5]]], dtype=torch.float64), -1)
    lp0 = torch.log_softmax(torch.tensor([[[0.0, 0.5, 0.1], [-1.0, 2.0, 0.3]]], dtype=torch.float64), -1)
    kl = (lp.exp() * (lp - lp0)).sum(-1)[0]                                        # (T,) KL_1, KL_2
    term = token_kl(lp, lp0, torch.tensor([[2, 0]]), torch.tensor([[1, 1]]))
    assert term.value.item() == pytest.approx(float(kl.sum()))
    assert term.surrogate.item() == pytest.approx(float(kl.sum() + lp[0, 0, 2] * kl[1]))


def test_losses_agree_with_the_exact_tabular_updates():
    """Second algorithm as a cross-check: on one-token responses (a softmax table θ (X, Y)), the
    gradients of the LM losses equal the tabular sampled updates of trainers.lab.sampled (reviewed
    ground truth) on the same judged pairs; asymmetric π_θ, π_ref, π_target, and β ≠ β/η."""
    import numpy as np
    from scipy.special import log_softmax

    from trainers.lab import sampled as S
    from trainers.lab.games import Game, lowrank_game

    X, Y, B, beta, eta, lr = 3, 4, 5, 0.3, 0.4, 1.0
    rng = np.random.default_rng(0)
    base = lowrank_game(X, Y, 2, 3.0, 0, reference="random")
    game = Game(P=base.P, pi_ref=base.pi_ref, weights=base.weights)
    theta0, target = rng.standard_normal((X, Y)), rng.standard_normal((X, Y))
    pairs = S.judge_pairs(game, np.exp(log_softmax(theta0, axis=1)), B, rng)
    xs = np.arange(X)[:, None].repeat(B, 1).ravel()

    def grad(loss_of):
        theta = torch.tensor(theta0, requires_grad=True)
        lp = torch.log_softmax(theta, 1)
        pick = lambda table, idx: table[xs, torch.as_tensor(idx.ravel())]                   # (X·B,)
        ref, tgt = torch.tensor(game.log_pi_ref), torch.log_softmax(torch.tensor(target), 1)
        loss_of(lambda idx: pick(lp, idx), lambda idx: pick(ref, idx), lambda idx: pick(tgt, idx)).backward()
        return theta.grad.numpy() * X          # the LM losses average over contexts, the tables sum

    o = torch.tensor(pairs.o.ravel(), dtype=torch.float64)
    y, y2 = pairs.y, pairs.y2

    def mp(lp, ref, tgt):
        both = torch.cat([lp(y), lp(y2)])
        return nash_mp_loss(lp(y), lp(y2), o, sequence_kl(both, torch.cat([ref(y), ref(y2)])),
                            sequence_kl(both, torch.cat([tgt(y), tgt(y2)])), beta=beta, eta=eta).loss
    want = S.nash_mp_ema_grad(theta0, target, pairs, game=game, beta=beta, eta=eta)
    assert grad(mp) == pytest.approx(want, abs=1e-12)

    md = lambda lp, ref, tgt: nash_md_loss(lp(y), o, sequence_kl(lp(y), ref(y)), beta=beta).loss
    want = (theta0 - S.nash_md_pg_step(theta0, pairs, game=game, beta=beta, lr=lr)) / lr
    assert grad(md) == pytest.approx(want, abs=1e-12)

    # the tables scale IPO by β/4 and DPO by 1/(2β) (trainers.lab.sampled); hard labels o
    ipo = lambda lp, ref, tgt: online_ipo_loss(lp(y), lp(y2), ref(y), ref(y2), o, beta=beta).loss * beta / 4
    want = (theta0 - S.online_ipo_step(theta0, pairs, game=game, beta=beta, lr=lr)) / lr
    assert grad(ipo) == pytest.approx(want, abs=1e-12)
    dpo = lambda lp, ref, tgt: online_dpo_loss(lp(y), lp(y2), ref(y), ref(y2), o, beta=beta).loss / (2 * beta)
    want = (theta0 - S.online_dpo_step(theta0, pairs, game=game, beta=beta, lr=lr)) / lr
    assert grad(dpo) == pytest.approx(want, abs=1e-12)


def test_group_loss_with_two_samples_is_the_pair_loss_and_loo_scores_balance():
    from trainers.losses import KLTerm, leave_one_out_score, nash_mp_group_loss, nash_mp_loss

    torch.manual_seed(0)
    logp = torch.randn(3, 2, requires_grad=True)
    pref = torch.tensor([0.9, 0.2, 0.6])
    kl = KLTerm(surrogate=torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]), value=torch.zeros(6))
    pair = nash_mp_loss(logp[:, 0], logp[:, 1], pref, kl, kl, beta=0.1, eta=0.3)
    group = nash_mp_group_loss(logp, leave_one_out_score(pref[:, None]), kl, kl, beta=0.1, eta=0.3)
    g_pair = torch.autograd.grad(pair.loss, logp)[0]
    g_group = torch.autograd.grad(group.loss, logp)[0]
    assert torch.allclose(g_pair, g_group) and torch.allclose(pair.loss, group.loss)
    # three samples: pairs (0,1), (0,2), (1,2); sample 0 wins 0.8 and 0.6, loses to nobody
    score = leave_one_out_score(torch.tensor([[0.8, 0.6, 0.3]]))
    assert torch.allclose(score, torch.tensor([[0.7, (0.2 + 0.3) / 2, (0.4 + 0.7) / 2]]))
    assert float(score.sum()) == pytest.approx(3 / 2)               # Σ (score − ½) = 0: the ½ baseline is exact


def test_mpo_expected_gradient_is_the_exact_magnetic_step():
    """On one-token responses (a softmax table θ (X, Y)), the expected gradient of `mpo_loss`
    (every pair (y, y') weighted by π(y)π(y'), exact P) points along the exact tabular MPO step
    `trainers.lab.algorithms.magnetic_step`: with d = log π_{k+1} − log π_k and
    h = (1 + η)/η · d (= P(· ≻ π_k)/β + log μ − log π_k up to a constant),
    E[∇_θ L] = −β π ⊙ (h − E_π h). Asymmetric π_θ, magnet μ ≠ π_ref, and a non-symmetric game."""
    import numpy as np
    from scipy.special import log_softmax

    from trainers.lab.algorithms import magnetic_step
    from trainers.lab.games import Game, lowrank_game
    from trainers.losses import mpo_loss

    X, Y, beta, eta = 3, 4, 0.3, 0.45
    rng = np.random.default_rng(1)
    base = lowrank_game(X, Y, 2, 3.0, 0, reference="random")
    game = Game(P=base.P, pi_ref=base.pi_ref, weights=base.weights)
    theta0, magnet = rng.standard_normal((X, Y)), log_softmax(rng.standard_normal((X, Y)), axis=1)
    theta = torch.tensor(theta0, requires_grad=True)
    lp = torch.log_softmax(theta, 1)
    pi = lp.exp().detach()
    total = 0.0
    for x in range(X):
        for y in range(Y):
            for y2 in range(Y):
                both = torch.stack([lp[x, y], lp[x, y2]])
                kl = sequence_kl(both, torch.tensor([magnet[x, y], magnet[x, y2]]))
                row = mpo_loss(lp[x, y:y + 1], lp[x, y2:y2 + 1], const(game.P[x, y, y2]), kl, beta=beta).loss
                total = total + pi[x, y] * pi[x, y2] * row
    total.backward()
    log_pi = log_softmax(theta0, axis=1)
    h = (1 + eta) / eta * (magnetic_step(log_pi, magnet, game=game, beta=beta, eta=eta) - log_pi)
    p = np.exp(log_pi)
    want = -beta * p * (h - (p * h).sum(1, keepdims=True))
    assert theta.grad.numpy() == pytest.approx(want, abs=1e-12)
    assert np.abs(want).max() > 1e-2
    # the check can fail: the magnet matters (π_ref as magnet gives another gradient)
    h_ref = (1 + eta) / eta * (magnetic_step(log_pi, game.log_pi_ref, game=game, beta=beta, eta=eta) - log_pi)
    assert np.abs(-beta * p * (h_ref - (p * h_ref).sum(1, keepdims=True)) - want).max() > 1e-2


def test_online_ipo_expected_gradient_vanishes_at_the_regularised_nash_and_dpo_does_not():
    """On-policy online IPO is consistent for π*_β (Calandriello et al. 2024); online DPO is not:
    exact expected gradients over all pairs of a cyclic one-token game (soft labels P)."""
    import numpy as np

    from trainers.lab.games import Game
    from trainers.lab.nash import regularized_nash

    P = np.array([[0.5, 0.8, 0.3], [0.2, 0.5, 0.9], [0.7, 0.1, 0.5]])      # a cycle, asymmetric margins
    pi_ref = np.array([[0.6, 0.3, 0.1]])
    beta = 0.2
    star = regularized_nash(Game(P=P[None], pi_ref=pi_ref, weights=np.ones(1)), beta).pi[0]
    y, y2 = (torch.tensor(v) for v in np.indices((3, 3)).reshape(2, -1))        # all 9 ordered pairs
    soft = torch.tensor(P[y.numpy(), y2.numpy()])
    ref = torch.log(torch.tensor(pi_ref[0]))

    def expected_grad(loss_fn, pi):
        theta = torch.log(torch.tensor(pi)).requires_grad_(True)
        lp = torch.log_softmax(theta, 0)
        w = (torch.tensor(pi)[y] * torch.tensor(pi)[y2]).detach()               # pairs drawn from sg[π_θ]
        per_pair = torch.stack([loss_fn(lp[y[k]][None], lp[y2[k]][None], ref[y[k]][None], ref[y2[k]][None],
                                        soft[k][None], beta=beta).loss for k in range(9)])
        (w * per_pair).sum().backward()
        return theta.grad.numpy()

    assert np.abs(expected_grad(online_ipo_loss, star)).max() < 1e-9
    assert np.abs(expected_grad(online_ipo_loss, pi_ref[0])).max() > 1e-2
    assert np.abs(expected_grad(online_dpo_loss, star)).max() > 1e-3        # 6.7e-3: DPO stops elsewhere


def test_explore_regression_on_policy_is_the_pg_gradient_up_to_a_baseline():
    """On the K on-policy samples, the regression's gradient is Nash-MP's PG gradient (sequence
    KL terms) minus a constant per prompt: the same estimator with a mean baseline."""
    from trainers.losses import explore_regression_loss, leave_one_out_score, mirror_prox_target, nash_mp_group_loss

    g = torch.Generator().manual_seed(0)
    B, K, beta, eta = 3, 4, 0.05, 0.1
    logp = (-3 * torch.rand(B, K, generator=g, dtype=torch.float64)).requires_grad_()
    ref, tgt = -3 * torch.rand(B, K, generator=g, dtype=torch.float64), -3 * torch.rand(B, K, generator=g, dtype=torch.float64)
    score = leave_one_out_score(torch.rand(B, K * (K - 1) // 2, generator=g, dtype=torch.float64))
    pg = nash_mp_group_loss(logp, score, sequence_kl(logp.reshape(-1), ref.reshape(-1)),
                            sequence_kl(logp.reshape(-1), tgt.reshape(-1)), beta=beta, eta=eta).loss
    (g_pg,) = torch.autograd.grad(pg, logp)
    target = mirror_prox_target(score, ref, tgt, beta=beta, eta=eta)
    (g_reg,) = torch.autograd.grad(explore_regression_loss(logp, target, beta=beta, eta=eta), logp)
    diff = g_pg - g_reg
    assert torch.allclose(diff, diff[:, :1].expand_as(diff), atol=1e-12)
    assert not torch.allclose(g_reg, torch.zeros_like(g_reg))
    # zero exactly where log π_θ = T + a constant per prompt
    assert explore_regression_loss(target + torch.arange(B, dtype=torch.float64)[:, None], target,
                                   beta=beta, eta=eta).item() == pytest.approx(0.0, abs=1e-24)


def test_explore_regression_reaches_the_mirror_prox_step_from_any_proposal():
    """Free logits, responses drawn from a uniform proposal (not from π_θ): minimising the
    regression gives π ∝ exp T, the Mirror Prox step's closed form, including the class π_θ starts
    at 1e-4 on (a policy gradient would move it in proportion to that 1e-4)."""
    from trainers.losses import explore_regression_loss, mirror_prox_target

    Y, beta, eta = 4, 0.01, 0.02
    P = torch.tensor([[0.5, 2 / 3, 1 / 3, 0.9], [1 / 3, 0.5, 2 / 3, 0.9], [2 / 3, 1 / 3, 0.5, 0.9], [0.1, 0.1, 0.1, 0.5]],
                     dtype=torch.float64)
    log_ref = torch.log(torch.tensor([0.6, 0.3, 1e-4, 0.1 - 1e-4], dtype=torch.float64))
    log_tgt = torch.log(torch.tensor([0.9, 0.05, 1e-4, 0.05 - 1e-4], dtype=torch.float64))    # the policy, mostly class 0
    pi = log_tgt.exp()
    score = P @ pi                                                   # P(y ≻ π_θ), exact
    T = mirror_prox_target(score, log_ref, log_tgt, beta=beta, eta=eta)
    want = torch.softmax(T, 0)
    theta = log_tgt.clone().requires_grad_()
    opt = torch.optim.Adam([theta], lr=0.05)
    g = torch.Generator().manual_seed(0)
    for _ in range(3000):
        y = torch.randint(Y, (16, 6), generator=g)                   # 16 prompts × 6 responses, uniform proposal
        logp = torch.log_softmax(theta, 0)[y]
        loss = explore_regression_loss(logp, T[y], beta=beta, eta=eta)
        opt.zero_grad()
        loss.backward()
        opt.step()
    got = torch.log_softmax(theta.detach(), 0)
    assert torch.allclose(got, want.log(), atol=1e-2), (got.exp(), want)       # in log space: the rare class too
    assert want[2] > 1.3 * pi[2]                                     # class 2 beats class 0: the step raises it


def test_continuation_regression_reaches_the_conditional_step_and_leaves_the_opening():
    """Two-token responses (opening a, continuation c), free continuation logits, drawn uniformly:
    minimising `continuation_regression_loss` gives π(c | a) ∝ exp T(a, c), the Mirror Prox step's
    conditional, for each opening, whose own log-probability is not in the loss; the
    full-sequence regression would lower an opening whose continuations mostly lose (opening 1)."""
    from trainers.losses import continuation_regression_loss, explore_regression_loss

    beta, eta = 0.01, 0.02
    T = torch.tensor([[0.0, -5.0, -5.0], [4.0, -30.0, -30.0]], dtype=torch.float64)   # opening 1: one winner in three
    psi = torch.tensor([[0.0, 0.0, 0.0], [-3.0, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([psi], lr=0.05)
    g = torch.Generator().manual_seed(0)
    for _ in range(2000):
        a, c = torch.randint(2, (16, 6), generator=g), torch.randint(3, (16, 6), generator=g)
        logp_rest = torch.log_softmax(psi, -1)[a, c]
        loss = continuation_regression_loss(logp_rest, T[a, c], a, beta=beta, eta=eta)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.allclose(torch.log_softmax(psi.detach(), -1), torch.log_softmax(T, -1), atol=1e-2)
    # a group of one response contributes nothing; one group is the full regression
    x, t = torch.tensor([[-1.0, -2.0, -4.0]]), torch.tensor([[0.0, 3.0, 1.0]])
    assert continuation_regression_loss(x, t, torch.tensor([[0, 1, 2]]), beta=beta, eta=eta).item() == 0.0
    assert continuation_regression_loss(x, t, torch.tensor([[7, 7, 7]]), beta=beta, eta=eta).item() == \
        pytest.approx(explore_regression_loss(x, t, beta=beta, eta=eta).item())
    # the full-sequence regression on the same samples moves opening 1 down
    phi2 = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    a, c = torch.tensor([[1, 1, 1, 0, 0, 0]]), torch.tensor([[0, 1, 2, 0, 1, 2]])
    psi0 = torch.tensor([[0.0, 0.0, 0.0], [-3.0, 0.0, 0.0]], dtype=torch.float64)
    logp = torch.log_softmax(phi2, 0)[a] + torch.log_softmax(psi0, -1)[a, c]
    (grad,) = torch.autograd.grad(explore_regression_loss(logp, T[a, c], beta=beta, eta=eta), phi2)
    assert grad[1] > 0                                               # descent lowers opening 1
    with pytest.raises(ValueError, match="alike"):
        continuation_regression_loss(x, t, torch.tensor([[0, 1]]), beta=beta, eta=eta)


def test_opening_and_continuation_regressions_reach_the_mirror_prox_step_factor_by_factor():
    """Two-token responses, free logits for the opening a and the continuation c given a; openings
    forced uniformly (as `--explore-first reference-top` draws them), continuations sampled from
    π_θ(·|a). The two regressions together reach π_T ∝ exp T: π(a) ∝ Σ_c exp T(a, c) and
    π(c | a) ∝ exp T(a, c), including opening 1, whose continuations mostly lose and whose mean
    advantage (a policy gradient's signal) is the lowest."""
    from trainers.losses import continuation_regression_loss, opening_regression_loss

    beta, eta = 0.01, 0.02
    T = torch.tensor([[0.0, -1.0, -1.0], [1.0, -30.0, -30.0], [-2.0, -2.0, -2.0]], dtype=torch.float64)
    phi = torch.tensor([0.0, -2.0, 0.0], dtype=torch.float64, requires_grad=True)
    psi = torch.tensor([[0.0, 0.0, 0.0], [-3.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    mean_adv = (torch.softmax(psi.detach(), -1) * T).sum(-1)
    assert mean_adv.argmin() == 1
    opt = torch.optim.Adam([phi, psi], lr=0.03)
    g = torch.Generator().manual_seed(0)
    for _ in range(1500):
        a = torch.randint(3, (16, 4), generator=g)
        cond = torch.softmax(psi.detach(), -1)[a]                               # (16, 4, 3)
        c = torch.multinomial(cond.view(-1, 3), 1, generator=g).view(16, 4)
        log_q = torch.log_softmax(psi.detach(), -1)[a, c]
        loss = continuation_regression_loss(torch.log_softmax(psi, -1)[a, c], T[a, c], a, beta=beta, eta=eta) \
            + opening_regression_loss(torch.log_softmax(phi, 0)[a], T[a, c] - log_q, a, beta=beta, eta=eta)
        opt.zero_grad()
        loss.backward()
        opt.step()
    want = torch.log_softmax(torch.logsumexp(T, -1), 0)
    assert torch.allclose(torch.log_softmax(phi.detach(), 0), want, atol=0.05), (phi.detach().softmax(0), want.exp())
    assert torch.allclose(torch.log_softmax(psi.detach(), -1)[:, 0], torch.log_softmax(T, -1)[:, 0], atol=0.05)
    assert want.argmax() == 1                                                   # the step's favourite opening
    # exact weights (q = π_T(·|a)): one continuation per opening gives the loss's zero
    logz = torch.logsumexp(T, -1)
    exact = (T - torch.log_softmax(T, -1))[[0, 1, 2], [0, 0, 2]].view(1, 3)     # = log Z_a
    assert torch.allclose(exact, logz.view(1, 3))
    assert opening_regression_loss(logz.view(1, 3) + 5.0, exact, torch.tensor([[0, 1, 2]]), beta=beta,
                                   eta=eta).item() == pytest.approx(0.0, abs=1e-20)
    # one opening per prompt: nothing to compare
    assert opening_regression_loss(torch.tensor([[-1.0, -1.0]]), torch.tensor([[3.0, -9.0]]), torch.tensor([[4, 4]]),
                                   beta=beta, eta=eta).item() == 0.0


def test_the_opening_regression_is_a_mean_over_prompts_so_processes_can_split_them():
    """`opening_regression_loss` averages each prompt's mean over its openings across prompts:
    two prompts with 3 and 2 openings give the mean of the two prompts' own losses, which is
    what two data-parallel processes, one prompt each, average to (a mean over all openings of
    the batch would weigh the prompt with more openings more, and differ by world size)."""
    from trainers.losses import opening_regression_loss

    logp = torch.tensor([[-0.5, -1.0, -2.0, -2.0], [-0.2, -0.2, -3.0, -3.0]], dtype=torch.float64)
    weight = torch.tensor([[1.0, -1.0, 0.5, 0.7], [2.0, 0.0, -1.0, -4.0]], dtype=torch.float64)
    groups = torch.tensor([[0, 1, 2, 2], [5, 5, 6, 6]])
    both = opening_regression_loss(logp, weight, groups, beta=0.1, eta=0.2)
    alone = [opening_regression_loss(logp[b:b + 1], weight[b:b + 1], groups[b:b + 1], beta=0.1, eta=0.2)
             for b in range(2)]
    assert float(both) == pytest.approx(float(sum(alone)) / 2, rel=1e-12)
    # prompt 1 by hand: openings 5 and 6, log Ẑ = log mean exp(weight) per group, r centred over the two
    r = [-0.2 - math.log((math.exp(2.0) + 1.0) / 2), -3.0 - math.log((math.exp(-1.0) + math.exp(-4.0)) / 2)]
    r = [x - sum(r) / 2 for x in r]
    assert float(alone[1]) == pytest.approx(0.5 * (0.1 + 0.5) * (r[0] ** 2 + r[1] ** 2) / 2, rel=1e-12)


def test_an_opening_floor_stops_lowering_a_loser_there_and_changes_nothing_else():
    """`opening_regression_loss(floor=…)`: an opening the step lowers below its floor is pulled to
    the floor, not past it; one already under the floor that the step lowers further is left where
    it is (no gradient); one the step raises, under the floor or not, is regressed as without it."""
    from trainers.losses import opening_regression_loss

    beta, eta = 0.01, 0.02
    logp = torch.tensor([[-0.1, -3.0, -9.0, -2.6]], dtype=torch.float64, requires_grad=True)
    weight = torch.tensor([[0.0, -40.0, -60.0, 1.0]], dtype=torch.float64)       # openings 1, 2 lose badly
    groups = torch.tensor([[0, 1, 2, 3]])
    floor = torch.tensor([[-20.0, -6.0, -7.0, -5.0]], dtype=torch.float64)     # 2 is under its floor already

    def grad(**kw):
        logp.grad = None
        loss = opening_regression_loss(logp, weight, groups, beta=beta, eta=eta, **kw)
        loss.backward()
        return float(loss.detach()), logp.grad.clone()

    loss, g = grad()
    far, g_far = grad(floor=torch.full_like(floor, -1e9))                     # a floor no step reaches: no change
    assert far == pytest.approx(loss, rel=1e-12) and torch.allclose(g_far, g, rtol=1e-12, atol=0)
    r = (logp.detach() - weight) - (logp.detach() - weight).mean()             # the centred residuals
    assert r[0, 1] > 0 and r[0, 2] > 0 and r[0, 3] < 0                       # 1, 2 lowered; 3 raised (under floor)
    held, gh = grad(floor=floor)
    c = 0.5 * (beta + beta / eta) / 4
    assert gh[0, 1] == pytest.approx(2 * c * (-3.0 - -6.0))                  # pulled to its floor only
    assert gh[0, 2] == 0.0                                                   # under its floor: left alone
    assert gh[0, 0] == pytest.approx(float(g[0, 0])) and gh[0, 3] == pytest.approx(float(g[0, 3]))
    assert held == pytest.approx(c * (r[0, 0] ** 2 + 3.0 ** 2 + r[0, 3] ** 2).item())
    with pytest.raises(ValueError, match="floor must be"):
        opening_regression_loss(logp, weight, groups, beta=beta, eta=eta, floor=floor[:, :2])


def test_a_floor_lets_a_token_that_opens_losers_on_many_prompts_win_on_one():
    """The tug that `--explore-floor` stops. Ten prompts share a token's logit through a model
    that tells prompt 0 apart from the others only in part (logit w + c_b v, c_0 = 1, c_b = 0.2);
    the token opens the winner on prompt 0 (π_T = e/(e + 2)) and a loser on the nine others,
    whose step keeps lowering it (target e^-50). Without a floor the nine drag prompt 0's winner
    down with them; held at e^-5 of π_ref, they stop pulling and prompt 0 reaches its step."""
    from trainers.losses import opening_regression_loss

    B = 10
    T = torch.zeros(B, 3, dtype=torch.float64)
    T[1:, 0], T[0, 0] = -50.0, 1.0
    c = torch.full((B, 1), 0.2, dtype=torch.float64)
    c[0] = 1.0
    log_ref = torch.full((B, 3), -math.log(3), dtype=torch.float64)

    def train(floor):
        w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        v = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([w, v], lr=0.05)
        for _ in range(800):
            loss = opening_regression_loss(torch.log_softmax(w + c * v, -1), T, torch.arange(3).repeat(B, 1),
                                           beta=0.01, eta=0.02, floor=floor)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return torch.log_softmax(w + c * v, -1).detach()

    want = math.e / (math.e + 2)
    free, held = train(None), train(log_ref - 5.0)
    assert free[0, 0].exp() < 1e-6                                           # the winner collapsed with the losers
    assert held[0, 0].exp() == pytest.approx(want, abs=0.06)
    assert (held[1:, 0] - log_ref[1:, 0]).min() > -5.0 - 1.0                 # the losers held about e^-5 down
