"""--engine vllm on the raters world: one JSON object on stdout and the hf engine's verdict."""

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
    # The same verdict: the cycle between the three styles, no Condorcet winner, the Nash
    # mixture spread over the styles with nothing on the error-prone sft policy. (Other
    # triangles through sft may appear in one engine's samples and not the other's.)
    styles = {"terse", "sentence", "list"}
    for name, x in (("vllm", r), ("hf", h)):
        seen = f"{name}: triangles {x['cycles']['triangles']}, nash {x['nash']['weights']}"
        assert styles in [set(t) for t in x["cycles"]["triangles"]], seen
        assert x["cycles"]["condorcet_winner"] is None, seen
        w = x["nash"]["weights"]
        assert w["sft"] < 1e-6 and all(w[s] > 0.15 for s in styles), seen
