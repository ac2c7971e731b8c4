"""--engine vllm on the raters world: one JSON object on stdout and the hf engine's verdict (cycle, no winner, close matrix)."""

import json

from vllm_helpers import LLM_OPTIONS, arena_cli


def test_vllm_tournament_reaches_the_hf_verdict(tmp_path):
    from arena.worlds.raters import build_raters_world

    world = build_raters_world(tmp_path / "world", seed=0, n_prompts=32, steps=150)
    common = [world / "ckpts", "--rounds", "200", "--json"]
    hf = arena_cli("tournament", *common, "--out", tmp_path / "hf")
    assert hf.returncode == 0, hf.stderr[-3000:]
    options = [a for k, v in LLM_OPTIONS.items() for a in ("--engine-option", f"{k}={v}")]
    run = arena_cli("tournament", *common, "--out", tmp_path / "vllm", "--engine", "vllm", *options)
    assert run.returncode == 0, run.stderr[-3000:]
    # Exactly one JSON object on stdout: vLLM's hundreds of log lines went to stderr.
    assert run.stdout.count("\n") == 1 and "INFO" in run.stderr
    r, h = json.loads(run.stdout), json.loads(hf.stdout)
    assert r["run"]["failures"] == 0 and r["run"]["generations"] == 4 * 32
    # The same verdict: the cycle between the three styles and no Condorcet winner, from a
    # preference matrix within sampling noise of the hf engine's (32 prompts per pair; a wrong
    # prompt encoding or two swapped style checkpoints move entries by 0.25 or more). The Nash weights
    # themselves are not compared: over four checkpoints at 32 prompts they move with the
    # samples (a world built by this venv gave hf sft 0.5, terse 0 and vllm sft 0, terse 0.31,
    # with every matrix entry within 0.08).
    styles = {"terse", "sentence", "list"}
    for name, x in (("vllm", r), ("hf", h)):
        seen = f"{name}: triangles {x['cycles']['triangles']}, nash {x['nash']['weights']}"
        assert styles in [set(t) for t in x["cycles"]["triangles"]], seen
        assert x["cycles"]["condorcet_winner"] is None, seen
    assert r["preference"]["models"] == h["preference"]["models"]
    gap = max(abs(a - b) for ra, rb in zip(r["preference"]["P"], h["preference"]["P"]) for a, b in zip(ra, rb))
    assert gap < 0.2, (r["preference"]["P"], h["preference"]["P"])
