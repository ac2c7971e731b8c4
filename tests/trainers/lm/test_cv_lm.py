"""Nash-MP with the surrogate control variate (`--cv-samples M`): the loss (`nash_mp_cv_loss`) is
the plain one at K = 2 and unbiased by enumeration on one-token responses whatever the surrogate,
also when only a fraction q of the pairs is judged (`--judge-fraction`, corrections weighted 1/q);
the features, statistics and fit (`trainers.lm.surrogate`); the option's refusal; the trainer's
samples, logged fit error, and resume."""

import itertools
import json

import numpy as np
import pytest
import torch

from arena.errors import ConfigError
from arena.worlds.lowrank import JUDGE_SPEC, LowrankWorld, build_lowrank_world
from trainers.lm import TrainConfig, nash_mp, train
from trainers.lm.surrogate import FeatureStats, SurrogateState, final_hidden
from trainers.losses import nash_mp_cv_loss, nash_mp_loss, sequence_kl

# a 3-class game, not symmetric under any relabelling (P + Pᵀ = 1), and a deliberately wrong surrogate
P = torch.tensor([[0.5, 0.8, 0.3],
                  [0.2, 0.5, 0.9],
                  [0.7, 0.1, 0.5]], dtype=torch.float64)
S_WRONG = torch.tensor([[0.5, 0.1, 0.6],
                        [0.9, 0.5, 0.4],
                        [0.4, 0.6, 0.5]], dtype=torch.float64)
THETA = torch.tensor([[0.4, -0.3, -1.1], [-0.5, 0.6, 0.1]], dtype=torch.float64)   # two prompts, (X, Y)
LOG_REF = torch.log_softmax(torch.tensor([[0.0, 0.2, -0.7], [0.3, -0.2, 0.0]], dtype=torch.float64), -1)
LOG_TGT = torch.log_softmax(torch.tensor([[0.5, -0.1, -0.9], [-0.2, 0.4, 0.3]], dtype=torch.float64), -1)
BETA, ETA = 0.3, 0.6


def cv_loss(theta, ys, S, x=None, w=None):
    """The loss on one-token responses ys (B, K) of the policy softmax(theta) (X, Y) to prompts x (B,)
    (default: prompt b for row b); w (B,): the corrections' weights."""
    x = torch.arange(len(ys)) if x is None else x
    rows = x[:, None]
    logp = torch.log_softmax(theta, -1)[rows, ys]                                # (B, K)
    pref = P[ys[:, 0], ys[:, 1]]
    S_k = S[ys[:, :, None], ys[:, None, :]]                                       # (B, K, K)
    kl_ref = sequence_kl(logp.reshape(-1), LOG_REF[rows, ys].reshape(-1))
    kl_tgt = sequence_kl(logp.reshape(-1), LOG_TGT[rows, ys].reshape(-1))
    return nash_mp_cv_loss(logp, pref, S_k, kl_ref, kl_tgt, beta=BETA, eta=ETA, correction_weight=w)


def exact_grad():
    """∇θ of −P(π ≻ sg π) + β KL(π‖π_ref) + (β/η) KL(π‖π_tgt), summed over prompts, /X (the loss's mean)."""
    theta = THETA.clone().requires_grad_(True)
    pi = torch.softmax(theta, -1)
    logpi = torch.log_softmax(theta, -1)
    objective = (-(pi * (pi.detach() @ P.T)).sum(-1) + BETA * (pi * (logpi - LOG_REF)).sum(-1)
                 + BETA / ETA * (pi * (logpi - LOG_TGT)).sum(-1))
    objective.mean().backward()
    return theta.grad


def expected_grad(S, K, q=1.0):
    """E over all K-tuples of one-token samples (enumerated, same tuple on both prompts, weighted
    by its probability under each prompt's policy) and, for q < 1, over whether the pair is judged
    (probability q, correction weight 1/q; else weight 0 and a pref that must not be read: NaN)
    of the loss's gradient."""
    pi = torch.softmax(THETA, -1)
    total = torch.zeros_like(THETA)
    draws = [(1.0, None)] if q == 1 else [(q, 1 / q), (1 - q, 0.0)]
    for ys in itertools.product(range(3), repeat=K):
        for x in range(2):
            for prob, w in draws:
                theta = THETA.clone().requires_grad_(True)
                rows = torch.tensor([ys])
                weight = None if w is None else torch.tensor([w], dtype=torch.float64)
                if w == 0.0:         # an unjudged pair: its pref is never looked at
                    parts = _unjudged_loss(theta, rows, S, torch.tensor([x]))
                else:
                    parts = cv_loss(theta, rows, S, x=torch.tensor([x]), w=weight)
                parts.loss.backward()
                total += prob * float(torch.prod(pi[x, list(ys)])) * theta.grad / 2
    return total


