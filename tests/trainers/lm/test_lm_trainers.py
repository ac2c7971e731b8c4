"""LM trainers on a tiny lowrank world: outputs, metrics, resume, LoRA views, exact class distribution."""

import json

import numpy as np
import pytest
import torch

from arena.errors import ConfigError, InputError
from arena.worlds.lowrank import JUDGE_SPEC, judge, parse_prompt
from trainers.lm import TrainConfig, train
from trainers.lm import common as C
from trainers.lm import mpo, nash_md, nash_mp, rlhf

RLOO3 = {"rlhf": rlhf.Options(rloo_k=3)}
"""Three responses per prompt for RLHF (the other algorithms take their default options)."""


@pytest.fixture(scope="module")
def world(tiny_lowrank_world):
    return tiny_lowrank_world(40)


def cfg(world, out, **kw):
    base = dict(policy=str(world / "ckpts" / "sft"), judge=JUDGE_SPEC, prompts=str(world / "prompts.jsonl"),
                out=str(out), steps=3, batch_size=4, max_new_tokens=4, eval_every=2, eval_batch=4, save_every=0)
    return TrainConfig(**{**base, **kw})


class _Stop(Exception):
    """Raised by a `_stop_at` progress callback: the run ends there as a crash would end it."""


def _stop_at(step_to_stop: int):
    """A progress callback that raises `_Stop` when the run reports step `step_to_stop`."""
    def progress(step, row):
        if step == step_to_stop:
            raise _Stop
    return progress


def test_world_judge_is_the_game(world):
    nash = json.loads((world / "nash.json").read_text())
    P = np.array(nash["P"])
    prompt = nash["contexts"][2]
    assert parse_prompt(prompt)[1] == 2
    assert judge(prompt, "B", "D...") == pytest.approx(P[2, 1, 3])
    assert judge(prompt, "D", "B") == pytest.approx(1 - P[2, 1, 3])
    assert judge(prompt, "", "A") == pytest.approx(0.5)          # empty text is class 0
    assert (world / "judge.txt").read_text().strip() == JUDGE_SPEC
    with pytest.raises(InputError, match="lowrank"):
        judge("hello", "A", "B")


def test_class_distribution_matches_sampling(world):
    """The exact class distribution (next-token probabilities) against 4000 sampled first tokens."""
    config = cfg(world, world / "unused")
    policy = C.load_policy(config)
    known = C.load_known_nash(config, policy.tokenizer)
    exact = C.class_distribution(policy.model, policy, known.contexts, known.token_class, 4)
    nash = json.loads((world / "nash.json").read_text())
    assert exact.numpy() == pytest.approx(np.array(nash["pi_ref"]), abs=1e-9)
    n = 1000
    ids, mask = C.encode(policy.tokenizer, [c for c in known.contexts for _ in range(n)])
    gen = C.sample(policy.model, policy, ids, mask, torch.rand(len(ids), 1, generator=torch.Generator().manual_seed(0)))
    from trainers.lm.exact import class_of_text
    classes = np.array([class_of_text(t, "ABCD") for t in C.decode(policy.tokenizer, gen)]).reshape(4, n)
    freq = np.stack([(classes == c).mean(1) for c in range(4)], 1)
    assert np.abs(freq - exact.numpy()).max() < 0.06   # ~4 standard errors at n = 1000


