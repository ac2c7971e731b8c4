"""FastChat-style Bradley–Terry ratings with bootstrap: the baseline of `bench_reading.py`.

A faithful small copy of ``compute_mle_elo`` and ``get_bootstrap_result`` from FastChat's
``fastchat/serve/monitor/elo_analysis.py`` (lm-sys/FastChat, Apache-2.0): pandas pivot tables of
the battle outcomes (a tie counts as half a win each way), a weighted scikit-learn
``LogisticRegression`` without penalty on the (pair, outcome) rows, and a bootstrap that
resamples the battles (``battles.sample(frac=1.0, replace=True)``) and refits each round.

Run it in the separate benchmark venv (pandas, scikit-learn; never the project's venv):

    ../venv-arenarank/bin/python benchmarks/fastchat_elo.py battles.csv --rounds 1000

Prints one line: battles, models, the top rating, the rounds done and seconds per round.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import pandas as pd


def compute_mle_elo(df: pd.DataFrame, scale: float = 400, base: float = 10, init_rating: float = 1000) -> pd.Series:
    from sklearn.linear_model import LogisticRegression

    ptbl_a_win = pd.pivot_table(df[df["winner"] == "model_a"], index="model_a", columns="model_b",
                                aggfunc="size", fill_value=0)
    ties = df["winner"].isin(["tie", "tie (bothbad)"])
    if ties.sum() == 0:
        ptbl_tie = pd.DataFrame(0, index=ptbl_a_win.index, columns=ptbl_a_win.columns)
    else:
        ptbl_tie = pd.pivot_table(df[ties], index="model_a", columns="model_b", aggfunc="size", fill_value=0)
        ptbl_tie = ptbl_tie + ptbl_tie.T
    ptbl_b_win = pd.pivot_table(df[df["winner"] == "model_b"], index="model_a", columns="model_b",
                                aggfunc="size", fill_value=0)
    ptbl_win = ptbl_a_win * 2 + ptbl_b_win.T * 2 + ptbl_tie

    models = pd.Series(np.arange(len(ptbl_win.index)), index=ptbl_win.index)
    p = len(models)
    X = np.zeros([p * (p - 1) * 2, p])
    Y = np.zeros(p * (p - 1) * 2)
    cur_row = 0
    sample_weights = []
    for m_a in ptbl_win.index:
        for m_b in ptbl_win.columns:
            if m_a == m_b:
                continue
            if math.isnan(ptbl_win.loc[m_a, m_b]) or math.isnan(ptbl_win.loc[m_b, m_a]):
                continue
            X[cur_row, models[m_a]] = +math.log(base)
            X[cur_row, models[m_b]] = -math.log(base)
            Y[cur_row] = 1.0
            sample_weights.append(ptbl_win.loc[m_a, m_b])
            X[cur_row + 1, models[m_a]] = math.log(base)
            X[cur_row + 1, models[m_b]] = -math.log(base)
            Y[cur_row + 1] = 0.0
            sample_weights.append(ptbl_win.loc[m_b, m_a])
            cur_row += 2
    X, Y = X[:cur_row], Y[:cur_row]
    lr = LogisticRegression(fit_intercept=False, penalty=None, tol=1e-6)
    lr.fit(X, Y, sample_weight=sample_weights)
    elo_scores = scale * lr.coef_[0] + init_rating
    return pd.Series(elo_scores, index=models.index).sort_values(ascending=False)


def get_bootstrap_result(battles: pd.DataFrame, func_compute_elo, num_round: int) -> pd.DataFrame:
    rows = [func_compute_elo(battles.sample(frac=1.0, replace=True)) for _ in range(num_round)]
    df = pd.DataFrame(rows)
    return df[df.median().sort_values(ascending=False).index]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--rounds", type=int, default=1000)
    args = ap.parse_args()
    battles = pd.read_csv(args.file, usecols=["model_a", "model_b", "winner"])
    elo = compute_mle_elo(battles)
    t0 = time.perf_counter()
    boot = get_bootstrap_result(battles, compute_mle_elo, args.rounds)
    per_round = (time.perf_counter() - t0) / max(args.rounds, 1)
    ci = boot.quantile([0.025, 0.975])
    print(len(battles), len(elo), f"{elo.iloc[0]:.1f}", f"ci {float(ci.iloc[1].max() - ci.iloc[0].max()):.1f}",
          f"rounds {args.rounds}", f"{per_round:.2f}s/round")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
