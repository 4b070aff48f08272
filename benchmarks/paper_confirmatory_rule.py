"""The corrected decision rule of the confirmatory AnchorVAE study, fixed before its runs.

Every comparison is paired by seed (one seed gives every arm the same initialisation and batch
order); its per-seed difference is oriented so that positive favours the claim. With margin ``d``
and ``m`` the comparisons of the claim's family: **better** when the one-sided 95 % lower bound
exceeds ``+d``; **worse** (significantly) when the one-sided ``1 - 0.05/m`` upper bound is below
0; **not better** (equivalent, or worse within the margin) when that upper bound is below ``+d``;
**undecided** otherwise. A claim **holds** when every primary comparison is better (an
intersection-union test, valid at 5 % without correction), **fails** when a primary comparison is
worse, is **not better** when one is not better, and is undecided otherwise. A comparison whose
reference already sits within the margin of its measure's bound (its maximum, or the data's own
value) cannot be won: it is reported as unwinnable and decides nothing. Declarations: ``CLAIMS``.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

ALPHA = 0.05
POWER = 0.80
MIN_SEEDS = 10
MAX_SEEDS = 12  # the budget: 4 arms x 12 seeds x ~7.5 min / 2 workers ~ 3 h on 2 cores, and a calibration
SEEDS_FROM = 100  # confirmatory seeds 100, 101, ...: none was used by the pilot (0 .. 4)
CALIBRATION_SEED = 1000
CONTROL_BETAS = (0.6, 0.7, 0.8, 0.9)  # the control's beta: the one whose total rate is closest to ...
CONTROL_TARGET = ("AnchorVAE 0.1", "rate_total")  # ... the pilot's mean of this arm's total rate


@dataclass(frozen=True)
class Endpoint:
    """One measurement compared between an arm and its reference: the result key, whether higher
    favours the claim, the margin (a float, or "5%" of the reference's mean), and the measure's
    bound in the claim's direction: a number, the key of the data's own value ("real:<key>" from
    the real-vs-real measurements), or None."""

    key: str
    higher: bool
    margin: float | str
    bound: float | str | None = None
    label: str = ""


@dataclass(frozen=True)
class Claim:
    id: str
    title: str
    arms: tuple[str, ...]
    reference: str
    primary: tuple[Endpoint, ...]
    secondary: tuple[Endpoint, ...] = ()


LOG_N = math.log(10000)  # the per-latent I(Z_j;X) estimate on 10,000 test points is at most log N
CLAIMS = (
    Claim("1", "The anchors carry more information", ("AnchorVAE 0.2", "AnchorVAE 0.1"), "VAE",
          primary=(Endpoint("rate_subset", True, 1.0, None, "rate of the 2 anchors (VAE: its top-2 latents)"),
                   Endpoint("info_subset", True, 1.0, 2 * LOG_N, "I(Z_j;X) summed over those 2")),
          secondary=(Endpoint("rate_share_subset", True, 0.05, 1.0, "their share of the total rate"),)),
    Claim("1c", "The information sits in the anchors, beyond a same-total-rate beta-VAE",
          ("AnchorVAE 0.1",), "control",
          primary=(Endpoint("rate_subset", True, 1.0, None, "rate of the 2 anchors (control: its top-2)"),),
          secondary=(Endpoint("info_subset", True, 1.0, 2 * LOG_N, "I(Z_j;X) summed over those 2"),
                     Endpoint("rate_share_subset", True, 0.05, 1.0, "their share of the total rate"))),
    Claim("2", "The anchors are more interpretable", ("AnchorVAE 0.2", "AnchorVAE 0.1"), "VAE",
          primary=(Endpoint("probe_subset", True, 0.02, 1.0, "class from those 2: linear probe accuracy"),),
          secondary=(Endpoint("knn_subset", True, 0.02, 1.0, "class from those 2: k-NN probe accuracy"),
                     Endpoint("mi_joint_subset", True, 0.05, "real:class_entropy",
                              "I(those 2; class), joint lower bound, nats"),
                     Endpoint("held", True, 0.02, 1.0, "class kept, those 2 held, rest from the prior"),
                     Endpoint("change_subset", True, 0.02, 1.0, "traversing one of those 2 changes the class"),
                     Endpoint("change_gap", True, 0.02, 1.0,
                              "class-change rate of those 2 minus that of the model's other latents"),
                     Endpoint("mi_per_nat", True, 0.005, None, "I(those 2; class) per nat of I(those 2; X)"))),
    Claim("2c", "The anchors are more interpretable than a same-total-rate beta-VAE's top-2",
          ("AnchorVAE 0.1",), "control",
          primary=(Endpoint("probe_subset", True, 0.02, 1.0, "class from those 2: linear probe accuracy"),),
          secondary=(Endpoint("change_subset", True, 0.02, 1.0, "traversing one of those 2 changes the class"),)),
    Claim("3", "Richer and more realistic samples", ("AnchorVAE 0.2", "AnchorVAE 0.1"), "VAE",
          primary=(Endpoint("precision_prior", True, 0.02, "real:precision", "prior samples: precision (realism)"),
                   Endpoint("recall_prior", True, 0.02, "real:recall", "prior samples: recall (richness)")),
          secondary=(Endpoint("density_prior", True, 0.05, "real:density", "prior samples: density"),
                     Endpoint("coverage_prior", True, 0.02, "real:coverage", "prior samples: coverage"),
                     Endpoint("class_kl_prior", False, 0.01, "real:class_kl",
                              "prior samples: KL(data's classes || samples' classes), nats"),
                     Endpoint("fd_prior_binary", False, "5%", "real:fd", "prior samples: Frechet distance"),
                     Endpoint("precision_fitted", True, 0.02, "real:precision", "fitted-2 samples: precision"),
                     Endpoint("recall_fitted", True, 0.02, "real:recall", "fitted-2 samples: recall"))),
)
PRICE = "iwae"  # the held-out IWAE difference, paired by seed and by image, beside every verdict


# ------------------------------------------------------------------------------ the tests


def _t(q: float, df: float) -> float:
    from scipy.stats import t

    return float(t.ppf(q, df))


@dataclass(frozen=True)
class Paired:
    """The oriented paired differences' mean, standard error, the one-sided ``1 - ALPHA`` lower
    bound and the one-sided ``1 - ALPHA / m`` upper bound."""

    n: int
    diff: float
    se: float
    lower: float
    upper: float
    m: int


def paired(diffs: Sequence[float], m: int) -> Paired:
    if len(diffs) < 2:
        raise ValueError(f"a paired comparison needs at least 2 seeds, got {len(diffs)}")
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    n, mean = len(diffs), statistics.fmean(diffs)
    se = statistics.stdev(diffs) / math.sqrt(n)
    return Paired(n, mean, se, mean - _t(1 - ALPHA, n - 1) * se, mean + _t(1 - ALPHA / m, n - 1) * se, m)


def outcome(p: Paired, margin: float) -> str:
    """``better``, ``worse``, ``not better`` or ``undecided`` (the module docstring)."""
    if p.lower > margin:
        return "better"
    if p.upper < 0:
        return "worse"
    if p.upper < margin:
        return "not better"
    return "undecided"


def verdict(outcomes: Sequence[str]) -> str:
    """A claim's verdict for one arm from its primary comparisons' outcomes (unwinnable ones left out)."""
    live = [o for o in outcomes if o != "unwinnable"]
    if not live:
        return "not decidable"
    if any(o == "worse" for o in live):
        return "fails"
    if any(o == "not better" for o in live):
        return "not better"
    if all(o == "better" for o in live) and len(live) == len(outcomes):
        return "holds"
    return "undecided"


def winnable(reference_mean: float, margin: float, higher: bool, bound: float | None) -> bool:
    """Whether an arm can beat ``reference_mean`` by ``margin`` without passing the measure's
    ``bound`` (its maximum for higher-is-better, its minimum otherwise)."""
    if bound is None:
        return True
    return reference_mean + margin < bound if higher else reference_mean - margin > bound


# ----------------------------------------------------------------------------------- power


def power(n: int, effect: float, sd: float, margin: float) -> float:
    """The power of the one-sided paired t test of ``advantage > margin`` at ``ALPHA`` with ``n``
    seeds when the true mean advantage is ``effect`` and the paired differences' SD ``sd``."""
    from scipy.stats import nct

    if n < 2:
        return float("nan")
    if sd <= 0:
        return 1.0 if effect > margin else 0.0
    return float(1 - nct.cdf(_t(1 - ALPHA, n - 1), n - 1, (effect - margin) * math.sqrt(n) / sd))


def seeds_needed(effect: float, sd: float, margin: float, target: float = POWER, most: int = 1000) -> int | None:
    """The fewest seeds (>= 2) whose power reaches ``target``; None when even ``most`` do not."""
    for n in range(2, most + 1):
        if power(n, effect, sd, margin) >= target:
            return n
    return None


def detectable(n: int, sd: float, margin: float, target: float = POWER) -> float:
    """The smallest true advantage that ``n`` seeds detect with power ``target`` (bisection)."""
    lo, hi = margin, margin + 20 * max(sd, 1e-12)
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if power(n, mid, sd, margin) >= target else (mid, hi)
    return hi