def test_nash_mp_writes_checkpoint_card_and_metrics(world, tmp_path):
    out = train("nash-mp", cfg(world, tmp_path / "ckpts" / "nmp"))
    assert out == tmp_path / "ckpts" / "nmp"
    card = json.loads((out / "arena_card.json").read_text())
    assert card["algorithm"] == "nash-mp" and card["seed"] == 0 and card["config"]["kappa"] == "0.1"
    assert card["parent"].endswith("sft") and len(card["parent_fingerprint"]) == 16
    assert card["steps_done"] == 3 and card["judge_queries"] == 12 and card["kl_to_nash"] > 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert [r["judge_queries"] for r in rows] == [4, 8, 12]
    assert all(r["kl_to_nash"] > 0 for r in rows)
    assert "win_rate_vs_target" in rows[1] and "win_rate_vs_target" not in rows[0]
    assert not list(tmp_path.joinpath("ckpts").glob(".*"))          # no partial dir left behind
    from arena.loading import load_causal_lm
    model, _ = load_causal_lm(out)
    sft, _ = load_causal_lm(world / "ckpts" / "sft")
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), sft.parameters()))
    with pytest.raises(ConfigError, match="already exists"):
        train("nash-mp", cfg(world, out))


@pytest.mark.parametrize("algorithm", ["nash-md", "online-dpo", "online-ipo", "self-play", "rlhf", "mpo"])
def test_other_algorithms_run(world, tmp_path, algorithm):
    out = train(algorithm, cfg(world, tmp_path / algorithm, steps=2, batch_size=2, options=RLOO3.get(algorithm)))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    per_step = {"rlhf": 2 * 3}.get(algorithm, 2)
    assert rows[-1]["judge_queries"] == 2 * per_step
    assert np.isfinite(rows[-1]["loss"]) and "kl_to_nash" in rows[-1]
    if algorithm == "self-play":   # κ = 1: the target is the current policy, so its KL term is exactly 0
        assert rows[-1]["kl_ref"] > 0 and all(r["kl_target"] == 0 for r in rows)


def test_mpo_magnet_is_refreshed_to_the_policy(world, tmp_path):
    """The KL to the magnet is 0 right after a refresh (μ = π_θ) and grows while μ stays."""
    def kl(every):
        out = train("mpo", cfg(world, tmp_path / f"mpo{every}", steps=3, batch_size=4, lr=0.05,
                               options=mpo.Options(magnet_every=every), eval_every=0))
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        assert [r["magnet_refreshed"] for r in rows] == [int((k + 1) % every == 0) for k in range(3)]
        return [r["kl_ref"] for r in rows]
    assert kl(1) == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)
    still = kl(5)
    assert still[0] == pytest.approx(0.0, abs=1e-6) and still[1] > 1e-4 and still[2] > 1e-4


def test_resume_gives_the_uninterrupted_result(world, tmp_path):
    full = train("nash-mp", cfg(world, tmp_path / "full", steps=4))

    config = cfg(world, tmp_path / "cut", steps=4, save_every=2)
    with pytest.raises(_Stop):
        train("nash-mp", config, progress=_stop_at(3))
    assert not (tmp_path / "cut").exists() and (tmp_path / ".cut.partial" / ".resume" / "state.pt").is_file()
    with pytest.raises(ConfigError, match="different config \\(lr 0.001 → 0.5\\)"):
        train("nash-mp", cfg(world, tmp_path / "cut", steps=4, save_every=2, lr=0.5), resume=True)
    with pytest.raises(ConfigError, match=r"interrupted run \(saved after step 2.*--resume.*--overwrite"):
        train("nash-mp", config)                  # no silent reuse of the old state
    assert (tmp_path / ".cut.partial" / "checkpoint-2").is_dir()
    seen = []
    resumed = train("nash-mp", config, resume=True, progress=lambda s, r: seen.append(s))
    assert seen == [3, 4]
    assert (resumed / "checkpoint-2").is_dir() and not (resumed / ".resume").exists()
    from safetensors.torch import load_file
    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    rows = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and rows[-1]["judge_queries"] == 16
    with pytest.raises(ConfigError, match="finished run, there is nothing to resume"):
        train("nash-mp", config, resume=True)


