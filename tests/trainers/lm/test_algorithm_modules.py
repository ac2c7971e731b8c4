"""Per-algorithm modules: each declares NAME, HELP, its own frozen Options and `train`; the CLI
builds `arena train NAME` from them and refuses another algorithm's flag with exit 2."""

import dataclasses
import json
import subprocess
import sys

import pytest

from arena.errors import ConfigError
from trainers.lm import ALGORITHMS, TrainConfig, algorithm_modules, nash_md, nash_mp, online_dpo, train, with_options


def test_every_algorithm_module_declares_name_help_options_and_train():
    mods = algorithm_modules()
    assert tuple(mods) == ALGORITHMS
    assert set(ALGORITHMS) == {"nash-mp", "nash-md", "online-dpo", "online-ipo", "self-play", "rlhf", "mpo", "egpo"}
    for name, module in mods.items():
        assert module.NAME == name and module.HELP and callable(module.train)
        assert dataclasses.is_dataclass(module.Options) and module.Options.__dataclass_params__.frozen
        opts = module.Options()                                          # every option has a default
        for f in dataclasses.fields(opts):
            assert f.metadata["help"] and f.metadata["why"], (name, f.name)
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(opts, f.name, f.default)
    # the options an algorithm reads are its own: Nash-MD's mixture is nowhere else
    owners = {name: [f.name for f in dataclasses.fields(m.Options)] for name, m in mods.items()}
    assert owners["nash-md"] == ["mixture"] and owners["online-dpo"] == [] and owners["rlhf"] == ["rloo_k"]
    assert owners["nash-mp"] == ["eta", "kappa", "samples_per_prompt", "explore", "explore_temperature", "explore_first",
                                 "explore_first_pool", "explore_second_temperature", "explore_opponents",
                                 "explore_floor"]
    assert owners["mpo"] == ["magnet_every"]
    assert [n for n, fs in owners.items() if "mixture" in fs] == ["nash-md"]
    # saved flat beside the shared fields: no option may shadow one
    shared = {f.name for f in dataclasses.fields(TrainConfig)}
    assert not shared & {name for fs in owners.values() for name in fs}


