"""Tournament runs: determinism, incremental work with exact counts, stale-cache protection,
failures kept apart from ties, bad input stopped before any work, dry runs that write nothing."""

import json
import sqlite3
from pathlib import Path

import pytest

from arena.cli import main
from arena.errors import CheckpointError, ConfigError, InputError
from arena.result import Result
from arena.tournament import TournamentConfig, run_tournament


import tournament_helpers as h  # registered by conftest.py
JUDGE = "python:tournament_helpers:judge"
FAST = dict(max_new_tokens=6, rounds=50, batch_size=4, judge_batch_size=8)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("tour")
    ckpts = h.make_ckpts(root / "ckpts", {"alpha": 1, "beta": 2, "gamma": 3})
    prompts = h.write_prompts(root / "prompts.txt", 5)
    extra = h.make_ckpt(root / "spare" / "delta", 4)
    return {"root": root, "ckpts": ckpts, "prompts": prompts, "delta": extra}


def _config(base, out, **kw):
    return TournamentConfig(ckpts_dir=kw.pop("ckpts_dir", base["ckpts"]), prompts=base["prompts"],
                            judge=kw.pop("judge", JUDGE), out=out, **{**FAST, **kw})


def _stable(result):
    """The result without the counters that say what this particular invocation did."""
    r = json.loads(json.dumps(result))
    r["run"].pop("new")
    r["run"].pop("reused")
    return r


def test_first_run_counts_and_determinism(base, tmp_path):
    r1 = run_tournament(_config(base, tmp_path / "run1")).to_json()
    # 3 checkpoints × 5 prompts; 3 pairs × 5 prompts comparisons, 2 judge calls each.
    assert r1["run"]["generations"] == 15 and r1["run"]["new"]["generations"] == 15
    assert r1["run"]["comparisons"] == 15 and r1["run"]["judgments"] == 30 and r1["run"]["new"]["judgments"] == 30
    assert r1["run"]["failures"] == 0
    assert r1["models"] == ["alpha", "beta", "gamma"]
    assert set(r1["checkpoints"]) == {"alpha", "beta", "gamma"}
    assert r1["judge"]["spec"] == JUDGE and r1["judge"]["first_position_rate"] > 0.5  # the helper judge's bias
    r2 = run_tournament(_config(base, tmp_path / "run2")).to_json()
    assert json.dumps(r1, sort_keys=True) == json.dumps(r2, sort_keys=True)
    # the typed result reads its own JSON back unchanged (a rerun may reload results.json)
    assert json.dumps(Result.from_json(r1).to_json()) == json.dumps(r1)
    # The files were written and hold the same object.
    assert json.loads((tmp_path / "run1" / "results.json").read_text()) == json.loads(json.dumps(r1))
    # A rerun in the same directory does no new work and gives the same analysis.
    r3 = run_tournament(_config(base, tmp_path / "run1")).to_json()
    assert r3["run"]["new"] == {"generations": 0, "judgments": 0}
    assert r3["run"]["reused"] == {"generations": 15, "judgments": 30}
    assert _stable(r3) == _stable(r1)


def test_different_seed_changes_samples(base, tmp_path):
    r1 = run_tournament(_config(base, tmp_path / "a")).to_json()
    r2 = run_tournament(_config(base, tmp_path / "b", seed=1)).to_json()
    assert r1["preference"]["P"] != r2["preference"]["P"]


def test_incremental_add_computes_only_the_new_work(base, tmp_path):
    import shutil

    ckpts = tmp_path / "ckpts"
    shutil.copytree(base["ckpts"], ckpts)
    out = tmp_path / "run"
    r1 = run_tournament(_config(base, out, ckpts_dir=ckpts)).to_json()
    shutil.copytree(base["delta"], ckpts / "delta")
    r2 = run_tournament(_config(base, out, ckpts_dir=ckpts)).to_json()
    # One new checkpoint: its 5 generations; 3 new pairs × 5 prompts × 2 positions.
    assert r2["run"]["new"] == {"generations": 5, "judgments": 30}
    assert r2["run"]["reused"] == {"generations": 15, "judgments": 30}
    assert r2["models"] == ["alpha", "beta", "delta", "gamma"]
    # The old pairs' preferences are untouched by the newcomer.
    P1, P2 = r1["preference"]["P"], r2["preference"]["P"]
    idx = {m: i for i, m in enumerate(r2["models"])}
    for i, a in enumerate(r1["models"]):
        for j, b in enumerate(r1["models"]):
            assert P2[idx[a]][idx[b]] == pytest.approx(P1[i][j])
    # A fresh run on the 4 checkpoints agrees with the incremental one.
    fresh = run_tournament(_config(base, tmp_path / "fresh", ckpts_dir=ckpts)).to_json()
    assert _stable(fresh)["preference"] == _stable(r2)["preference"]
    con = sqlite3.connect(out / "arena.sqlite")
    assert con.execute("select count(*) from generations").fetchone()[0] == 20
    assert con.execute("select count(*) from judgments").fetchone()[0] == 30  # rows = comparisons, 6 pairs × 5


