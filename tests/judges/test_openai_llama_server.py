"""The openai judge against a real llama.cpp server serving Gemma 3 270M (marker `server`).

Set up and start the server first (builds llama-cpp-python once, 8-9 minutes on 2 cores):

    scripts/setup_llama_server.sh            # install + start on 127.0.0.1:8765
    .venv/bin/python -m pytest tests/judges -m server -q
    scripts/setup_llama_server.sh stop

ARENA_LLAMA_URL (default http://127.0.0.1:8765/v1) and ARENA_LLAMA_MODEL (default
gemma-3-270m) point the tests at another server. Gemma 3 270M is a *base* model: these
tests check the protocol (logprobs, text verdicts, retries, both orders, the CLI) against
a real server, not the quality of its verdicts.
"""

import json
import os

import pytest

from judges import Comparison, Failure, judge_both_orders, load_judge, position_report

pytestmark = pytest.mark.server

URL = os.environ.get("ARENA_LLAMA_URL", "http://127.0.0.1:8765/v1")
MODEL = os.environ.get("ARENA_LLAMA_MODEL", "gemma-3-270m")
SPEC = f"openai:{URL}#{MODEL}"

PAIRS = [
    Comparison("What is the capital of France?", "Paris.", "The capital of France is Berlin."),
    Comparison("How many legs does a spider have?", "Eight.", "Six."),
    Comparison("Write a greeting.", "Hello! Nice to meet you.", "asdf qwer"),
]


@pytest.fixture(scope="module", autouse=True)
def server_running():
    import httpx

    try:
        httpx.get(URL + "/models", timeout=5).raise_for_status()
    except Exception as error:  # noqa: BLE001 - any failure means: no server
        pytest.fail(f"no llama.cpp server at {URL} ({error}); run scripts/setup_llama_server.sh first")


def test_completions_mode_logprob_verdicts():
    judge = load_judge(SPEC, mode="completions", max_concurrency=2, timeout=120)
    verdicts = judge_both_orders(judge, PAIRS)
    assert all(v.error is None and 0.0 <= v.p <= 1.0 for v in verdicts), verdicts
    d = judge.diagnostics()  # of the last call: both orders of every pair, in one batch
    assert d["from_logprobs"] == 2 * len(PAIRS) and d["from_text"] == 0
    assert 0.0 < d["label_mass_min"] <= 1.0
    report = position_report(verdicts)
    assert report["failures"] == 0 and 0.0 <= report["first_position_rate"] <= 1.0


def test_chat_mode_round_trip():
    judge = load_judge(SPEC, mode="chat", max_tokens=24, timeout=120)
    out = judge.judge(PAIRS)
    assert len(out) == len(PAIRS)
    for value, source in zip(out, judge.sources):
        assert isinstance(value, Failure) or 0.0 <= value <= 1.0
        assert source in ("logprobs", "text")


def test_text_verdicts_without_logprobs():
    judge = load_judge(SPEC, mode="completions", logprobs=False, max_tokens=4, timeout=120)
    out = judge.judge(PAIRS)
    # The prompt ends with "Verdict: [[", so a short completion like "A]]" parses.
    assert all(isinstance(v, Failure) or v in (0.0, 0.5, 1.0) for v in out)
    assert judge.sources == ["text"] * len(PAIRS)


def test_cli_against_server(tmp_path, capsys):
    from arena.cli import main

    f = tmp_path / "pairs.jsonl"
    f.write_text("".join(json.dumps({"prompt": c.prompt, "response_a": c.response_a, "response_b": c.response_b}) + "\n"
                         for c in PAIRS))
    assert main(["judge", str(f), "--judge", SPEC + "?mode=completions", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert len(obj["rows"]) == len(PAIRS) and all(r["error"] is None for r in obj["rows"])
    assert obj["judge"]["label_mass_mean"] > 0


def test_server_logprobs_agree_with_the_hf_judge_on_the_same_model():
    """Two implementations, one model: llama.cpp on the Q4_K_M GGUF vs transformers on its
    dequantised weights (benchmarks/bench_judges.py converts it once). Quantised activations
    in llama.cpp make them differ slightly, not by a swapped label or a lost position."""
    from pathlib import Path

    gemma = Path(os.environ.get("ARENA_GEMMA_DIR", Path.home() / ".cache" / "nash-arena" / "gemma-3-270m"))
    if not (gemma / "config.json").exists():
        pytest.skip(f"no converted Gemma checkpoint at {gemma}; run benchmarks/bench_judges.py once")
    server = load_judge(SPEC, mode="completions", timeout=120).judge(PAIRS + [c.swapped() for c in PAIRS])
    local = load_judge(f"hf:{gemma}", device="cpu").judge(PAIRS + [c.swapped() for c in PAIRS])
    assert server == pytest.approx(local, abs=0.05)
