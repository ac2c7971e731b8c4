"""The game lab: exact tabular/contextual NLHF dynamics (ground truth for the LM trainers).

`games` (Game, generators), `nash` (certified π*_β, KL), `algorithms` (exact updates),
`sampled` (Bernoulli-labelled pair updates), `run` (comparisons and metrics), `plots`.
"""

from trainers.lab.games import Game, lowrank_game, matrix_game, random_game, rock_paper_scissors
from trainers.lab.nash import RegularizedNash, kl, kl_from_logs, regularized_nash

__all__ = ["Game", "RegularizedNash", "kl", "kl_from_logs", "lowrank_game", "matrix_game", "random_game",
           "regularized_nash", "rock_paper_scissors"]