def test_resume_and_overwrite_are_explicit(world, tmp_path):
    config = cfg(world, tmp_path / "run", steps=3, save_every=1)
    with pytest.raises(ConfigError, match="no interrupted run to continue.*drop --resume"):
        train("nash-mp", config, resume=True)
    with pytest.raises(ConfigError, match="pass one of them"):
        train("nash-mp", config, resume=True, overwrite=True)
    with pytest.raises(_Stop):
        train("nash-mp", config, progress=_stop_at(2))
    assert C.saved_step(tmp_path / "run") == 2
    seen = []   # --overwrite starts over: every step, from the initial policy, old checkpoints gone
    out = train("nash-mp", config, overwrite=True, progress=lambda s, r: seen.append(s))
    assert seen == [1, 2, 3] and sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    assert C.saved_step(out) is None


def test_lora_reference_is_the_base_and_target_holds_adapters_only(world, tmp_path):
    import warnings

    config = cfg(world, tmp_path / "lora", lora=True, steps=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        policy = C.load_policy(config)
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]   # peft's noise, silenced
    names = list(policy.copy_trainable())
    assert names and all("lora_" in n for n in names)
    assert policy.ref_params is None
    with torch.no_grad():
        for n, p in policy.model.named_parameters():
            if "lora_B" in n:
                p.add_(0.5)                    # adapters now change the output
    ids, mask = C.encode(policy.tokenizer, ["lowrank 0 4x4 r2 s3 context 1"])
    from arena.loading import load_causal_lm
    base, _ = load_causal_lm(world / "ckpts" / "sft")
    with torch.no_grad():
        want = base(input_ids=ids, attention_mask=mask).logits
        assert torch.allclose(policy.reference()(input_ids=ids, attention_mask=mask).logits, want, atol=1e-5)
        live = policy.model(input_ids=ids, attention_mask=mask).logits
        assert not torch.allclose(live, want, atol=1e-3)
        # the target view swaps in its own adapter tensors, adapters on
        snapshot = policy.copy_trainable()
        for n, p in policy.model.named_parameters():
            if "lora_B" in n:
                p.add_(0.5)
        assert torch.allclose(policy.view(snapshot)(input_ids=ids, attention_mask=mask).logits, live, atol=1e-5)
        assert not torch.allclose(policy.model(input_ids=ids, attention_mask=mask).logits, live, atol=1e-3)
    out = train("nash-mp", config)
    # A LoRA run saves the adapter (a PEFT checkpoint over --policy) unless --merge is given
    # (test_runtime_options.py checks both outputs and that the tournament loads the adapter).
    assert (out / "adapter_model.safetensors").is_file() and not (out / "model.safetensors").exists()


def test_bad_inputs(world, tmp_path):
    with pytest.raises(ConfigError, match="unknown algorithm"):
        train("ppo", cfg(world, tmp_path / "x"))
    with pytest.raises(InputError, match="does not exist"):
        train("nash-mp", cfg(world, tmp_path / "x", prompts=str(tmp_path / "none.jsonl")))
    from arena.errors import CheckpointError
    with pytest.raises(CheckpointError):
        train("nash-mp", cfg(world, tmp_path / "x", policy=str(tmp_path)))
    with pytest.raises(ConfigError):
        train("nash-mp", cfg(world, tmp_path / "x", judge="nosuch:thing"))
    assert sorted(p.name for p in tmp_path.iterdir()) == []           # bad input wrote nothing
    with pytest.raises(ConfigError, match="kappa"):
        nash_mp.Options(kappa="1.5")
    assert C.Schedule.parse("harmonic:10")(5) == pytest.approx(10 / 15)


