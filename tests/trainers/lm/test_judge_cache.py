"""`--judge-cache`: a deterministic judge is asked each comparison once, and training is unchanged."""

import json
import re
import sqlite3

import pytest
import torch
from safetensors.torch import load_file

from arena.errors import ConfigError
from arena.worlds.lowrank import JUDGE_SPEC
from judges import Comparison, Failure
from tests.trainers.lm.test_lm_trainers import cfg as lm_cfg, world  # noqa: F401  (world: the fixture)
from trainers.lm import train
from trainers.lm.judgments import FILE, JudgmentCache, judge_with_cache


class Counting:
    """A judge that records what it is asked; "bad" responses fail."""

    fingerprint = "counting"

    def __init__(self):
        self.asked = []

    def judge(self, comparisons):
        self.asked += [(c.prompt, c.response_a, c.response_b) for c in comparisons]
        return [Failure("unparseable") if "bad" in (c.response_a, c.response_b) else 0.25 + 0.5 * (c.response_a < c.response_b)
                for c in comparisons]


def _c(a, b, prompt="p"):
    return Comparison(prompt=prompt, response_a=a, response_b=b)


def test_only_new_comparisons_reach_the_judge(tmp_path):
    judge, cache = Counting(), JudgmentCache(tmp_path / FILE)
    results, asked = judge_with_cache(judge, [_c("x", "y"), _c("x", "x"), _c("x", "y"), _c("y", "x"), _c("x", "bad")],
                                      cache)
    assert results[:4] == [0.75, 0.5, 0.75, 0.25] and isinstance(results[4], Failure)
    # the tie with itself is not asked, the repeat in the batch is asked once, the order matters
    assert judge.asked == [("p", "x", "y"), ("p", "y", "x"), ("p", "x", "bad")] and asked == 3
    results, asked = judge_with_cache(judge, [_c("x", "y"), _c("x", "y", prompt="q"), _c("x", "bad")], cache)
    assert results[:2] == [0.75, 0.75] and isinstance(results[2], Failure)
    # stored answers are reused; a failure is not stored but asked again; another prompt is another comparison
    assert judge.asked[3:] == [("q", "x", "y"), ("p", "x", "bad")] and asked == 2
    cache.close()
    again = JudgmentCache(tmp_path / FILE)                           # what a resumed run loads
    assert len(again) == 3 and again.lookup("q", "x", "y") == 0.75 and again.lookup("p", "x", "bad") is None
    rows = sqlite3.connect(tmp_path / FILE).execute("SELECT * FROM judgments ORDER BY prompt, response_a").fetchall()
    assert rows == [("p", "x", "y", 0.75), ("p", "y", "x", 0.25), ("q", "x", "y", 0.75)]
    assert judge_with_cache(Counting(), [_c("x", "x")], None) == ([0.25], 1)    # without a cache: all asked


def test_the_file_belongs_to_one_judge_and_keeps_only_real_answers(tmp_path):
    """A resumed run whose judge changed is refused; a NaN from a judge is not stored."""

    class Nan:
        fingerprint = "nan"

        def judge(self, comparisons):
            return [float("nan")] * len(comparisons)

    cache = JudgmentCache(tmp_path / FILE, judge_fingerprint="nan")
    results, asked = judge_with_cache(Nan(), [_c("x", "y")], cache)
    assert asked == 1 and len(cache) == 0
    cache.close()
    JudgmentCache(tmp_path / FILE, judge_fingerprint="nan").close()          # the same judge: fine
    with pytest.raises(ConfigError, match="answers of another judge.*--overwrite"):
        JudgmentCache(tmp_path / FILE, judge_fingerprint="counting")


def test_processes_exchange_what_they_bought_and_a_resumed_process_loads_the_file(tmp_path):
    """Under several processes (`Run.judge_pairs`): each cache hands over only its own new
    answers, once; another process's answers are stored (rank 0: in the file) but not passed
    on again; a process other than rank 0 resumes from the file, read-only, and refuses the
    file of another judge."""
    judge = Counting()
    rank0 = JudgmentCache(tmp_path / FILE, judge_fingerprint="counting", exchange=True)
    rank1 = JudgmentCache(exchange=True)
    judge_with_cache(judge, [_c("x", "y"), _c("x", "bad")], rank0)
    judge_with_cache(judge, [_c("y", "x", prompt="q")], rank1)
    mine0, mine1 = rank0.take_asked(), rank1.take_asked()
    assert mine0 == [("p", "x", "y", 0.75)] and mine1 == [("q", "y", "x", 0.25)]     # a failure is not handed over
    rank0.store(mine1, others=True)
    rank1.store(mine0, others=True)
    assert rank0.take_asked() == rank1.take_asked() == []                           # each answer travels once
    _, asked = judge_with_cache(judge, [_c("x", "y"), _c("y", "x", prompt="q")], rank1)
    assert asked == 0 and len(judge.asked) == 3                                     # rank 0's answer reused
    rank0.close()
    alone = JudgmentCache()                                                          # one process: nothing kept
    judge_with_cache(judge, [_c("a", "b")], alone)
    assert alone.take_asked() == []
    resumed = JudgmentCache.replica(tmp_path / FILE, judge_fingerprint="counting")
    assert len(resumed) == 2 and resumed.lookup("q", "y", "x") == 0.25 and resumed.exchange
    assert len(JudgmentCache.replica(tmp_path / "missing.sqlite")) == 0
    before = (tmp_path / FILE).read_bytes()
    with pytest.raises(ConfigError, match="answers of another judge.*--overwrite"):
        JudgmentCache.replica(tmp_path / FILE, judge_fingerprint="other")
    assert (tmp_path / FILE).read_bytes() == before                                 # read, never written