def _unjudged_loss(theta, ys, S, x):
    """cv_loss with weight 0 and pref NaN (the trainer's unjudged rows hold an unread ½)."""
    rows = x[:, None]
    logp = torch.log_softmax(theta, -1)[rows, ys]
    S_k = S[ys[:, :, None], ys[:, None, :]]
    kl_ref = sequence_kl(logp.reshape(-1), LOG_REF[rows, ys].reshape(-1))
    kl_tgt = sequence_kl(logp.reshape(-1), LOG_TGT[rows, ys].reshape(-1))
    return nash_mp_cv_loss(logp, torch.full((len(ys),), float("nan"), dtype=torch.float64), S_k, kl_ref, kl_tgt,
                           beta=BETA, eta=ETA, correction_weight=torch.zeros(len(ys), dtype=torch.float64))


@pytest.mark.parametrize("K", [2, 3, 4])
@pytest.mark.parametrize("S", [S_WRONG, P, torch.full((3, 3), 0.5, dtype=torch.float64)], ids=["wrong", "exact", "half"])
def test_cv_loss_is_unbiased_whatever_the_surrogate(K, S):
    torch.testing.assert_close(expected_grad(S, K), exact_grad(), atol=1e-12, rtol=0)


@pytest.mark.parametrize("K", [2, 3])
@pytest.mark.parametrize("S", [S_WRONG, P], ids=["wrong", "exact"])
def test_sparse_judging_stays_unbiased(K, S):
    """--judge-fraction q: judged with probability q and weighted 1/q, the correction keeps the
    expectation; the surrogate part needs no judge. K = 2 (no surrogate score beyond y_1, y_2)
    and a wrong S are the cases where a missing 1/q would show."""
    torch.testing.assert_close(expected_grad(S, K, q=0.3), exact_grad(), atol=1e-12, rtol=0)


def test_sparse_judging_without_the_weight_would_be_biased():
    """The test above can fail: judging with probability q without the 1/q weight moves the mean."""
    pi = torch.softmax(THETA, -1)
    total = torch.zeros_like(THETA)
    for ys in itertools.product(range(3), repeat=3):
        for x in range(2):
            for prob, judged in ((0.3, True), (0.7, False)):
                theta = THETA.clone().requires_grad_(True)
                rows, xs = torch.tensor([ys]), torch.tensor([x])
                parts = (cv_loss(theta, rows, S_WRONG, x=xs, w=torch.ones(1, dtype=torch.float64)) if judged
                         else _unjudged_loss(theta, rows, S_WRONG, xs))
                parts.loss.backward()
                total += prob * float(torch.prod(pi[x, list(ys)])) * theta.grad / 2
    assert (total - exact_grad()).abs().max() > 0.01


def test_one_draw_depends_on_the_surrogate():
    """The enumeration above would pass with a surrogate that is ignored; one draw cannot."""
    ys = torch.tensor([[0, 1, 2, 2], [2, 0, 1, 0]])
    grads = []
    for S in (S_WRONG, P):
        theta = THETA.clone().requires_grad_(True)
        cv_loss(theta, ys, S).loss.backward()
        grads.append(theta.grad)
    assert (grads[0] - grads[1]).abs().max() > 0.05


def test_two_samples_is_nash_mp_loss_whatever_the_surrogate():
    """K = 2 (--cv-samples 0's sampling): the same loss value and gradient as `nash_mp_loss`."""
    ys = torch.tensor([[0, 2], [1, 0]])
    rows = torch.arange(2)[:, None]
    theta = THETA.clone().requires_grad_(True)
    cv = cv_loss(theta, ys, S_WRONG)
    cv.loss.backward()
    theta2 = THETA.clone().requires_grad_(True)
    logp = torch.log_softmax(theta2, -1)[rows, ys]
    flat = logp.T.reshape(-1)                                                     # [y; y'] as nash_mp_loss takes them
    refs, tgts = LOG_REF[rows, ys].T.reshape(-1), LOG_TGT[rows, ys].T.reshape(-1)
    plain = nash_mp_loss(logp[:, 0], logp[:, 1], P[ys[:, 0], ys[:, 1]], sequence_kl(flat, refs), sequence_kl(flat, tgts),
                         beta=BETA, eta=ETA)
    plain.loss.backward()
    torch.testing.assert_close(cv.loss, plain.loss, atol=1e-14, rtol=0)
    torch.testing.assert_close(theta.grad, theta2.grad, atol=1e-14, rtol=0)


