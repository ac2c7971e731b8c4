"""`arena lab game`: JSON schema, table, atomic --out, bad input writes nothing."""

import json

import pytest

from arena.cli import main

NAMES = ["nash-mp", "nash-md", "nash-md-decay", "md", "mpo", "egpo", "online-ipo", "online-dpo", "self-play", "nash-mp-ema"]


def test_json_schema_all_algorithms(capsys):
    rc = main(["lab", "game", "--contexts", "3", "--actions", "6", "--steps", "30", "--algorithms", ",".join(NAMES), "--json"])
    assert rc == 0
    obj = json.loads(capsys.readouterr().out)
    assert list(obj["algorithms"]) == NAMES
    mp = obj["algorithms"]["nash-mp"]
    assert set(mp) >= {"final_kl", "steps_to_1e-3", "steps_to_1e-6", "queries", "kl"}
    assert mp["queries"] == 60 and obj["algorithms"]["md"]["queries"] == 30
    assert obj["algorithms"]["online-ipo"]["queries"] == 30 * 16
    assert mp["kl"]["30"] == mp["final_kl"] and "0" in mp["kl"] and "20" in mp["kl"]
    assert obj["algorithms"]["nash-md"]["steps_to_1e-6"] is None  # bias floor: null, not a number
    assert mp["kl"]["0"] > mp["kl"]["10"] > mp["kl"]["30"]


def test_table_and_out_dir(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["lab", "game", "--game", "random", "--contexts", "2", "--actions", "4", "--steps", "20",
               "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "nash-mp" in text and "egpo" in text
    assert (out / "convergence.png").stat().st_size > 1000
    res = json.loads((out / "results.json").read_text())
    assert res["game"]["kind"] == "random" and res["beta"] == 0.1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dir left
    # rerun into the existing directory replaces the files
    assert main(["lab", "game", "--game", "random", "--contexts", "2", "--actions", "4", "--steps", "5",
                 "--out", str(out), "--json"]) == 0
    assert json.loads((out / "results.json").read_text())["steps"] == 5


def test_matrix_csv(tmp_path, capsys):
    f = tmp_path / "rps.csv"
    f.write_text(",r,p,s\nr,0.5,0,1\np,1,0.5,0\ns,0,1,0.5\n")
    rc = main(["lab", "game", "--game", "matrix", "--matrix", str(f), "--steps", "50", "--beta", "0.2",
               "--algorithms", "nash-mp", "--json"])
    assert rc == 0
    obj = json.loads(capsys.readouterr().out)
    # uniform reference on RPS: π*_β = π_ref, so KL starts (and stays) at 0
    assert obj["algorithms"]["nash-mp"]["final_kl"] < 1e-20 and obj["game"]["actions"] == 3


@pytest.mark.parametrize("argv,msg", [
    (["--game", "matrix"], "--matrix"),
    (["--algorithms", "nash-mp,bogus"], "bogus"),
    (["--beta", "0"], "beta"),
    (["--rank", "50"], "rank"),
])
def test_bad_input_exit_2_and_nothing_written(tmp_path, capsys, argv, msg):
    out = tmp_path / "never"
    rc = main(["lab", "game", "--steps", "3", "--out", str(out), *argv])
    assert rc == 2
    assert msg in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_matrix_file_not_symmetric(tmp_path, capsys):
    f = tmp_path / "bad.csv"
    f.write_text("0.5,0.9\n0.9,0.5\n")
    assert main(["lab", "game", "--game", "matrix", "--matrix", str(f), "--steps", "3"]) == 2
    assert "P + Pᵀ" in capsys.readouterr().err
