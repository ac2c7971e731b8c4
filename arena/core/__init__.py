"""The analytics core: pure functions on numpy arrays (no torch, no I/O, no printing).

records -> counts (`make_records`, `pair_counts`, `win_rates`) -> Bradley–Terry
(`fit_bradley_terry`, `elo`, `bootstrap_bradley_terry`, `analytic_bradley_terry_intervals`),
the preference matrix (`preference_matrix_from_counts`, `preference_matrix_from_probabilities`),
cycles (`analyze_cycles`) and the maximum-entropy Nash (`max_entropy_nash`,
`nash_from_preferences`). Every solver returns its certificate with its result.
"""

from arena.core.bootstrap import analytic_bradley_terry_intervals, bootstrap_bradley_terry
from arena.core.bradley_terry import elo, fit_bradley_terry, fit_bradley_terry_mm
from arena.core.cycles import analyze_cycles
from arena.core.matrix import preference_matrix_from_counts, preference_matrix_from_probabilities
from arena.core.nash import max_entropy_nash, nash_from_preferences
from arena.core.records import Records, make_records, pair_counts, win_rates

__all__ = [
    "Records", "analytic_bradley_terry_intervals", "analyze_cycles", "bootstrap_bradley_terry", "elo",
    "fit_bradley_terry", "fit_bradley_terry_mm", "make_records", "max_entropy_nash", "nash_from_preferences",
    "pair_counts", "preference_matrix_from_counts", "preference_matrix_from_probabilities", "win_rates",
]