def test_cv_loss_checks_its_inputs():
    ys = torch.tensor([[0, 1, 2]])
    logp = torch.zeros(1, 3)
    kl = sequence_kl(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match=r"S \(B, K, K\)"):
        nash_mp_cv_loss(logp, torch.zeros(1), torch.full((1, 3, 2), 0.5), kl, kl, beta=0.1, eta=0.2)
    with pytest.raises(ValueError, match=r"S\(a, b\) \+ S\(b, a\) = 1"):
        nash_mp_cv_loss(logp, torch.zeros(1), torch.full((1, 3, 3), 0.6), kl, kl, beta=0.1, eta=0.2)
    with pytest.raises(ValueError, match=r"correction_weight must be \(B,\)"):
        nash_mp_cv_loss(logp, torch.zeros(1), torch.full((1, 3, 3), 0.5), kl, kl, beta=0.1, eta=0.2,
                        correction_weight=torch.ones(2))
    del ys


# ---------------------------------------------------------------------------- surrogate.py

def test_running_stats_equal_the_stats_of_everything_seen():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3)) * [1.0, 5.0, 0.1] + [2.0, -1.0, 0.0]
    stats = FeatureStats.empty(3).update(x[:7]).update(x[7:30]).update(x[30:])
    np.testing.assert_allclose(stats.mean, x.mean(0), atol=1e-12)
    np.testing.assert_allclose(stats.m2 / stats.n, x.var(0), atol=1e-12)
    np.testing.assert_allclose(stats.standardise(x).std(0), 1.0, atol=1e-6)


def test_surrogate_fit_learns_a_judge_of_the_features_and_round_trips():
    """A judge that is a known function of two features (a transitive score and a cycle): the fit
    error falls from |p − ½| to well below it; the state survives to_tensors/from_tensors."""
    rng = np.random.default_rng(1)
    d = 18
    state = SurrogateState.empty(d)
    errors = []

    def judge(a, b):
        return 1 / (1 + np.exp(-(2 * (a[:, 0] - b[:, 0]) + 3 * (a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1]))))

    for _ in range(40):
        phi = rng.normal(size=(64, 4, d)) * 2 + 1                                 # not standardised
        p = judge(phi[:, 0], phi[:, 1])
        errors.append(np.abs(state.probs(phi)[:, 0, 1] - p).mean())
        state = state.update(phi.reshape(-1, d), phi[:, 0], phi[:, 1], p)
    assert errors[0] > 0.2 and np.mean(errors[-5:]) < 0.5 * errors[0]
    back = SurrogateState.from_tensors(state.to_tensors())
    phi = rng.normal(size=(3, 5, d))
    np.testing.assert_array_equal(back.probs(phi), state.probs(phi))
    np.testing.assert_allclose(state.probs(phi) + state.probs(phi).transpose(0, 2, 1), 1.0, atol=1e-12)
    assert len(back.p) == 40 * 64 and back.surrogate.t == state.surrogate.t == 40 * 5


def test_final_hidden_is_the_models_last_hidden_state(world):
    from arena.loading import load_causal_lm

    model, _ = load_causal_lm(world / "ckpts" / "sft")
    ids = torch.tensor([[3, 5, 7, 2], [4, 4, 1, 9]])
    with torch.no_grad(), final_hidden(model) as seen:
        out = model(input_ids=ids, output_hidden_states=True)
    assert len(seen) == 1
    torch.testing.assert_close(seen[0], out.hidden_states[-1])


# ---------------------------------------------------------------------------- the trainer

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_lowrank_world(tmp_path_factory.mktemp("w") / "lowrank", LowrankWorld(n_contexts=4, n_actions=4, sft_steps=40))


def cfg(world, out, **kw):
    base = dict(policy=str(world / "ckpts" / "sft"), judge=JUDGE_SPEC, prompts=str(world / "prompts.jsonl"),
                out=str(out), steps=3, batch_size=4, max_new_tokens=4, eval_every=0, eval_batch=4, save_every=0,
                lr=0.05)
    return TrainConfig(**{**base, **kw})