def test_renamed_checkpoint_reuses_its_work(base, tmp_path):
    import shutil

    ckpts = tmp_path / "ckpts"
    shutil.copytree(base["ckpts"], ckpts)
    out = tmp_path / "run"
    run_tournament(_config(base, out, ckpts_dir=ckpts))
    (ckpts / "gamma").rename(ckpts / "aaa")  # now sorts first: pair orientation flips
    r = run_tournament(_config(base, out, ckpts_dir=ckpts)).to_json()
    assert r["run"]["new"] == {"generations": 0, "judgments": 0}
    assert r["models"][0] == "aaa"


def test_stale_cache_protection(base, tmp_path):
    out = tmp_path / "run"
    r1 = run_tournament(_config(base, out)).to_json()
    # Another judge: generations reused, every judgment new.
    r2 = run_tournament(_config(base, out, judge="python:tournament_helpers:judge_other")).to_json()
    assert r2["run"]["new"] == {"generations": 0, "judgments": 30}
    assert r2["judge"]["fingerprint"] != r1["judge"]["fingerprint"]
    # Other sampling parameters: nothing reused at all.
    for change in ({"temperature": 0.7}, {"top_p": 0.9}, {"max_new_tokens": 5}, {"seed": 3}):
        r = run_tournament(_config(base, out, **change)).to_json()
        assert r["run"]["reused"] == {"generations": 0, "judgments": 0}, change
    # And the original settings still find their own work.
    r3 = run_tournament(_config(base, out)).to_json()
    assert r3["run"]["new"] == {"generations": 0, "judgments": 0}
    assert _stable(r3) == _stable(r1)


def test_retrained_checkpoint_is_new_work(base, tmp_path):
    import shutil

    ckpts = tmp_path / "ckpts"
    shutil.copytree(base["ckpts"], ckpts)
    out = tmp_path / "run"
    run_tournament(_config(base, out, ckpts_dir=ckpts))
    shutil.rmtree(ckpts / "beta")
    h.make_ckpt(ckpts / "beta", 99)  # same name, other weights
    r = run_tournament(_config(base, out, ckpts_dir=ckpts)).to_json()
    assert r["run"]["new"] == {"generations": 5, "judgments": 20}  # beta's 2 pairs × 5 prompts × 2


def test_failures_are_counted_never_ties(base, tmp_path):
    r = run_tournament(_config(base, tmp_path / "run", judge="python:tournament_helpers:flaky_judge")).to_json()
    con = sqlite3.connect(tmp_path / "run" / "arena.sqlite")
    rows = con.execute("select p, error from judgments").fetchall()
    failed = [e for p, e in rows if p is None]
    assert r["run"]["failures"] == len(failed) > 0
    assert r["judge"]["failures"] == len(failed)
    assert all("could not parse" in e for e in failed)
    assert r["settings"]["records"] == 15 - len(failed)


def test_all_failures_is_a_clear_error(base, tmp_path):
    with pytest.raises(InputError, match="every judgment failed"):
        run_tournament(_config(base, tmp_path / "run", judge="python:tournament_helpers:failing_judge"))


def test_pairs_restrict_and_dry_run_writes_nothing(base, tmp_path):
    out = tmp_path / "run"
    plan = run_tournament(_config(base, out, pairs=(("gamma", "alpha"),), dry_run=True))
    # Only the two checkpoints in a pair generate.
    assert plan["dry_run"] and plan["plan"]["comparisons"]["todo"] == 5 and plan["plan"]["generations"]["todo"] == 10
    assert not out.exists()
    r = run_tournament(_config(base, out, pairs=(("gamma", "alpha"),))).to_json()
    assert r["run"]["comparisons"] == 5 and r["models"] == ["alpha", "gamma"]
    before = _snapshot(out)
    plan = run_tournament(_config(base, out, dry_run=True))
    assert _snapshot(out) == before  # not even SQLite's -wal/-shm side files
    assert plan["plan"]["generations"] == {"total": 15, "done": 10, "todo": 5}
    assert plan["plan"]["comparisons"] == {"total": 15, "done": 5, "todo": 10}
    with pytest.raises(InputError, match="not a checkpoint here"):
        run_tournament(_config(base, out, pairs=(("alpha", "zeta"),)))


