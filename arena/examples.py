"""A small pairwise data set whose panel preferences cycle (a Condorcet cycle).

Three rater types judge three strong models with different orders,

    type 1 (40% of prompts):  alpha > beta  > gamma
    type 2 (35% of prompts):  beta  > gamma > alpha
    type 3 (25% of prompts):  gamma > alpha > beta

and every type ranks a fourth, clearly weaker model `delta` last. Each prompt is judged
by one rater type, who compares all six pairs; a rater follows its order with
probability `q` (else it flips), and a share of battles are ties. The panel's majority
preferences then cycle, alpha > beta > gamma > alpha (the Condorcet paradox), while a
Bradley–Terry fit still returns a total order. Without ties the expected preferences are
P(alpha > beta) = .62, P(beta > gamma) = .70, P(gamma > alpha) = .58 (ties pull each towards
½ by a factor 1 − tie_rate), and the maximum-entropy Nash mixture of A = P − ½ is then
(alpha, beta, gamma, delta) = (.5, .2, .3, 0): for a 3-cycle it is proportional to the
margin of the opposite edge; a sample of 400 prompts gives roughly that; the uneven
shares keep the three cyclic models from being interchangeable, so a swapped sign or a
mixed-up order changes the answer. Balduzzi et al. 2018, "Re-evaluating evaluation",
arXiv 1806.02643, discusses why such populations need a game-theoretic summary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MODELS: tuple[str, ...] = ("alpha", "beta", "gamma", "delta")
# Orders of the three rater types over MODELS (indices, best first) and their shares.
RATER_ORDERS: tuple[tuple[int, ...], ...] = ((0, 1, 2, 3), (1, 2, 0, 3), (2, 0, 1, 3))
RATER_SHARES: tuple[float, ...] = (0.40, 0.35, 0.25)


def cyclic_example_pairs(
    *, n_prompts: int = 400, seed: int = 0, q: float = 0.9, weak_q: float = 0.85, tie_rate: float = 0.05
):
    """Pairs (model_a, model_b, winner, prompt_id) from the three-rater-type population.

    `q`: probability that a rater follows its own order between two strong models;
    `weak_q`: probability that the weak model loses; `tie_rate`: share of ties.
    Returns a pandas DataFrame with `winner` in {"model_a", "model_b", "tie"}.
    """
    import pandas as pd

    if n_prompts < 1:
        raise ValueError(f"n_prompts must be >= 1; got {n_prompts}")
    for name, value in (("q", q), ("weak_q", weak_q), ("tie_rate", tie_rate)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1]; got {value}")
    rng = np.random.default_rng(seed)
    n = len(MODELS)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    rows = []
    types = rng.choice(len(RATER_ORDERS), size=n_prompts, p=np.asarray(RATER_SHARES))
    for prompt, rater in enumerate(types):
        rank = {model: pos for pos, model in enumerate(RATER_ORDERS[rater])}
        for i, j in pairs:
            a, b = (i, j) if rng.random() < 0.5 else (j, i)  # random presentation order
            better, worse = (a, b) if rank[a] < rank[b] else (b, a)
            follow = weak_q if MODELS[worse] == "delta" else q
            if rng.random() < tie_rate:
                winner = "tie"
            else:
                won = better if rng.random() < follow else worse
                winner = "model_a" if won == a else "model_b"
            rows.append((MODELS[a], MODELS[b], winner, f"p{prompt:04d}"))
    return pd.DataFrame(rows, columns=["model_a", "model_b", "winner", "prompt_id"])


def write_cyclic_example(path: str | Path, *, n_prompts: int = 400, seed: int = 0) -> Path:
    """Write `cyclic_example_pairs` to `path` (CSV, or JSONL when the name ends in .jsonl)."""
    path = Path(path)
    frame = cyclic_example_pairs(n_prompts=n_prompts, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix == ".jsonl":
        frame.to_json(tmp, orient="records", lines=True)
    else:
        frame.to_csv(tmp, index=False)
    tmp.replace(path)
    return path