def test_the_declarations_do_not_import_torch():
    code = ("import sys, trainers.lm, arena.cli.train; from trainers.lm import algorithm_modules; algorithm_modules(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_options_are_checked_with_the_flag_name_and_config_carries_them():
    with pytest.raises(ConfigError, match="--mixture must be in"):
        nash_md.Options(mixture="1.5")
    with pytest.raises(ConfigError, match="--kappa must be in"):
        nash_mp.Options(kappa=2.0)
    with pytest.raises(ConfigError, match="bad schedule"):
        nash_md.Options(mixture="soon")
    assert nash_md.Options(mixture="harmonic:2").mixture(1) == pytest.approx(2 / 3)
    base = dict(policy="p", judge="j", prompts="x", out="o", beta=0.05)
    config = with_options("nash-mp", TrainConfig(**base))             # None: the algorithm's defaults
    assert config.options == nash_mp.Options(eta=0.1)
    assert config.to_json()["eta"] == 0.1 and config.to_json()["kappa"] == "0.1" and "mixture" not in config.to_json()
    with pytest.raises(ConfigError, match="not the options of online-dpo"):
        with_options("online-dpo", TrainConfig(**base, options=nash_md.Options()))
    with pytest.raises(ConfigError, match="unknown algorithm 'dpo'"):
        train("dpo", TrainConfig(**base))


def test_a_saved_config_of_the_single_config_era_is_read():
    """Before per-algorithm options a card's config held every algorithm's fields, flat."""
    old = {"policy": "p", "judge": "j", "prompts": "x", "out": "o", "beta": 0.1, "eta": 0.2, "kappa": "harmonic:10",
           "mixture": "0.125", "magnet_every": 20, "rloo_k": 4, "samples_per_prompt": 2, "steps": 7}
    config = TrainConfig.from_json(old, nash_mp.Options)
    assert config.steps == 7 and config.options == nash_mp.Options(eta=0.2, kappa="harmonic:10")
    assert TrainConfig.from_json(old, nash_md.Options).options.mixture(0) == 0.125
    assert TrainConfig.from_json(old, online_dpo.Options).options == online_dpo.Options()


def _cli(capsys, *args):
    from arena.cli import main

    rc = main(["train", *map(str, args)])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_train_help_lists_every_algorithm_and_each_command_only_its_options(capsys):
    rc, out, _ = _cli(capsys, "--help")
    assert rc == 0 and all(name in out for name in ALGORITHMS)
    _, md, _ = _cli(capsys, "nash-md", "--help")
    _, mp, _ = _cli(capsys, "nash-mp", "--help")
    _, dpo, _ = _cli(capsys, "online-dpo", "--help")
    assert "--mixture" in md and "--kappa" not in md and "--eta" not in md
    assert all(f in mp for f in ("--eta", "--kappa", "--samples-per-prompt")) and "--mixture" not in mp
    assert "--mixture" not in dpo and "--rloo-k" not in dpo and "--beta" in dpo and "--gradient-checkpointing" in dpo
    _, rlhf, _ = _cli(capsys, "rlhf", "--help")
    _, mpo, _ = _cli(capsys, "mpo", "--help")
    assert "--rloo-k" in rlhf and "--magnet-every" in mpo


def test_a_nash_md_flag_is_refused_by_online_dpo(capsys, tmp_path):
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "hi"}\n')
    common = ["--policy", tmp_path / "none", "--judge", "python:x:y", "--prompts", tmp_path / "prompts.jsonl",
              "--out", tmp_path / "out"]
    rc, _, err = _cli(capsys, "online-dpo", *common, "--mixture", "0.2")
    assert rc == 2 and "Traceback" not in err
    assert "--mixture is an option of nash-md, not of online-dpo" in err and len(err.strip().splitlines()) == 1
    rc, _, err = _cli(capsys, "nash-md", *common, "--kappa=0.5")
    assert rc == 2 and "--kappa is an option of nash-mp, not of nash-md" in err
    rc, _, err = _cli(capsys, "online-dpo", *common, "--stepz", "3")
    assert rc == 2 and "unexpected '--stepz'" in err
    (tmp_path / "train.yaml").write_text("mixture: 0.2\n")
    rc, _, err = _cli(capsys, "online-dpo", *common, "--config", tmp_path / "train.yaml")
    assert rc == 2 and "--mixture is an option of nash-md, not of online-dpo" in err
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_an_algorithm_option_in_the_config_file_reaches_the_run(capsys, tmp_path):
    from arena.worlds.lowrank import JUDGE_SPEC, LowrankWorld, build_lowrank_world

    world = build_lowrank_world(tmp_path / "w", LowrankWorld(n_contexts=2, n_actions=3, sft_steps=5))
    (tmp_path / "train.yaml").write_text("mixture: harmonic:2\nsteps: 1\nbatch-size: 2\nmax-new-tokens: 2\n")
    rc, out, err = _cli(capsys, "nash-md", "--policy", world / "ckpts" / "sft", "--judge", JUDGE_SPEC,
                        "--prompts", world / "prompts.jsonl", "--out", tmp_path / "md", "--config",
                        tmp_path / "train.yaml", "--json")
    assert rc == 0, err
    card = json.loads((tmp_path / "md" / "arena_card.json").read_text())
    assert card["config"]["mixture"] == "harmonic:2" and card["config"]["steps"] == 1 and "kappa" not in card["config"]


def test_the_docs_options_tables_are_the_generated_ones():
    from pathlib import Path

    from trainers.lm.options import options_table

    docs = (Path(__file__).resolve().parents[3] / "docs" / "trainers.md").read_text(encoding="utf-8")
    block = docs.split("<!-- options tables: generated -->\n", 1)[1].split("<!-- /options tables -->", 1)[0]
    assert block == "\n".join(f"**`{name}`**\n\n" + options_table(m) for name, m in algorithm_modules().items())