def rows(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_cv_samples_refused_with_more_samples_per_prompt(world, tmp_path, capsys):
    with pytest.raises(ConfigError, match="--cv-samples 2 .* --samples-per-prompt 3 .*drop one"):
        nash_mp.Options(cv_samples=2, samples_per_prompt=3)
    with pytest.raises(ConfigError, match="--cv-samples must be >= 0"):
        nash_mp.Options(cv_samples=-1)
    from arena.cli import main

    args = ["train", "nash-mp", "--policy", str(world / "ckpts" / "sft"), "--judge", JUDGE_SPEC,
            "--prompts", str(world / "prompts.jsonl"), "--out", str(tmp_path / "x"), "--steps", "1",
            "--cv-samples", "2", "--samples-per-prompt", "3"]
    assert main(args) == 2
    assert "--samples-per-prompt 3" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_judge_fraction_is_refused_out_of_range_or_without_a_surrogate(world, tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"--judge-fraction must be in \(0, 1\]"):
        nash_mp.Options(cv_samples=2, judge_fraction=0.0)
    with pytest.raises(ConfigError, match="--judge-fraction 0.5 needs a surrogate .* --cv-samples"):
        nash_mp.Options(judge_fraction=0.5)
    from arena.cli import main

    args = ["train", "nash-mp", "--policy", str(world / "ckpts" / "sft"), "--judge", JUDGE_SPEC,
            "--prompts", str(world / "prompts.jsonl"), "--out", str(tmp_path / "x"), "--steps", "1",
            "--judge-fraction", "1.5", "--cv-samples", "2"]
    assert main(args) == 2
    assert "--judge-fraction must be in (0, 1]" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_judge_fraction_judges_the_drawn_prompts_only(world, tmp_path):
    """Each prompt's pair is judged with probability q, drawn from (seed, step): the judge queries
    are exactly the draws' count (known answer from the generator), the fit error is logged only
    on steps with a judged pair, and a step with none still moves the policy (surrogate part)."""
    from trainers.lm.common import generator

    q, steps, B = 0.3, 8, 4
    out = train("nash-mp", cfg(world, tmp_path / "sparse", steps=steps, batch_size=B,
                               options=nash_mp.Options(cv_samples=2, judge_fraction=q)))
    drawn = [int((torch.rand(B, generator=generator(0, k, nash_mp.JUDGE_DRAW)) < q).sum()) for k in range(steps)]
    assert 0 in drawn and 0 < sum(drawn) < steps * B                             # the case is exercised
    got = rows(out)
    assert [r["judge_queries"] for r in got] == list(itertools.accumulate(drawn))
    assert [r["judged_fraction"] for r in got] == pytest.approx([d / B for d in drawn])
    assert ["surrogate_error" in r for r in got] == [d > 0 for d in drawn]
    empty = drawn.index(0)
    assert empty > 0 and got[empty]["grad_norm"] > 0                              # S fitted by then: a gradient


def test_cv_judges_the_plain_paths_pair_and_logs_the_fit_error(world, tmp_path):
    """One judge query per prompt, on the very pair the plain path judges (same samples, same
    judge draws: equal pref_mean at step 1, before the policies differ); the fit error is
    logged on every step, and only with --cv-samples."""
    plain = rows(train("nash-mp", cfg(world, tmp_path / "plain", steps=1)))
    cv = rows(train("nash-mp", cfg(world, tmp_path / "cv", options=nash_mp.Options(cv_samples=3))))
    assert cv[0]["pref_mean"] == pytest.approx(plain[0]["pref_mean"], abs=1e-7)
    assert [r["judge_queries"] for r in cv] == [4, 8, 12]
    assert "surrogate_error" not in plain[0]
    assert all(0 < r["surrogate_error"] < 1 for r in cv)
    # before any fit S ≡ ½: every surrogate score is 0 and the loss is the plain one (KL 0 at step 1)
    assert cv[0]["loss"] == pytest.approx(plain[0]["loss"], abs=1e-6)


def test_cv_resume_gives_the_uninterrupted_result(world, tmp_path):
    """The surrogate, its Adam state, statistics and buffer are in the resume state: a run cut
    after step 2 and resumed ends with the uninterrupted run's weights and fit errors."""
    opts = nash_mp.Options(cv_samples=2)
    full = train("nash-mp", cfg(world, tmp_path / "full", steps=4, options=opts))

    class Stop(Exception):
        pass

    def stop_at_3(step, row):
        if step == 3:
            raise Stop

    config = cfg(world, tmp_path / "cut", steps=4, save_every=2, options=opts)
    with pytest.raises(Stop):
        train("nash-mp", config, progress=stop_at_3)
    state = torch.load(tmp_path / ".cut.partial" / ".resume" / "state.pt", weights_only=True)
    assert len(state["extra"]["surrogate"]["p"]) == 2 * 4                       # two steps' judged pairs
    resumed = train("nash-mp", config, resume=True)
    from safetensors.torch import load_file

    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    errors = [r["surrogate_error"] for r in rows(full)]
    assert [r["surrogate_error"] for r in rows(resumed)] == pytest.approx(errors, abs=1e-6)
    assert errors[2] != pytest.approx(errors[1], abs=1e-6)                     # the resumed steps use a fitted S