def _snapshot(d: Path) -> dict:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _break(kind: str, root: Path, base) -> Path:
    """A checkpoint folder with one problem of the given kind."""
    import shutil

    ckpts = root / f"ckpts-{kind}"
    shutil.copytree(base["ckpts"], ckpts)
    if kind == "corrupt":
        w = ckpts / "beta" / "model.safetensors"
        w.write_bytes(w.read_bytes()[:-100])
    elif kind == "tokenizer":
        (ckpts / "beta" / "tokenizer.json").write_text("{not json")
    elif kind == "pickle":
        w = ckpts / "beta" / "model.safetensors"
        w.rename(ckpts / "beta" / "pytorch_model.bin")
    elif kind == "no-tokenizer":
        for f in ("tokenizer.json", "tokenizer_config.json"):
            (ckpts / "beta" / f).unlink()
    return ckpts


@pytest.mark.parametrize("kind,error,match", [
    ("corrupt", CheckpointError, "corrupt"),
    ("tokenizer", CheckpointError, "tokenizer"),
    ("pickle", CheckpointError, "allow-pickle"),
    ("no-tokenizer", CheckpointError, "no tokenizer"),
])
def test_broken_checkpoint_fails_before_work_and_run_dir_is_untouched(base, tmp_path, kind, error, match):
    out = tmp_path / "run"
    run_tournament(_config(base, out))
    before = _snapshot(out)
    ckpts = _break(kind, tmp_path, base)
    with pytest.raises(error, match=match):
        run_tournament(_config(base, out, ckpts_dir=ckpts))
    assert _snapshot(out) == before


def test_bad_inputs_fail_before_work(base, tmp_path):
    out = tmp_path / "run"
    run_tournament(_config(base, out))
    before = _snapshot(out)
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "empty.txt").write_text("\n  \n")
    not_models = tmp_path / "not-models"
    (not_models / "notes").mkdir(parents=True)
    (not_models / "notes" / "readme.md").write_text("hello")
    (not_models / "data.csv").write_text("a,b\n")
    cases = [
        (dict(ckpts_dir=tmp_path / "missing"), InputError, "does not exist"),
        (dict(ckpts_dir=empty), InputError, "it is empty"),
        (dict(ckpts_dir=not_models), InputError, r"notes: no config\.json"),
        (dict(judge="python:tournament_helpers:no_such_function"), ConfigError, "no attribute"),
        (dict(judge="nonsense"), ConfigError, "judge spec"),
        (dict(temperature=-1.0), ConfigError, "temperature"),
        (dict(engine="tpu"), ConfigError, "unknown engine"),
    ]
    for kw, error, match in cases:
        with pytest.raises(error, match=match):
            run_tournament(_config(base, out, **kw))
    with pytest.raises(InputError, match="holds no prompts"):
        run_tournament(TournamentConfig(ckpts_dir=base["ckpts"], prompts=tmp_path / "empty.txt", judge=JUDGE, out=out))
    assert _snapshot(out) == before


def test_one_checkpoint_plus_junk_lists_the_junk(base, tmp_path, capsys):
    import shutil

    from rich.console import Console

    ckpts = tmp_path / "ckpts"
    shutil.copytree(base["ckpts"] / "alpha", ckpts / "alpha")
    shutil.copytree(base["ckpts"] / "beta", ckpts / "beta")
    (ckpts / "notes.txt").write_text("not a model")
    console = Console(stderr=True, width=200)
    r = run_tournament(_config(base, tmp_path / "run", ckpts_dir=ckpts), console=console).to_json()
    assert r["models"] == ["alpha", "beta"]
    assert "notes.txt" in capsys.readouterr().err


