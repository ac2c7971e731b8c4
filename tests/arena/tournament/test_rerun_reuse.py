"""A rerun that changed nothing loads no model or tokenizer, hashes no checkpoint, does not
analyse again and leaves results.json byte-identical; any changed input recomputes."""

import json
import shutil

import pytest

import arena.fingerprint as F
from arena.tournament import TournamentConfig, run_tournament

import tournament_helpers as h  # registered by conftest.py

JUDGE = "python:tournament_helpers:judge"
FAST = dict(max_new_tokens=6, rounds=50, batch_size=4, judge_batch_size=8)


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setattr(F, "RACY_SECONDS", -1.0)  # cache the freshly written checkpoints
    ckpts = h.make_ckpts(tmp_path / "ckpts", {"alpha": 1, "beta": 2, "gamma": 3})
    prompts = h.write_prompts(tmp_path / "prompts.txt", 4)
    return {"root": tmp_path, "ckpts": ckpts, "prompts": prompts, "out": tmp_path / "run"}


def _config(w, **kw):
    return TournamentConfig(ckpts_dir=w["ckpts"], prompts=kw.pop("prompts", w["prompts"]), judge=kw.pop("judge", JUDGE),
                            out=w["out"], **{**FAST, **kw})


def _forbid(monkeypatch, *what, ckpts=None):
    """Make loading, hashing a checkpoint, analysing or writing reports raise."""
    import transformers

    import arena.report
    import arena.tournament

    def refuse(*a, **k):
        raise AssertionError("a rerun that changed nothing must not do this")

    if "load" in what:
        for cls in (transformers.AutoTokenizer, transformers.AutoModelForCausalLM,
                    transformers.PreTrainedTokenizerFast):
            monkeypatch.setattr(cls, "from_pretrained", refuse)
    if "hash" in what:  # the python judge's source file is small and still hashed
        real = F._hash_files
        monkeypatch.setattr(F, "_hash_files", lambda path, files: refuse() if ckpts in path.parents else real(path, files))
    if "analyse" in what:
        monkeypatch.setattr(arena.tournament, "analyse", refuse)
    if "write" in what:
        monkeypatch.setattr(arena.report, "write_outputs", refuse)


def test_rerun_loads_nothing_and_keeps_results_byte_identical(world, monkeypatch):
    r1 = run_tournament(_config(world)).to_json()
    first = (world["out"] / "results.json").read_bytes()
    with monkeypatch.context() as m:
        _forbid(m, "load", "hash", "analyse", "write", ckpts=world["ckpts"])
        r2 = run_tournament(_config(world)).to_json()
    assert (world["out"] / "results.json").read_bytes() == first
    assert r2["run"]["new"] == {"generations": 0, "judgments": 0}
    assert r2["run"]["reused"] == {"generations": 12, "judgments": 24}
    for key in ("models", "preference", "ratings", "nash", "cycles", "checkpoints", "judge"):
        assert r2[key] == json.loads(json.dumps(r1[key])), key


def test_missing_report_is_rewritten_identically_without_analysing(world, monkeypatch):
    run_tournament(_config(world))
    first = (world["out"] / "results.json").read_bytes()
    (world["out"] / "heatmap.png").unlink()
    (world["out"] / "results.json").write_text("{}")
    with monkeypatch.context() as m:
        _forbid(m, "load", "analyse")
        run_tournament(_config(world))
    assert (world["out"] / "heatmap.png").is_file()
    assert (world["out"] / "results.json").read_bytes() == first


@pytest.mark.parametrize("change", ["rounds", "seed", "prior", "judge", "prompts", "checkpoint"])
def test_any_change_recomputes(world, monkeypatch, change):
    import arena.tournament

    r1 = run_tournament(_config(world)).to_json()
    calls = []
    real = arena.tournament.analyse
    monkeypatch.setattr(arena.tournament, "analyse", lambda *a, **k: calls.append(1) or real(*a, **k))
    kw = {}
    if change == "rounds":
        kw["rounds"] = 60
    elif change == "seed":
        kw["seed"] = 1
    elif change == "prior":
        kw["prior"] = 0.5
    elif change == "judge":
        kw["judge"] = "python:tournament_helpers:judge_other"
    elif change == "prompts":
        kw["prompts"] = h.write_prompts(world["root"] / "more.txt", 5)
    else:  # retrain one checkpoint in place: new weights, same name and path
        shutil.rmtree(world["ckpts"] / "beta")
        h.make_ckpt(world["ckpts"] / "beta", 7)
    r2 = run_tournament(_config(world, **kw)).to_json()
    assert calls == [1]
    assert r2 != r1
    if change == "checkpoint":  # re-hashed, so its generations and its two pairs are new
        assert r2["run"]["new"] == {"generations": 4, "judgments": 16}
        assert r2["checkpoints"]["beta"]["fingerprint"] != r1["checkpoints"]["beta"]["fingerprint"]
    # The new analysis is what results.json now holds.
    assert json.loads((world["out"] / "results.json").read_text()) == json.loads(json.dumps(r2))
