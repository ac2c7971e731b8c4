"""Nash-MP `--explore M`: M responses per prompt at a temperature, judged against the K samples,
their log-probabilities regressed onto the Mirror Prox target."""

import json

import pytest
import torch
from safetensors.torch import load_file

from arena.errors import ConfigError
from arena.worlds.lowrank import JUDGE_SPEC
from tests.trainers.lm.test_judge_cache import _rows, cfg, world  # noqa: F401  (world: the fixture)
from trainers.lm import nash_mp, train


@pytest.mark.parametrize("K", [2, 3])
def test_explorers_are_judged_against_every_sample_and_enter_the_loss(world, tmp_path, K):
    plain = train("nash-mp", cfg(world, tmp_path / "plain", steps=3, options=nash_mp.Options(samples_per_prompt=K)))
    out = train("nash-mp", cfg(world, tmp_path / "x", steps=3, options=nash_mp.Options(
        samples_per_prompt=K, explore=2, explore_temperature=1.5)))
    rows, base = _rows(out), _rows(plain)
    # per step and prompt: K(K−1)/2 pairs among the samples, and each of 2 explorers against the K samples
    assert rows[-1]["judge_queries"] == 3 * 4 * (K * (K - 1) // 2 + 2 * K)
    assert base[-1]["judge_queries"] == 3 * 4 * (K * (K - 1) // 2)
    assert all(r["explore_loss"] >= 0 and 0 <= r["explore_pref"] <= 1 and r["explore_tokens"] > 0 for r in rows)
    assert "explore_loss" not in base[-1]
    # the first step's samples and their judgments are the plain run's; the explorers change the update
    assert rows[0]["pref_mean"] == pytest.approx(base[0]["pref_mean"], abs=1e-9)
    assert rows[0]["kl_ref"] == pytest.approx(base[0]["kl_ref"], abs=1e-9)
    a, b = load_file(plain / "model.safetensors"), load_file(out / "model.safetensors")
    assert any(not torch.allclose(a[k], b[k]) for k in a)
    card = json.loads((out / "arena_card.json").read_text())["config"]
    assert card["explore"] == 2 and card["explore_temperature"] == 1.5


def test_a_failed_explorer_judgment_drops_its_prompt_and_is_counted(world, tmp_path, monkeypatch):
    """One call per micro-batch judges the K(K−1)/2·B pairs, then the M·K·B explorer comparisons:
    a failure among the latter takes its prompt out of the loss (never a tie) and is counted."""
    import judges
    import trainers.losses as losses
    from arena.worlds.lowrank import judge
    from judges import Failure

    class FirstExplorerFails:
        fingerprint = "first-explorer-fails"

        def judge(self, comparisons):   # K = 2, B = 4: comparison 4 is explorer 0 against sample 0 of prompt 0
            return [Failure("unparseable") if i == 4 else judge(c.prompt, c.response_a, c.response_b)
                    for i, c in enumerate(comparisons)]

    monkeypatch.setattr(judges, "load_judge", lambda spec: FirstExplorerFails())
    rows_seen, real = [], losses.explore_regression_loss
    monkeypatch.setattr(losses, "explore_regression_loss",
                        lambda logp, t, **k: rows_seen.append(logp.shape) or real(logp, t, **k))
    out = train("nash-mp", cfg(world, tmp_path / "x", steps=2, options=nash_mp.Options(explore=2)))
    assert rows_seen == [(3, 4), (3, 4)]                      # 3 of 4 prompts, K + M = 4 responses each
    rows = _rows(out)
    assert [(r["judge_queries"], r["judge_failures"]) for r in rows] == [(20, 1), (40, 2)]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)


@pytest.mark.parametrize("first", ["policy", "reference-top", "reference-top, hot second token, one opponent"])
def test_explore_resumes_to_the_uninterrupted_weights(world, tmp_path, first):
    from tests.trainers.lm.test_lm_trainers import _Stop, _stop_at

    opts = nash_mp.Options(explore=2, explore_first=first) if "," not in first else \
        nash_mp.Options(explore=2, explore_first="reference-top", explore_second_temperature=2.0, explore_opponents=1)
    full = train("nash-mp", cfg(world, tmp_path / "full", steps=4, options=opts))
    with pytest.raises(_Stop):
        train("nash-mp", cfg(world, tmp_path / "cut", steps=4, save_every=2, options=opts), progress=_stop_at(3))
    resumed = train("nash-mp", cfg(world, tmp_path / "cut", steps=4, save_every=2, options=opts), resume=True)
    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


@pytest.mark.parametrize("pool", [2, 5])
def test_reference_top_explorers_start_with_distinct_openings_of_the_reference(world, tmp_path, monkeypatch, pool):
    """`--explore-first reference-top`: each prompt's M = 4 explorers start with 2 distinct tokens
    drawn from π_ref's `pool` likeliest first tokens (both when pool = 2), two explorers each;
    π_θ continues."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import trainers.lm.common as C
    from arena.lm import banned_ids

    seen, real = [], C.sample

    def sample(model, policy, ids, mask, u, first=None, **k):
        gen = real(model, policy, ids, mask, u, first=first, **k)
        if first is not None:
            seen.append((first, gen, ids[:4], mask[:4]))
        return gen

    monkeypatch.setattr(C, "sample", sample)
    out = train("nash-mp", cfg(world, tmp_path / "x", steps=3, options=nash_mp.Options(
        explore=4, explore_first="reference-top", explore_first_pool=pool, explore_temperature=1.0)))
    assert len(seen) == 3 and json.loads((out / "arena_card.json").read_text())["config"]["explore_first_pool"] == pool
    assert all(r["explore_loss"] > 0 and torch.isfinite(torch.tensor(r["loss"])) for r in _rows(out))
    sft = world / "ckpts" / "sft"
    tok, ref = AutoTokenizer.from_pretrained(sft), AutoModelForCausalLM.from_pretrained(sft)
    openings = {}                                                            # prompt ids -> the pairs drawn
    for first, gen, ids, mask in seen:                                       # the explorers' rows, copy-major
        assert gen.tokens[:, 0].tolist() == first.tolist() and bool(gen.mask[:, 0].all())
        with torch.no_grad():
            logits = ref(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits[:, -1]
        logits[:, list(banned_ids(tok))] = -float("inf")
        top = torch.topk(logits, pool, dim=-1).indices
        by_prompt = first.view(4, 4).T.tolist()                                # copy-major rows
        for b in range(4):
            a, _, c, _ = by_prompt[b]
            assert by_prompt[b] == [a, a, c, c] and a != c and {a, c} <= set(top[b].tolist())
            openings.setdefault(tuple(ids[b].tolist()), set()).add(frozenset((a, c)))
            if pool == 2:
                assert {a, c} == set(top[b].tolist())                        # the top two, every time
    if pool == 5:
        assert any(len(pairs) > 1 for pairs in openings.values())             # drawn: not always the same two


def test_bad_values_and_other_algorithms_are_refused(world, tmp_path, capsys):
    from arena.cli import main

    with pytest.raises(ConfigError, match="--explore must be >= 0"):
        nash_mp.Options(explore=-1)
    with pytest.raises(ConfigError, match="--explore-temperature must be > 0"):
        nash_mp.Options(explore_temperature=0)
    with pytest.raises(ConfigError, match="--explore-first must be one of policy, reference-top"):
        nash_mp.Options(explore=2, explore_first="reference")
    with pytest.raises(ConfigError, match="--explore-first-pool must be at least ⌈--explore / 2⌉ = 3"):
        nash_mp.Options(explore=5, explore_first="reference-top", explore_first_pool=2)
    with pytest.raises(ConfigError, match="--explore-second-temperature must be > 0; got 0"):
        nash_mp.Options(explore=2, explore_second_temperature=0)
    with pytest.raises(ConfigError, match="--explore-floor must be > 0 \\(nats below π_ref\\); got 0"):
        nash_mp.Options(explore=2, explore_first="reference-top", explore_floor=0)
    with pytest.raises(ConfigError, match="--explore-floor acts on the openings' regression of --explore-first "
                                          "reference-top; add --explore-first reference-top or drop --explore-floor"):
        nash_mp.Options(explore=2, explore_floor=5)
    for bad in (0, 7):
        with pytest.raises(ConfigError,
                           match=f"--explore-opponents must be between 1 and --samples-per-prompt = 6; got {bad}"):
            nash_mp.Options(explore=2, samples_per_prompt=6, explore_opponents=bad)
    args = ["--policy", str(world / "ckpts" / "sft"), "--judge", JUDGE_SPEC, "--prompts", str(world / "prompts.jsonl"),
            "--out", str(tmp_path / "o"), "--steps", "1", "--batch-size", "2", "--max-new-tokens", "4", "--eval-every", "0"]
    assert main(["train", "online-dpo", *args, "--explore", "2"]) == 2
    assert "--explore is an option of nash-mp, not of online-dpo" in capsys.readouterr().err
    assert main(["train", "nash-mp", *args, "--explore", "1", "--explore-temperature", "1.5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["judge_queries"] == 2 * (1 + 2)


def test_a_pool_larger_than_the_vocabulary_is_refused_before_anything_is_written(world, tmp_path, capsys):
    from arena.cli import main

    out = tmp_path / "o"
    args = ["--policy", str(world / "ckpts" / "sft"), "--judge", JUDGE_SPEC, "--prompts", str(world / "prompts.jsonl"),
            "--out", str(out), "--steps", "1", "--batch-size", "2", "--max-new-tokens", "4", "--eval-every", "0",
            "--explore", "2", "--explore-first", "reference-top", "--explore-first-pool", "100000"]
    assert main(["train", "nash-mp", *args]) == 2
    assert "--explore-first-pool 100000 is larger than the" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("J", [1, 2])
def test_each_explorer_is_judged_against_its_J_opponents(world, tmp_path, monkeypatch, J):
    """`--explore-opponents J`: explorer m is judged against samples m, m+1, …, m+J−1 (mod K) only,
    and its score is the mean of those J judgments."""
    import judges
    import trainers.lm.common as C
    import trainers.lm.nash_mp as mp
    from arena.worlds.lowrank import judge

    K, M, B = 3, 4, 4
    calls = []

    class Recording:
        fingerprint = "recording"

        def judge(self, comparisons):
            calls.append([(c.prompt, c.response_a, c.response_b) for c in comparisons])
            return [judge(c.prompt, c.response_a, c.response_b) for c in comparisons]

    monkeypatch.setattr(judges, "load_judge", lambda spec: Recording())
    scores, real = [], mp._factored_regression
    monkeypatch.setattr(mp, "_factored_regression",
                        lambda run, t, sp, on, x, *a: scores.append(x[3]) or real(run, t, sp, on, x, *a))
    samples, explorers, real_sample = [], [], C.sample

    def sample(model, policy, ids, mask, u, first=None, **k):
        gen = real_sample(model, policy, ids, mask, u, first=first, **k)
        (explorers if first is not None else samples).append(C.decode(policy.tokenizer, gen, policy.stop))
        return gen

    monkeypatch.setattr(C, "sample", sample)
    monkeypatch.setattr(C.HFSampler, "sample",
                        lambda self, policy, ids, mask, u: sample(policy.model, policy, ids, mask, u))
    out = train("nash-mp", cfg(world, tmp_path / "x", steps=2, options=nash_mp.Options(
        samples_per_prompt=K, explore=M, explore_first="reference-top", explore_opponents=J)))
    assert [r["judge_queries"] for r in _rows(out)] == [B * (K * (K - 1) // 2 + M * J) * s for s in (1, 2)]
    for call, texts, texts_x, score in zip(calls, samples, explorers, scores):
        asked = call[B * K * (K - 1) // 2:]                                   # the explorers' comparisons
        want = [(texts_x[m * B + b], texts[(m + i) % K * B + b]) for m in range(M) for i in range(J) for b in range(B)]
        assert [(a, b) for _, a, b in asked] == want
        pref = torch.tensor([judge(*c) for c in asked]).view(M, J, B).mean(1).T   # (B, M)
        assert torch.allclose(score, pref.to(score.dtype))


def test_a_hotter_second_token_is_drawn_and_weighted_at_its_temperature(world, tmp_path, monkeypatch):
    """`--explore-second-temperature`: the explorers are sampled at (τ, τ2, τ) and the openings'
    importance weights use the same tempered proposal (`tempered_logprobs`, which the sampler test
    in tests/arena/test_lm.py checks against the draws); equal to τ it is the plain temperature."""
    import trainers.lm.common as C

    drawn, weighted = [], []
    real_sample, real_tempered = C.sample, C.tempered_logprobs

    def sample(*a, first=None, temperature=1.0, **k):
        if first is not None:
            drawn.append(temperature)
        return real_sample(*a, first=first, temperature=temperature, **k)

    monkeypatch.setattr(C, "sample", sample)
    monkeypatch.setattr(C, "tempered_logprobs", lambda lp, t: weighted.append(t) or real_tempered(lp, t))
    for second, want in ((2.5, (1.5, 2.5, 1.5)), (1.5, 1.5)):
        drawn.clear(), weighted.clear()
        train("nash-mp", cfg(world, tmp_path / f"x{second}", steps=2, options=nash_mp.Options(
            explore=2, explore_first="reference-top", explore_temperature=1.5, explore_second_temperature=second)))
        assert drawn == [want, want] and weighted == [want, want]


def test_a_run_interrupted_before_an_option_existed_resumes_with_its_default(world, tmp_path):
    """A resume state written before `--explore-opponents` and `--explore-second-temperature`
    (or a shared field such as `--warmup-steps`) existed holds no key for them: the run had their
    defaults, so it resumes; given another value it is refused, naming the option."""
    from tests.trainers.lm.test_lm_trainers import _Stop, _stop_at

    opts = nash_mp.Options(explore=2, explore_first="reference-top")
    full = train("nash-mp", cfg(world, tmp_path / "full", steps=4, options=opts))
    with pytest.raises(_Stop):
        train("nash-mp", cfg(world, tmp_path / "cut", steps=4, save_every=2, options=opts), progress=_stop_at(3))
    path = tmp_path / ".cut.partial" / ".resume" / "state.pt"
    state = torch.load(path, weights_only=True)
    older = json.loads(state["config"])
    del older["explore_opponents"], older["explore_second_temperature"], older["warmup_steps"]
    state["config"] = json.dumps(older, sort_keys=True)
    torch.save(state, path)
    other = nash_mp.Options(explore=2, explore_first="reference-top", explore_opponents=1)
    with pytest.raises(ConfigError, match="different config \\(explore_opponents None → 1\\)"):
        train("nash-mp", cfg(world, tmp_path / "cut", steps=4, save_every=2, options=other), resume=True)
    resumed = train("nash-mp", cfg(world, tmp_path / "cut", steps=4, save_every=2, options=opts), resume=True)
    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_the_explore_floor_reaches_the_openings_regression_as_log_pi_ref_less_C(world, tmp_path, monkeypatch):
    """`--explore-floor C`: every opening's floor is log π_ref(opening) − C; at the first step the
    policy is the reference, so each floor is its opening's log-probability less C. Without the
    flag no floor is passed (the measured runs are unchanged)."""
    import trainers.losses as losses

    seen, real = [], losses.opening_regression_loss
    monkeypatch.setattr(losses, "opening_regression_loss",
                        lambda logp, w, g, floor=None, **k: seen.append((logp.detach(), floor)) or real(logp, w, g,
                                                                                                         floor=floor, **k))
    opts = nash_mp.Options(explore=2, explore_first="reference-top", explore_floor=4.5)
    out = train("nash-mp", cfg(world, tmp_path / "x", steps=2, options=opts))
    (logp, floor), later = seen[0], seen[1]
    assert floor.shape == logp.shape and torch.allclose(floor, logp - 4.5, atol=1e-5)
    assert not torch.allclose(later[1], later[0] - 4.5, atol=1e-5)            # the floor stays π_ref's
    assert json.loads((out / "arena_card.json").read_text())["config"]["explore_floor"] == 4.5
    seen.clear()
    train("nash-mp", cfg(world, tmp_path / "y", steps=1, options=nash_mp.Options(explore=2, explore_first="reference-top")))
    assert seen[0][1] is None
