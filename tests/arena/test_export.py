"""`arena export RUN_DIR`: a run's battles in the LMArena schema, read back by `arena rate`."""

import json
from types import SimpleNamespace as NS

import numpy as np
import pytest

from arena.cli import main
from arena.store import Judgment, Store


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run"
    with Store.open(run) as store:
        store.put_checkpoints([NS(fingerprint="fa", name="terse", path="/c/terse", kind="hf", card=None),
                               NS(fingerprint="fb", name="wordy", path="/c/wordy", kind="hf", card=None)])
        store.put_prompts([NS(hash="h1", text="Name a colour."), NS(hash="h2", text="Say hi.")])
        store.put_generations([("fa", "h1", 0, "k", 1, "Red."), ("fb", "h1", 0, "k", 1, "# Colour\n- **Blue**\n- Green"),
                               ("fa", "h2", 0, "k", 1, "Hi."), ("fb", "h2", 0, "k", 1, "Hello there, friend!")])
        store.put_judgments("J", "k", [("h1", 0, "fa", "fb", Judgment(0.2, 0.3, 0.1, None)),
                                       ("h2", 0, "fb", "fa", Judgment(0.5, 0.6, 0.4, None))])
        store.put_judgments("J", "k", [("h2", 1, "fa", "fb", Judgment(None, None, None, "refused"))])
    return run


def test_export_writes_lmarena_battles_that_arena_rate_reads(run_dir, tmp_path, capsys):
    from arena.io_pairs import read_pairs

    out = tmp_path / "battles.jsonl"
    before = (run_dir / "arena.sqlite").read_bytes()
    assert main(["export", str(run_dir), "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"path": str(out), "battles": 2, "failed": 1, "missing_generations": 0}
    assert (run_dir / "arena.sqlite").read_bytes() == before  # read-only
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    first = rows[0]
    assert (first["question_id"], first["model_a"], first["model_b"], first["winner"]) == ("h1", "terse", "wordy", "model_b")
    assert first["conversation_b"] == [{"role": "user", "content": "Name a colour."},
                                       {"role": "assistant", "content": "# Colour\n- **Blue**\n- Green"}]
    assert first["conv_metadata"]["header_count_b"] == {"total": 1}
    assert (first["feature_list_count_a"], first["feature_list_count_b"], first["feature_bold_count_b"]) == (0, 2, 1)
    assert rows[1]["winner"] == "tie"
    rec = read_pairs(out)
    assert rec.models == ("terse", "wordy") and rec.score.tolist() == [0.0, 0.5]
    assert rec.features.shape == (2, 2, 4) and rec.cluster.tolist() == [0, 1]


def test_export_soft_scores_and_parquet(run_dir, tmp_path, capsys):
    from arena.io_pairs import read_pairs

    out = tmp_path / "b.parquet"
    assert main(["export", str(run_dir), "--out", str(out), "--soft", "--no-generations"]) == 0
    rec = read_pairs(out)
    assert np.allclose(rec.score, [0.2, 0.5]) and rec.features is None


def test_export_refuses_what_is_not_a_run(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "no arena.sqlite here" in capsys.readouterr().err
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "x.csv")]) == 2


def test_export_finds_texts_of_checkpoints_with_their_own_generation_keys(tmp_path, capsys):
    """A pair whose checkpoints generated under different settings (generation_config.json) has its
    verdicts under the hash of both keys; each side's text is found under its own key."""
    from arena.generation import GenerationKeys

    run = tmp_path / "run"
    pair_key = GenerationKeys({"fa": "ka", "fb": "kb"}).pair("fa", "fb")
    with Store.open(run) as store:
        store.put_checkpoints([NS(fingerprint="fa", name="greedy", path="/c/g", kind="hf", card=None),
                               NS(fingerprint="fb", name="sampled", path="/c/s", kind="hf", card=None)])
        store.put_prompts([NS(hash="h1", text="Name a colour.")])
        store.put_generations([("fa", "h1", 0, "ka", 1, "Red."), ("fb", "h1", 0, "kb", 1, "Blue, or green.")])
        store.put_judgments("J", pair_key, [("h1", 0, "fa", "fb", Judgment(0.8, 0.9, 0.7, None))])
    out = tmp_path / "battles.jsonl"
    assert main(["export", str(run), "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["missing_generations"] == 0
    row = json.loads(out.read_text().splitlines()[0])
    assert row["conversation_a"][1]["content"] == "Red."
    assert row["conversation_b"][1]["content"] == "Blue, or green."
