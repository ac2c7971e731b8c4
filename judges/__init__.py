"""Pairwise judges: P(y ≻ y' | x) from LLMs, servers, reward models and programs.

`load_judge(spec)` builds one from a spec string (see `judges.spec`); `judge_both_orders`
judges every comparison in both orders and debiases; failures are typed, never numbers.
"""

from judges.base import Comparison, Failure, Judge, PairVerdict, judge_both_orders, position_report
from judges.spec import load_judge

__all__ = ["Comparison", "Failure", "Judge", "PairVerdict", "judge_both_orders", "load_judge", "position_report"]
