"""`arena convert`: a GGUF file (built here with the `gguf` package) becomes a safetensors
checkpoint with its tokenizer that computes what the GGUF computes; refused overwrites and bad
input write nothing; a tournament converts a .gguf checkpoint once, not on every run."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gguf", reason="needs the gguf extra: pip install 'nash-arena[gguf]'")

import tournament_helpers as h  # noqa: E402  (registered by conftest.py)
from arena.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    return h.write_tiny_llama_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf", seed=0)


def _logits(model, tok, text="hello world"):
    import torch

    ids = tok(text, return_tensors="pt")
    with torch.no_grad():
        return ids["input_ids"][0].tolist(), model(**ids).logits[0].numpy()


def test_convert_gives_the_model_the_gguf_gives(tiny_gguf, tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from arena.loading import load_causal_lm

    out = tmp_path / "tiny-st"
    assert main(["convert", str(tiny_gguf), str(out), "--json"]) == 0
    files = json.loads(capsys.readouterr().out)["files"]
    assert "model.safetensors" in files and "config.json" in files and "tokenizer.json" in files
    assert not list(out.glob("*.gguf")) and not list(out.glob("*.bin"))
    card = json.loads((out / "arena_card.json").read_text())
    assert card["converted_from"] == "tiny.gguf" and len(card["gguf_fingerprint"]) == 16
    assert json.loads((out / "config.json").read_text()).get("quantization_config") is None
    model, tok = load_causal_lm(out)                      # the project's safetensors-only loader
    g_tok = AutoTokenizer.from_pretrained(str(tiny_gguf.parent), gguf_file=tiny_gguf.name)
    g_model = AutoModelForCausalLM.from_pretrained(str(tiny_gguf.parent), gguf_file=tiny_gguf.name).eval()
    ids, logits = _logits(model, tok)
    g_ids, g_logits = _logits(g_model, g_tok)
    assert ids == g_ids and ids[0] == 1                   # same tokens, BOS kept
    assert np.abs(logits - g_logits).max() < 1e-5 and logits.std() > 0.1


def test_convert_refuses_overwrite_and_bad_input(tiny_gguf, tmp_path, capsys):
    out = tmp_path / "exists"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["convert", str(tiny_gguf), str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a gguf file")
    assert main(["convert", str(fake), str(tmp_path / "new")]) == 2
    assert "no GGUF magic" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "missing.gguf"), str(tmp_path / "new")]) == 2
    assert not (tmp_path / "new").exists()


def test_failed_conversion_leaves_nothing(tiny_gguf, tmp_path, monkeypatch):
    from transformers import PreTrainedTokenizerBase

    from arena.convert import convert_gguf

    def fail(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(PreTrainedTokenizerBase, "save_pretrained", fail)
    with pytest.raises(OSError, match="disk full"):
        convert_gguf(tiny_gguf, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []                  # neither out nor a temporary directory


def test_tournament_converts_a_gguf_checkpoint_once(tmp_path, monkeypatch):
    import arena.convert
    from arena.tournament import TournamentConfig, run_tournament

    ckpts = tmp_path / "ckpts"
    ckpts.mkdir()
    h.write_tiny_llama_gguf(ckpts / "g0.gguf", seed=0)
    h.write_tiny_llama_gguf(ckpts / "g1.gguf", seed=1)
    (tmp_path / "p1.txt").write_text("hello there\nsay a word\n")
    (tmp_path / "p2.txt").write_text("hello there\nsay a word\nanother prompt\n")

    def run(prompts):
        return run_tournament(TournamentConfig(ckpts_dir=ckpts, prompts=tmp_path / prompts, out=tmp_path / "run",
                                               judge="python:tournament_helpers:judge", max_new_tokens=3,
                                               rounds=20)).to_json()

    calls = []
    real = arena.convert.convert_gguf
    monkeypatch.setattr(arena.convert, "convert_gguf", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    r1 = run("p1.txt")
    assert sorted(Path(p).name for p in calls) == ["g0.gguf", "g1.gguf"]
    assert r1["checkpoints"]["g0"]["kind"] == "gguf"      # still reported as what the user gave
    converted = sorted(p.name for p in (tmp_path / "run" / arena.convert.CONVERTED_DIR).iterdir())
    assert converted == sorted(c["fingerprint"] for c in r1["checkpoints"].values())
    r2 = run("p2.txt")                                    # a new prompt: generation, from the cached copies
    assert r2["run"]["new"]["generations"] == 2 and len(calls) == 2
