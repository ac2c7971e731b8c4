"""LM trainers on a tiny lowrank world: outputs, metrics, resume, LoRA views, exact class distribution."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from arena.errors import ConfigError, InputError
from arena.worlds.lowrank import JUDGE_SPEC, LowrankWorld, build_lowrank_world, judge, parse_prompt
from trainers.lm import TrainConfig, train
from trainers.lm import common as C


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_lowrank_world(tmp_path_factory.mktemp("w") / "lowrank", LowrankWorld(n_contexts=4, n_actions=4, sft_steps=40))


def cfg(world, out, **kw):
    base = dict(policy=str(world / "ckpts" / "sft"), judge=JUDGE_SPEC, prompts=str(world / "prompts.jsonl"),
                out=str(out), steps=3, batch_size=4, max_new_tokens=4, eval_every=2, eval_batch=4, save_every=0)
    return TrainConfig(**{**base, **kw})


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


@pytest.mark.parametrize("algorithm", ["nash-md", "online-dpo", "online-ipo", "self-play", "rlhf"])
def test_other_algorithms_run(world, tmp_path, algorithm):
    out = train(algorithm, cfg(world, tmp_path / algorithm, steps=2, batch_size=2, rloo_k=3))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    per_step = {"rlhf": 2 * 3}.get(algorithm, 2)
    assert rows[-1]["judge_queries"] == 2 * per_step
    assert np.isfinite(rows[-1]["loss"]) and "kl_to_nash" in rows[-1]


def test_resume_gives_the_uninterrupted_result(world, tmp_path):
    full = train("nash-mp", cfg(world, tmp_path / "full", steps=4))

    class Stop(Exception):
        pass

    def stop_at_3(step, row):
        if step == 3:
            raise Stop

    config = cfg(world, tmp_path / "cut", steps=4, save_every=2)
    with pytest.raises(Stop):
        train("nash-mp", config, progress=stop_at_3)
    assert not (tmp_path / "cut").exists() and (tmp_path / ".cut.partial" / ".resume" / "state.pt").is_file()
    with pytest.raises(ConfigError, match="different config"):
        train("nash-mp", cfg(world, tmp_path / "cut", steps=4, save_every=2, lr=0.5))
    seen = []
    resumed = train("nash-mp", config, progress=lambda s, r: seen.append(s))
    assert seen == [3, 4]
    from safetensors.torch import load_file
    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    rows = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and rows[-1]["judge_queries"] == 16


def test_lora_reference_is_the_base_and_target_holds_adapters_only(world, tmp_path):
    config = cfg(world, tmp_path / "lora", lora=True, steps=2)
    policy = C.load_policy(config)
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
        assert not torch.allclose(policy.model(input_ids=ids, attention_mask=mask).logits, want, atol=1e-3)
    out = train("nash-mp", config)
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()


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
        cfg(world, tmp_path / "x", kappa="1.5")
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
    pref, ok = C.judge_pairs(Fake(), *args, labels="soft", gen=torch.Generator().manual_seed(0))
    assert ok.tolist() == [True, False, True, True]
    assert pref[ok].tolist() == pytest.approx([0.8, 0.3, 1.0])
    draws = torch.stack([C.judge_pairs(Fake(), *args, labels="sample", gen=torch.Generator().manual_seed(s))[0]
                         for s in range(400)])
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    assert draws[:, 0].mean().item() == pytest.approx(0.8, abs=0.07)
    assert draws[:, 3].mean().item() == 1.0