def test_cli_train_and_exit_codes(world, tmp_path, capsys):
    from arena.cli import main
    args = ["train", "online-dpo", "--policy", str(world / "ckpts" / "sft"), "--judge", JUDGE_SPEC,
            "--prompts", str(world / "prompts.jsonl"), "--out", str(tmp_path / "dpo"), "--steps", "2",
            "--batch-size", "2", "--max-new-tokens", "4", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["step"] == 2 and "kl_to_nash" in result["metrics"]
    assert main(args) == 2                           # --out exists
    assert "already exists" in capsys.readouterr().err


def test_cli_resume_is_explicit(world, tmp_path, capsys):
    """An interrupted run is refused (exit 2, the fix in the message) until --resume or --overwrite."""
    from arena.cli import main

    out = tmp_path / "mp"
    with pytest.raises(_Stop):
        train("nash-mp", cfg(world, out, steps=2, batch_size=2, grad_accum=2, save_every=1, eval_every=0,
                                   eval_batch=8), progress=_stop_at(1))
    args = ["train", "nash-mp", "--policy", str(world / "ckpts" / "sft"), "--judge", JUDGE_SPEC,
            "--prompts", str(world / "prompts.jsonl"), "--out", str(out), "--steps", "2", "--batch-size", "2",
            "--grad-accum", "2", "--save-every", "1", "--eval-every", "0", "--max-new-tokens", "4", "--json"]
    assert main(args) == 2
    assert "interrupted run (saved after step 1" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["step"] == 2 and result["metrics"]["judge_queries"] == 2 * 2 * 2
    assert main([*args, "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_nash_md_with_lora_samples_the_mixture_through_the_disabled_adapters(world, tmp_path):
    out = train("nash-md", cfg(world, tmp_path / "md-lora", lora=True, steps=2, batch_size=2))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["judge_queries"] == 4 and np.isfinite(rows[-1]["loss"])


def test_bt_scores_of_the_rlhf_reward():
    from trainers.lm.rlhf import bt_scores
    W = torch.tensor([[[0.0, 3.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]]])
    s = bt_scores(W, prior=1e-9)[0]
    # MLE optimality: wins of i = Σ_j N_ij σ(s_i − s_j) for every i, scores centred
    N = W[0] + W[0].T
    P = torch.sigmoid(s[:, None] - s[None, :]).float()
    assert torch.allclose((N * P).sum(1), W[0].sum(1), atol=1e-6)
    assert abs(float(s.sum())) < 1e-9 and s[0] > s[2] > s[1]
    two = bt_scores(torch.tensor([[[0.0, 3.0], [1.0, 0.0]]]), prior=1e-9)[0]
    assert float(two[0] - two[1]) == pytest.approx(np.log(3), abs=1e-6)


def test_judge_pairs_masks_failures_and_samples_labels():
    from judges import Failure

    class Fake:
        fingerprint = "fake"

        def judge(self, comparisons):
            return [0.8, Failure("unparseable"), 0.3, 1.0][: len(comparisons)]

    args = (["p"] * 4, ["a"] * 4, ["b"] * 4)
    pref, ok, asked = C.judge_pairs(Fake(), *args, labels="soft", gen=torch.Generator().manual_seed(0))
    assert ok.tolist() == [True, False, True, True] and asked == 4
    assert pref[ok].tolist() == pytest.approx([0.8, 0.3, 1.0])
    draws = torch.stack([C.judge_pairs(Fake(), *args, labels="sample", gen=torch.Generator().manual_seed(s))[0]
                         for s in range(400)])
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    assert draws[:, 0].mean().item() == pytest.approx(0.8, abs=0.07)
    assert draws[:, 3].mean().item() == 1.0


@pytest.mark.parametrize("algorithm", ["nash-mp", "nash-md", "online-dpo", "online-ipo", "self-play", "rlhf"])
def test_first_steps_raise_the_preference_against_the_reference(world, tmp_path, algorithm):
    """A few steps from π_ref must move mass towards the classes that beat π_ref: the exact
    advantage G(π_θ) = Σ_x ρ_x Σ_c π_θ(c|x) (P(c ≻ π_ref | x) − ½), 0 at π_ref, becomes clearly
    positive. Swapping the two samples against their judgment (or the winner) makes it ≤ 0."""
    # η = 1 (a weak anchor to the target): three steps show the direction clearly; with the
    # default η = 2β the target holds the policy back and the move is about 8x smaller.
    options = {"nash-mp": nash_mp.Options(eta=1.0), **RLOO3}.get(algorithm)
    config = cfg(world, tmp_path / algorithm, steps=3, batch_size=8, max_new_tokens=2, eval_every=0, lr=3e-3,
                 options=options)
    out = train(algorithm, config)
    nash = json.loads((world / "nash.json").read_text())
    P, pi_ref, weights = np.array(nash["P"]), np.array(nash["pi_ref"]), np.array(nash["weights"])
    adv = np.einsum("xab,xb->xa", P, pi_ref) - 0.5                               # (X, Y)
    trained = C.load_policy(cfg(world, tmp_path / "unused", policy=str(out)))
    known = C.load_known_nash(config, trained.tokenizer)
    pi = C.class_distribution(trained.model, trained, known.contexts, known.token_class, 4).numpy()
    assert float(weights @ (pi_ref * adv).sum(1)) == pytest.approx(0.0, abs=1e-12)
    assert float(weights @ (pi * adv).sum(1)) > 0.02      # about 0.045 here; ≤ 0 with the samples swapped


def test_nash_mp_target_is_the_ema_of_the_policy_and_the_kl_terms_are_wired(world, tmp_path, monkeypatch):
    """θ_target ← κ_k θ + (1 − κ_k) θ_target after each step with κ_k = 10/(k + 10) (k = 0, 1, ...);
    κ_0 = 1 makes the target θ_1, so at step 2 the KL to the target is 0 while the KL to π_ref is not."""
    calls = []
    real = C.ema_           # nash_mp.train imports it from common when it starts

    def spy(target, policy, kappa):
        before = {k: v.clone() for k, v in target.items()}
        theta = policy.copy_trainable()
        real(target, policy, kappa)
        calls.append((kappa, before, theta, {k: v.clone() for k, v in target.items()}))

    monkeypatch.setattr(C, "ema_", spy)
    out = train("nash-mp", cfg(world, tmp_path / "ema", options=nash_mp.Options(kappa="harmonic:10"), lr=1e-2))
    assert [c[0] for c in calls] == pytest.approx([1.0, 10 / 11, 10 / 12])
    for kappa, before, theta, after in calls:
        assert before.keys() == theta.keys() == after.keys()
        assert all(torch.allclose(after[k], kappa * theta[k] + (1 - kappa) * before[k], atol=1e-7) for k in theta)
    assert any(not torch.equal(calls[2][1][k], calls[2][2][k]) for k in calls[2][2])   # target ≠ θ before step 3
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["kappa"] for r in rows] == pytest.approx([1.0, 10 / 11, 10 / 12])
    assert abs(rows[1]["kl_target"]) < 1e-6 < rows[1]["kl_ref"]
    assert rows[2]["kl_ref"] > rows[2]["kl_target"] > 1e-6


def test_nash_md_plays_the_scheduled_mixture_with_the_reference(world, tmp_path, monkeypatch):
    """The opponent is sampled from π_θ^{1−m_k} π_ref^{m_k} with m_k from --mixture (harmonic:2:
    1, 2/3) and the reference view is the SFT model; m = 1 samples exactly the reference."""
    from arena.loading import load_causal_lm

    sft, _ = load_causal_lm(world / "ckpts" / "sft")
    calls = []
    real = C.generate

    def spy(model, ids, mask, *, ref=None, m=0.0, **kw):
        gen = real(model, ids, mask, ref=ref, m=m, **kw)
        if ref is not None:
            with torch.no_grad():
                same = torch.allclose(ref(input_ids=ids, attention_mask=mask).logits,
                                      sft(input_ids=ids, attention_mask=mask).logits, atol=1e-5)
            plain = real(ref, ids, mask, **kw) if m == 1.0 else None
            calls.append((m, same, plain is None or torch.equal(plain.tokens, gen.tokens)))
        return gen

    monkeypatch.setattr(C, "generate", spy)
    train("nash-md", cfg(world, tmp_path / "md", options=nash_md.Options(mixture="harmonic:2"), steps=2, eval_every=0))
    assert [c[0] for c in calls] == pytest.approx([1.0, 2 / 3])
    assert all(same and plain for _, same, plain in calls)


def test_failed_judgments_are_skipped_not_counted_as_ties(world, tmp_path, monkeypatch):
    """Failures are masked out of the loss (only judged pairs reach it, with their own P) and
    counted; a step whose judgments all fail makes no update."""
    import judges
    from judges import Failure

    class HalfFailing:
        fingerprint = "half-failing"

        def __init__(self, fail_all=False):
            self.fail_all = fail_all
            self.answers = []

        def judge(self, comparisons):
            out = [Failure("unparseable") if self.fail_all or i % 2 else judge(c.prompt, c.response_a, c.response_b)
                   for i, c in enumerate(comparisons)]
            self.answers.append(out)
            return out

    fake = HalfFailing()
    monkeypatch.setattr(judges, "load_judge", lambda spec: fake)
    seen = []
    import trainers.losses as losses

    real = losses.nash_mp_loss       # nash_mp imports it from trainers.losses when a micro-batch starts
    monkeypatch.setattr(losses, "nash_mp_loss", lambda logp, logp_prime, pref, *a, **k:
                        seen.append((logp.shape[0], pref.tolist())) or real(logp, logp_prime, pref, *a, **k))
    out = train("nash-mp", cfg(world, tmp_path / "half", steps=2, eval_every=0))
    assert [n for n, _ in seen] == [2, 2]
    assert [p for _, p in seen] == [pytest.approx([float(a) for a in ans if not isinstance(a, Failure)])
                                    for ans in fake.answers]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["judge_queries"], r["judge_failures"]) for r in rows] == [(4, 2), (8, 4)]

    monkeypatch.setattr(judges, "load_judge", lambda spec: HalfFailing(fail_all=True))
    from safetensors.torch import load_file
    b = load_file(world / "ckpts" / "sft" / "model.safetensors")
    for algorithm, per_step in (("nash-md", 4), ("rlhf", 12)):
        out = train(algorithm, cfg(world, tmp_path / algorithm, steps=2, eval_every=0, options=RLOO3.get(algorithm)))
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        assert [(r["judge_failures"], "loss" in r) for r in rows] == [(per_step, False), (2 * per_step, False)]
        a = load_file(out / "model.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in b)


def test_full_fine_tuning_reference_and_target_views(world):
    """Without LoRA the reference is the initial weights and a target view is its own copy of
    the trainable tensors (tied embeddings included), whatever the live weights are."""
    policy = C.load_policy(cfg(world, world / "unused"))
    ids, mask = C.encode(policy.tokenizer, ["lowrank 0 4x4 r2 s3 context 1"])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        start = policy.model(input_ids=ids, attention_mask=mask).logits
        for p in policy.model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
        moved = policy.model(input_ids=ids, attention_mask=mask).logits
        snapshot = policy.copy_trainable()
        for p in policy.model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
        assert not torch.allclose(moved, start, atol=1e-2)
        assert torch.allclose(policy.reference()(input_ids=ids, attention_mask=mask).logits, start, atol=1e-6)
        assert torch.allclose(policy.view(snapshot)(input_ids=ids, attention_mask=mask).logits, moved, atol=1e-6)


# ---------------------------------------------------------------------------- defaults from the theory

def test_eta_defaults_to_two_beta_and_an_explicit_eta_is_kept():
    base = dict(policy="p", judge="j", prompts="x", out="o", options=nash_mp.Options())
    eta = lambda **kw: nash_mp.Options(**kw)
    assert TrainConfig(**base, beta=0.03).options.eta == pytest.approx(0.06)
    assert TrainConfig(**base).options.eta == pytest.approx(0.2)           # default β = 0.1
    assert TrainConfig(**{**base, "options": eta(eta=0.01)}, beta=0.03).options.eta == 0.01
    saved = TrainConfig(**base, beta=0.03).to_json()                        # resume compares the resolved η
    assert saved["eta"] == pytest.approx(0.06)
    assert TrainConfig.from_json(saved, nash_mp.Options).options.eta == pytest.approx(0.06)
    assert C.eta_warning(TrainConfig(**base, beta=0.03)) is None
    assert C.eta_warning(TrainConfig(**{**base, "options": eta(eta=0.05)}, beta=0.03)) is None
    message = C.eta_warning(TrainConfig(**{**base, "options": eta(eta=1.0)}, beta=0.01))
    assert "2*beta" in message and "0.01" in message                # says why: β/η = 0.01 < ½


def test_nash_mp_warns_when_eta_is_above_two_beta(world, tmp_path):
    with pytest.warns(UserWarning, match="eta <= 2\\*beta"):
        train("nash-mp", cfg(world, tmp_path / "big-eta", steps=1, beta=0.01, options=nash_mp.Options(eta=1.0)))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")                               # the default η warns nothing
        train("nash-mp", cfg(world, tmp_path / "default-eta", steps=1, beta=0.01))


def test_cli_prints_the_eta_warning_as_one_line(world, tmp_path, capsys):
    from arena.cli import main

    rc = main(["train", "nash-mp", "--policy", str(world / "ckpts" / "sft"), "--judge", JUDGE_SPEC,
               "--prompts", str(world / "prompts.jsonl"), "--out", str(tmp_path / "cli"), "--steps", "1",
               "--batch-size", "2", "--max-new-tokens", "4", "--beta", "0.01", "--eta", "1", "--json"])
    err = capsys.readouterr().err
    assert rc == 0
    lines = [ln for ln in err.splitlines() if "eta" in ln]
    assert lines and lines[0].startswith("warning: --eta 1 is above 2·beta") and "Traceback" not in err
    card = json.loads((tmp_path / "cli" / "arena_card.json").read_text())
    assert card["config"]["eta"] == 1.0


def test_nash_mp_with_four_samples_per_prompt_judges_every_pair(world, tmp_path):
    out = train("nash-mp", cfg(world, tmp_path / "k4", steps=2, batch_size=2, options=nash_mp.Options(samples_per_prompt=4)))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["judge_queries"] for r in rows] == [12, 24]           # 2 prompts × 6 pairs per step
    assert np.isfinite(rows[-1]["loss"]) and rows[-1]["kl_target"] >= 0
    with pytest.raises(ConfigError, match="samples-per-prompt"):
        nash_mp.Options(samples_per_prompt=1)


