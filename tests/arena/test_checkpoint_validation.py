"""Every checkpoint is validated before the first generation; identical checkpoints are one entity."""

from __future__ import annotations

import json
import shutil

import pytest

from arena.cli import main
from arena.tournament import TournamentConfig, run_tournament

JUDGE = "python:valjudge:judge"


@pytest.fixture
def world(tmp_path, monkeypatch):
    from trainers.tiny import build_model, build_tokenizer, save_checkpoint

    (tmp_path / "valjudge.py").write_text("def judge(prompt, a, b):\n    return 0.8 if len(a) > len(b) else 0.3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    tok = build_tokenizer(["words words for the tokenizer of these tests"] * 4, vocab_size=270)
    for name, seed in (("a", 1), ("b", 2), ("c", 3)):
        save_checkpoint(build_model(tok, n_embd=16, n_layer=1, n_head=2, n_positions=64, seed=seed), tok,
                        tmp_path / "ckpts" / name)
    (tmp_path / "prompts.txt").write_text("one\ntwo\n")
    return tmp_path


def _args(world, *extra):
    return ["tournament", str(world / "ckpts"), "--prompts", str(world / "prompts.txt"), "--judge", JUDGE,
            "--out", str(world / "run"), "--max-new-tokens", "2", "--rounds", "10", *extra]


def _edit_config(path, **changes):
    config = json.loads((path / "config.json").read_text())
    config.update(changes)
    (path / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("problem, message", [
    ("auto_map", "needs code shipped with it"),
    ("vocab", "vocab_size"),
    ("config", "cannot be read as JSON"),
])
def test_a_bad_last_checkpoint_fails_before_any_generation(world, capsys, problem, message):
    bad = world / "ckpts" / "c"  # sorted last: the others would have been generated first
    if problem == "auto_map":
        _edit_config(bad, auto_map={"AutoModelForCausalLM": "modeling_evil.EvilModel"})
    elif problem == "vocab":
        _edit_config(bad, vocab_size=10)
    else:
        (bad / "config.json").write_text("{not json")
    assert main(_args(world)) == 2
    err = capsys.readouterr().err
    assert message in err and "c" in err
    assert not (world / "run").exists()  # nothing written, not even the store


def test_identical_checkpoints_are_one_entity(world, capsys):
    shutil.copytree(world / "ckpts" / "a", world / "ckpts" / "a_copy")
    (world / "ckpts" / "a_link").symlink_to(world / "ckpts" / "a", target_is_directory=True)
    result = run_tournament(TournamentConfig(ckpts_dir=world / "ckpts", prompts=world / "prompts.txt", judge=JUDGE,
                                             out=world / "run", max_new_tokens=2, rounds=10)).to_json()
    assert sorted(result["models"]) == ["a", "b", "c"]
    assert result["duplicates"] == {"a": ["a_copy", "a_link"]}
    assert result["checkpoints"]["a"]["duplicates"] == ["a_copy", "a_link"]
    assert result["run"]["comparisons"] == 3 * 2  # 3 pairs × 2 prompts: no a-vs-a_copy match
    assert main(_args(world, "--pairs", "a:a_copy")) == 2
    assert "same checkpoint" in capsys.readouterr().err
    assert main(_args(world, "--pairs", "a_copy:b", "--json")) == 0  # a copy's name plays as its entity
    assert json.loads(capsys.readouterr().out)["models"] == ["a", "b"]