def test_cli_json_is_one_object_with_run_and_judge(base, tmp_path, capsys):
    rc = main(["tournament", str(base["ckpts"]), "--prompts", str(base["prompts"]), "--judge", JUDGE,
               "--out", str(tmp_path / "run"), "--max-new-tokens", "6", "--rounds", "50", "--json"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("models", "ratings", "preference", "cycles", "nash", "run", "judge", "checkpoints"):
        assert key in result
    assert {"generations", "judgments", "reused", "failures"} <= set(result["run"])
    assert {"position_consistency", "first_position_rate"} <= set(result["judge"])


def test_cli_errors_and_dry_run(base, tmp_path, capsys):
    rc = main(["tournament", str(tmp_path / "nowhere"), "--judge", JUDGE])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    rc = main(["tournament", str(base["ckpts"]), "--prompts", str(base["prompts"]), "--judge", JUDGE,
               "--out", str(tmp_path / "run"), "--dry-run"])
    assert rc == 0
    assert "judge calls" in capsys.readouterr().out and not (tmp_path / "run").exists()
    rc = main(["tournament", str(base["ckpts"]), "--judge", JUDGE, "--pairs", "alpha-beta"])
    assert rc == 2 and "--pairs" in capsys.readouterr().err


def test_default_run_dir_and_judge_txt(base, tmp_path):
    import shutil

    world = tmp_path / "w"
    shutil.copytree(base["ckpts"], world / "ckpts")
    (world / "judge.txt").write_text(JUDGE + "\n")
    r = run_tournament(TournamentConfig(ckpts_dir=world / "ckpts", prompts=base["prompts"], **FAST)).to_json()
    assert r["judge"]["spec"] == JUDGE
    assert (world / "arena-run" / "arena.sqlite").exists() and (world / "arena-run" / "results.json").exists()
    with pytest.raises(ConfigError, match="no judge given"):
        run_tournament(TournamentConfig(ckpts_dir=base["ckpts"], prompts=base["prompts"], out=tmp_path / "x"))


def test_prompts_default_to_the_world_layout(base, tmp_path):
    import shutil

    world = tmp_path / "w"
    shutil.copytree(base["ckpts"], world / "ckpts")
    (world / "judge.txt").write_text(JUDGE + "\n")
    plan = run_tournament(TournamentConfig(ckpts_dir=world / "ckpts", dry_run=True))["plan"]
    n_builtin = plan["generations"]["total"] // plan["checkpoints"]
    texts = ["First world prompt.", "Second world prompt.", "Third world prompt."]
    assert n_builtin != len(texts)
    (world / "prompts.jsonl").write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts))
    plan = run_tournament(TournamentConfig(ckpts_dir=world / "ckpts", dry_run=True))["plan"]
    assert plan["generations"]["total"] == len(texts) * plan["checkpoints"]


def test_failures_are_kept_until_retried(base, tmp_path, monkeypatch):
    out = tmp_path / "run"
    spec = "python:tournament_helpers:outage_judge"
    monkeypatch.setenv("ARENA_TEST_OUTAGE", "1")
    r1 = run_tournament(_config(base, out, judge=spec)).to_json()
    failed = r1["run"]["failures"]
    assert failed > 0
    monkeypatch.delenv("ARENA_TEST_OUTAGE")
    r2 = run_tournament(_config(base, out, judge=spec)).to_json()
    assert r2["run"]["failures"] == failed and r2["run"]["new"]["judgments"] == 0  # stored failures are kept
    r3 = run_tournament(_config(base, out, judge=spec, retry_failures=True)).to_json()
    assert r3["run"]["failures"] == 0 and r3["run"]["new"]["judgments"] == 2 * failed
    reference = run_tournament(_config(base, tmp_path / "clean", judge=spec)).to_json()
    assert _stable(r3) == _stable(reference)
    con = sqlite3.connect(out / "arena.sqlite")
    assert con.execute("select count(*) from judgments").fetchone()[0] == 15


def test_samples_multiply_the_work(base, tmp_path):
    r = run_tournament(_config(base, tmp_path / "run", samples=2)).to_json()
    assert r["run"]["generations"] == 30 and r["run"]["comparisons"] == 30 and r["run"]["judgments"] == 60
    assert r["settings"]["clusters"] == 5  # the bootstrap resamples prompts, not samples
    con = sqlite3.connect(tmp_path / "run" / "arena.sqlite")
    assert sorted(s for (s,) in con.execute("select distinct sample from judgments")) == [0, 1]
    # Sample s has its own seed, so fewer samples reuse the first ones: samples extend, never reshuffle.
    one = run_tournament(_config(base, tmp_path / "run", samples=1)).to_json()
    assert one["run"]["new"] == {"generations": 0, "judgments": 0}
    three = run_tournament(_config(base, tmp_path / "run", samples=3)).to_json()
    assert three["run"]["new"] == {"generations": 15, "judgments": 30}


def test_position_only_judge_is_warned_about_in_results_and_reading(base, tmp_path):
    out = tmp_path / "run"
    r = run_tournament(_config(base, out, judge="python:tournament_helpers:position_judge")).to_json()
    judge = r["judge"]
    assert judge["position_consistency"] == 0.0 and judge["first_position_rate"] == 1.0 and judge["failures"] == 0
    assert "label_mass_mean" in judge  # None: a python judge reports no label mass
    assert any("position consistency 0%" in w for w in judge["warnings"])
    assert r["reading"].startswith("Warning: the judge looks broken (position consistency 0% < 50%")
    # every verdict is a tie: no winner, nothing distinguishable
    assert r["cycles"]["condorcet_winner"] is None and r["cycles"]["distinguishable"] is False
    stored = json.loads((out / "results.json").read_text())
    assert stored["judge"]["warnings"] == judge["warnings"]
    assert "the judge looks broken" in (out / "report.html").read_text()
    # the helper judge (mild bias, consistent) is not warned about
    ok = run_tournament(_config(base, tmp_path / "ok")).to_json()
    assert ok["judge"]["warnings"] == [] and "Warning" not in ok["reading"]