def test_save_every_writes_checkpoints_the_tournament_scores(world, tmp_path, capsys):
    from arena.checkpoints import discover_checkpoints
    from arena.cli import main
    from arena.loading import load_causal_lm

    out = train("nash-mp", cfg(world, tmp_path / "ckpts" / "nmp", steps=3, save_every=1))
    found = discover_checkpoints(out)
    assert [c.name for c in found.checkpoints] == ["checkpoint-1", "checkpoint-2"]
    card = json.loads((out / "checkpoint-2" / "arena_card.json").read_text())
    assert card["steps_done"] == 2 and card["judge_queries"] == 8 and card["config"]["eta"] == pytest.approx(0.2)
    one, _ = load_causal_lm(out / "checkpoint-1")
    two, _ = load_causal_lm(out / "checkpoint-2")
    assert any(not torch.equal(a, b) for a, b in zip(one.parameters(), two.parameters()))
    readme = (out / "README.md").read_text()
    assert "| β (KL to π_ref) | 0.1 |" in readme and "| η (step; KL to target weighs β/η) | 0.2 |" in readme
    assert "steps_done | 3" in readme and "from_pretrained(PATH)" in readme and JUDGE_SPEC in readme
    rc = main(["tournament", str(out), "--prompts", str(world / "prompts.jsonl"), "--judge", JUDGE_SPEC,
               "--out", str(tmp_path / "run"), "--samples", "1", "--max-new-tokens", "4", "--json"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert sorted(result["models"]) == ["checkpoint-1", "checkpoint-2"]


def test_report_to_tensorboard_writes_a_readable_event_file(world, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = train("nash-mp", cfg(world, tmp_path / "tb", steps=3, report_to="tensorboard"))
    events = list((out / "runs" / "nash-mp").glob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    loss = acc.Scalars("loss")
    assert [e.step for e in loss] == [1, 2, 3]
    assert [e.value for e in loss] == pytest.approx([r["loss"] for r in rows], rel=1e-5)
    assert [e.step for e in acc.Scalars("kl_to_nash")] == [1, 2, 3]
    with pytest.raises(ConfigError, match="report-to"):
        cfg(world, tmp_path / "x", report_to="wandb")


def test_config_file_sets_options_and_flags_override_it(world, tmp_path, capsys):
    from arena.cli import main

    (tmp_path / "train.yaml").write_text("steps: 3\nbatch-size: 2\nbeta: 0.05\nmax_new_tokens: 4\nsave-every: 0\n")
    base = ["train", "nash-mp", "--policy", str(world / "ckpts" / "sft"), "--judge", JUDGE_SPEC,
            "--prompts", str(world / "prompts.jsonl"), "--config", str(tmp_path / "train.yaml"), "--json"]
    assert main([*base, "--out", str(tmp_path / "a"), "--steps", "1"]) == 0
    config = json.loads((tmp_path / "a" / "arena_card.json").read_text())["config"]
    assert (config["steps"], config["batch_size"], config["beta"], config["max_new_tokens"]) == (1, 2, 0.05, 4)
    assert config["eta"] == pytest.approx(0.1)                      # 2β of the file's β
    capsys.readouterr()
    (tmp_path / "bad.yaml").write_text("stepz: 3\n")
    rc = main([*base[:-3], "--config", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown option 'stepz'" in err and "batch-size" in err
    assert not (tmp_path / "b").exists()


def test_metrics_log_each_steps_learning_rate_and_the_warm_up_starts_at_zero(world, tmp_path):
    config = cfg(world, tmp_path / "cos", steps=5, lr_schedule="cosine", warmup_steps=2, eval_every=0)
    out = train("nash-mp", config)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in rows] == pytest.approx([C.learning_rate(config, k) for k in range(5)])
    assert rows[0]["lr"] == 0.0 and rows[2]["lr"] == pytest.approx(config.lr) and rows[4]["lr"] < rows[3]["lr"]


def test_a_retrained_checkpoint_keeps_its_key_and_pruning_checkpoints_keeps_it_too(world, tmp_path):
    """Same seed, same bytes of model: the same fingerprint (so a tournament reuses its work and a
    rerun prints the same figures), although the cards' times, the paths and metrics differ."""
    from arena.fingerprint import fingerprint_path

    one = train("nash-mp", cfg(world, tmp_path / "one", steps=2, save_every=1))
    two = train("nash-mp", cfg(world, tmp_path / "two", steps=2, save_every=1))
    assert (one / "arena_card.json").read_text() != (two / "arena_card.json").read_text()   # out differs
    assert (one / "model.safetensors").read_bytes() == (two / "model.safetensors").read_bytes()
    key = fingerprint_path(one)
    assert key == fingerprint_path(two) != fingerprint_path(world / "ckpts" / "sft")
    assert fingerprint_path(one / "checkpoint-1") not in (key, fingerprint_path(world / "ckpts" / "sft"))
    import shutil
    shutil.rmtree(one / "checkpoint-1")
    assert fingerprint_path(one) == key
