"""The vllm judge against the hf judge on the same checkpoint: bounded |Δp| in bf16, tight in fp32."""

import json

from vllm_helpers import QUERY, arena_cli

from judges import judge_both_orders, load_judge


def _hf(judge_lm_dir, comparisons):
    """P(first shown wins) in both orders: [p_ab..., p_ba...] (the combined p hides a position bias)."""
    verdicts = judge_both_orders(load_judge(f"hf:{judge_lm_dir}", dtype="float32"), comparisons)
    return [v.p_ab for v in verdicts] + [v.p_ba for v in verdicts]


def _vllm_cli(judge_lm_dir, comparisons, tmp_path, dtype):
    """`arena judge --judge vllm:...?dtype=DTYPE --json` in a fresh process: [p_ab..., p_ba...], label mass."""
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": c.prompt, "response_a": c.response_a,
                                         "response_b": c.response_b}) + "\n" for c in comparisons))
    run = arena_cli("judge", pairs, "--judge", f"vllm:{judge_lm_dir}?dtype={dtype}&{QUERY}", "--json")
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("\n") == 1  # one JSON object; vLLM's logs are on stderr
    out = json.loads(run.stdout)
    return [row["p_ab"] for row in out["rows"]] + [row["p_ba"] for row in out["rows"]], out["judge"]


def test_vllm_judge_cli_matches_hf_in_fp32(judge_lm_dir, comparisons, tmp_path):
    got, _ = _vllm_cli(judge_lm_dir, comparisons, tmp_path, "float32")
    want = _hf(judge_lm_dir, comparisons)
    assert max(abs(a - b) for a, b in zip(got, want)) < 1e-4
    n = len(comparisons)
    assert max(want[:n]) - min(want[:n]) > 0.1  # the comparisons are told apart: a swapped label would show


def test_vllm_judge_in_bf16_stays_close_to_hf(judge_lm_dir, comparisons, tmp_path):
    got, info = _vllm_cli(judge_lm_dir, comparisons, tmp_path, "bfloat16")
    want = _hf(judge_lm_dir, comparisons)
    assert max(abs(a - b) for a, b in zip(got, want)) < 0.05
    assert all((a - 0.5) * (b - 0.5) > 0 for a, b in zip(got, want) if abs(b - 0.5) > 0.05)  # same verdicts
    assert info["label_mass_min"] > 0