def cfg(world, out, **kw):
    return lm_cfg(world, out, **{"steps": 4, "eval_every": 0, "lr": 0.05, **kw})


def _rows(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("algorithm,options", [("nash-mp", None), ("nash-mp", "k3"), ("online-dpo", None)])
def test_training_is_unchanged_and_asks_less(world, tmp_path, algorithm, options):
    """The lowrank judge is deterministic and gives ½ to a tie: the cached run ends with the
    uncached run's weights and losses, and its judge_queries + judge_reused are the uncached count."""
    from trainers.lm import nash_mp

    opts = nash_mp.Options(samples_per_prompt=3) if options == "k3" else None
    plain = train(algorithm, cfg(world, tmp_path / "plain", options=opts))
    cached = train(algorithm, cfg(world, tmp_path / "cached", options=opts, judge_cache=True))
    a, b = load_file(plain / "model.safetensors"), load_file(cached / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    p, c = _rows(plain), _rows(cached)
    assert [r["loss"] for r in p] == pytest.approx([r["loss"] for r in c], abs=1e-6)
    assert "judge_reused" not in p[-1]
    assert c[-1]["judge_queries"] + c[-1]["judge_reused"] == p[-1]["judge_queries"]
    assert c[-1]["judge_reused"] > 0 and c[-1]["judge_queries"] < p[-1]["judge_queries"]
    stored = sqlite3.connect(cached / FILE).execute("SELECT count(*) FROM judgments").fetchone()[0]
    assert stored == c[-1]["judge_queries"]                          # every answer bought is kept
    card = json.loads((cached / "arena_card.json").read_text())
    assert card["config"]["judge_cache"] is True and card["judge_reused"] == c[-1]["judge_reused"]
    assert "judge_cache" not in json.loads((plain / "arena_card.json").read_text())["config"]
    assert not (plain / FILE).exists()


def test_a_resumed_run_reuses_what_it_bought(world, tmp_path):
    """Cut after step 3 (state saved at step 2) and resumed: the weights of the uninterrupted
    run; step 3's comparisons, stored before the cut, are not asked again."""
    from tests.trainers.lm.test_lm_trainers import _Stop, _stop_at

    full = train("nash-mp", cfg(world, tmp_path / "full", judge_cache=True))
    with pytest.raises(_Stop):
        train("nash-mp", cfg(world, tmp_path / "cut", judge_cache=True, save_every=2), progress=_stop_at(3))
    resumed = train("nash-mp", cfg(world, tmp_path / "cut", judge_cache=True, save_every=2), resume=True)
    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    f, r = _rows(full), _rows(resumed)
    assert [x["judge_queries"] + x["judge_reused"] for x in f] == [x["judge_queries"] + x["judge_reused"] for x in r]
    assert r[-1]["judge_queries"] <= f[-1]["judge_queries"]
    stored = sqlite3.connect(resumed / FILE).execute("SELECT count(*) FROM judgments").fetchone()[0]
    assert stored == sqlite3.connect(full / FILE).execute("SELECT count(*) FROM judgments").fetchone()[0]


def test_cli_flag_and_the_combination_it_refuses(world, tmp_path, capsys):
    from arena.cli import main

    args = ["train", "nash-mp", "--policy", str(world / "ckpts" / "sft"), "--judge", JUDGE_SPEC,
            "--prompts", str(world / "prompts.jsonl"), "--steps", "2", "--batch-size", "4",
            "--max-new-tokens", "4", "--eval-every", "0", "--json"]
    assert main([*args, "--out", str(tmp_path / "a"), "--judge-cache"]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert metrics["judge_queries"] + metrics["judge_reused"] == 8 and (tmp_path / "a" / FILE).is_file()
    assert main([*args[:-1], "--out", str(tmp_path / "t"), "--judge-cache"]) == 0
    assert re.search(r"\(nash-mp, 2 steps, \d+ judge queries, \d+ more answered by --judge-cache\)",
                     capsys.readouterr().out)
    (tmp_path / "train.yaml").write_text("judge-cache: true\nsamples-per-prompt: 3\n")
    assert main([*args, "--out", str(tmp_path / "y"), "--config", str(tmp_path / "train.yaml")]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert metrics["judge_queries"] + metrics["judge_reused"] == 2 * 4 * 3      # 3 pairs per prompt
    with pytest.raises(ConfigError, match="--judge-cache cannot be used with --criteria-weights maxmin"):
        cfg(world, tmp_path / "b", judge_cache=True, criteria_weights="maxmin")
