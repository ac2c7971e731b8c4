"""Style control inside tournaments (arena.style_tournament, arena.worlds.verbose).

The verbose world's judge has a length bias on top of substance; the verbose checkpoint is
wrong more often but long. Raw Nash: verbose; at equal style: solid (exact figures in the
world's docstring). Here the responses are drawn from the world's exact style/answer mixes
(no model training), judged by the world's judge, and analysed as a tournament analyses them.
"""

import json

import numpy as np
import pytest

from arena.analysis import analyze_records
from arena.core.records import make_records
from arena.errors import InputError
from arena.report import plain_reading, render_html
from arena.style_tournament import response_features, style_control_html, tournament_style_control
from arena.worlds import verbose as vw


def _draw(rng, name, n):
    mix, wrong = vw.CHECKPOINTS[name]
    style = int(rng.choice(3, p=mix))
    answer = n if rng.random() >= wrong else (n + 1 + int(rng.integers(0, 98))) % 100
    return vw.render(answer, style)


def _tournament(seed=0, prompts=40, samples=4):
    rng = np.random.default_rng(seed)
    names = list(vw.CHECKPOINTS)
    a, b, score, cluster, responses = [], [], [], [], []
    for p, n in enumerate(rng.choice(100, size=prompts, replace=False)):
        q = vw.question(int(n))
        for _ in range(samples):
            texts = {m: _draw(rng, m, int(n)) for m in names}
            for i in range(3):
                for j in range(i + 1, 3):
                    ta, tb = texts[names[i]], texts[names[j]]
                    # the tournament's debiased score: both positions averaged
                    score.append((vw.judge(q, ta, tb) + 1 - vw.judge(q, tb, ta)) / 2)
                    a.append(names[i]), b.append(names[j]), cluster.append(p), responses.append((ta, tb))
    records = make_records(a, b, score, cluster=cluster, models=names)
    return records, responses


def test_world_judge_is_length_biased_and_checks_substance():
    q = vw.question(47)
    short, header, long_ = (vw.render(47, s) for s in range(3))
    assert vw.is_correct(q, short) and vw.is_correct(q, long_) and not vw.is_correct(q, vw.render(46, 2))
    assert not vw.is_correct(q, "- The answer is 47.\n- You asked for 46, so I repeat it: 47.")
    assert vw.judge(q, long_, short) > 0.9 and vw.judge(q, short, long_) < 0.1  # length alone
    assert vw.judge(q, short, vw.render(46, 0)) == pytest.approx(1 / (1 + np.exp(-vw.ALPHA)))
    assert vw.judge(q, vw.render(46, 2), short) > 0.5  # a long wrong answer beats a short right one


def test_response_features_are_lmarena_counts_per_side():
    f = response_features([(vw.render(7, 1), vw.render(7, 2)), ("7.", "")])
    assert f.shape == (2, 2, 4)
    # tokens, headers, lists, bold: header style has 1 header and 1 bold, list style 2 items
    assert f[0, 0].tolist() == [12, 1, 0, 1] and f[0, 1].tolist() == [19, 0, 2, 0]
    assert f[1, 0].tolist() == [2, 0, 0, 0] and f[1, 1].tolist() == [0, 0, 0, 0]


def test_raw_nash_has_the_verbose_checkpoint_and_the_controlled_one_does_not():
    records, responses = _tournament()
    raw = analyze_records(records, rounds=50, seed=0)
    assert raw.nash.weights["verbose"] > 0.5  # verbose wins the raw game through length
    result = tournament_style_control(raw, records, responses, rounds=50, seed=0, level=0.95)
    sc = result.extra["style_control"]
    models = sc["preference"]["models"]
    P = np.array(sc["preference"]["P"])
    iv, isol = models.index("verbose"), models.index("solid")
    assert P[iv, isol] < 0.5 < raw.preference.P[iv][isol]  # flips at equal style
    assert sc["nash"]["weights"]["verbose"] < 1e-6 and sc["nash"]["weights"]["solid"] > 0.9
    assert sc["coefficients"]["sum_assistant_tokens"]["ratings"] > 0  # longer is preferred
    assert sc["ratings"]["solid"]["elo"] > sc["ratings"]["verbose"]["elo"]
    assert raw.ratings["verbose"].elo > raw.ratings["solid"].elo
    assert "verbose is in the equilibrium only through style" in sc["reading"]
    assert sc["reading"] in plain_reading(result)
    assert sc["mean_features"]["verbose"]["sum_assistant_tokens"] > sc["mean_features"]["solid"]["sum_assistant_tokens"]
    page = render_html(result)
    assert "<h2>Style control</h2>" in page and "only through style" in page
    json.dumps(result.to_json(), allow_nan=False)  # results.json stays strict JSON


def test_no_style_variation_is_a_clear_error():
    records, responses = _tournament(prompts=10, samples=1)
    raw = analyze_records(records, rounds=10, seed=0)
    same = [("42.", "42.")] * len(responses)
    with pytest.raises(InputError, match="no style to control for"):
        tournament_style_control(raw, records, same, rounds=10, seed=0, level=0.95)
    with pytest.raises(InputError, match="one \\(response a, response b\\) per comparison"):
        tournament_style_control(raw, records, responses[:-1], rounds=10, seed=0, level=0.95)


def test_html_section_absent_without_style_control():
    records, _ = _tournament(prompts=10, samples=1)
    raw = analyze_records(records, rounds=10, seed=0)
    assert style_control_html(raw) == "" and "Style control" not in render_html(raw)
