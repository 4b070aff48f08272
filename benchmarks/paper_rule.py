"""The decision rule of the AnchorVAE study, fixed before its runs (``paper_anchorvae.py``).

Each comparison is one measurement of one AnchorVAE arm against the VAE, over independent seeds
(different models, so unpaired). Its difference is oriented so that positive favours the claim
(``anchor - vae`` when higher is better, ``vae - anchor`` when lower is better), and gets a Welch
confidence interval whose level is Bonferroni-corrected for the comparisons of its claim:
``1 - ALPHA / m``. With a practical margin ``d`` for the measurement:

- ``better``: the whole interval lies above ``+d`` (the claim's direction, by more than ``d``);
- ``not better``: the whole interval lies below ``+d`` (inside the margin, or against the claim);
- ``undecided``: the interval straddles ``+d``.

A claim holds for an arm when every one of its comparisons is ``better``, fails when any is ``not
better``, and is undecided otherwise.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

ALPHA = 0.05  # family-wise error rate per claim


@dataclass(frozen=True)
class Interval:
    """The oriented difference of means, its interval at ``level``, and Welch's degrees of freedom."""

    diff: float
    lo: float
    hi: float
    level: float
    df: float

    def text(self, digits: int = 3) -> str:
        return f"{self.diff:+.{digits}f} [{self.lo:+.{digits}f}, {self.hi:+.{digits}f}]"


def welch_interval(a: Sequence[float], b: Sequence[float], level: float) -> Interval:
    """The ``level`` interval of ``mean(a) - mean(b)`` by Welch's t (unequal variances); both
    samples need at least 2 values."""
    from scipy.stats import t

    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"welch_interval needs at least 2 values in each sample, got {len(a)} and {len(b)}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return Interval(ma - mb, ma - mb, ma - mb, level, float("inf"))
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    q = float(t.ppf(0.5 + level / 2, df))
    return Interval(ma - mb, ma - mb - q * se, ma - mb + q * se, level, df)


def oriented(a: Sequence[float], b: Sequence[float], higher_is_better: bool, level: float) -> Interval:
    """The interval of the arm's advantage: ``a - b`` when higher is better, else ``b - a``."""
    return welch_interval(a, b, level) if higher_is_better else welch_interval(b, a, level)


def decide(interval: Interval, margin: float) -> str:
    """``better``, ``not better`` or ``undecided`` (see the module docstring)."""
    if interval.lo > margin:
        return "better"
    if interval.hi < margin:
        return "not better"
    return "undecided"


def combine(decisions: Sequence[str]) -> str:
    """A claim's verdict for one arm from its comparisons' decisions."""
    if not decisions:
        return "not measured"
    if any(d == "not better" for d in decisions):
        return "fails"
    if all(d == "better" for d in decisions):
        return "holds"
    return "undecided"


def level_for(num_comparisons: int) -> float:
    """The Bonferroni-corrected interval level for a claim with ``num_comparisons`` comparisons."""
    if num_comparisons < 1:
        raise ValueError(f"num_comparisons must be >= 1, got {num_comparisons}")
    return 1 - ALPHA / num_comparisons
