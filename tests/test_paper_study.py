"""The AnchorVAE study's decision rule (benchmarks/paper_rule.py) and its report, on known answers."""

from __future__ import annotations

import math
import sys
from argparse import Namespace
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import paper_anchorvae as study  # noqa: E402
import paper_rule as rule  # noqa: E402


def test_welch_interval_matches_the_hand_computation_and_scipy():
    from scipy import stats

    a, b = [1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 4.0, 6.0, 8.0, 10.0]
    iv = rule.welch_interval(a, b, 0.95)
    # var(a)/5 = 0.5, var(b)/5 = 2: se = sqrt(2.5), df = 2.5^2 / (0.5^2/4 + 2^2/4) = 5.882...
    assert iv.diff == pytest.approx(-3.0)
    assert iv.df == pytest.approx(6.25 / 1.0625)
    half = stats.t.ppf(0.975, 6.25 / 1.0625) * math.sqrt(2.5)
    assert (iv.lo, iv.hi) == pytest.approx((-3.0 - half, -3.0 + half))
    ref = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (iv.lo, iv.hi) == pytest.approx((ref.low, ref.high))
    # a wider level gives a wider interval; the orientation flips the sign for lower-is-better
    wide = rule.welch_interval(a, b, rule.level_for(10))
    assert wide.lo < iv.lo and wide.hi > iv.hi and rule.level_for(10) == pytest.approx(0.995)
    flipped = rule.oriented(a, b, False, 0.95)
    assert (flipped.diff, flipped.lo, flipped.hi) == pytest.approx((3.0, -iv.hi, -iv.lo))
    with pytest.raises(ValueError, match="at least 2"):
        rule.welch_interval([1.0], b, 0.95)


def test_decide_and_combine():
    iv = lambda lo, hi: rule.Interval((lo + hi) / 2, lo, hi, 0.95, 8.0)  # noqa: E731
    assert rule.decide(iv(0.05, 0.2), 0.02) == "better"
    assert rule.decide(iv(-0.01, 0.015), 0.02) == "not better"  # inside the margin
    assert rule.decide(iv(-0.3, -0.1), 0.02) == "not better"  # against the claim
    assert rule.decide(iv(0.0, 0.1), 0.02) == "undecided"
    assert rule.combine(["better", "better"]) == "holds"
    assert rule.combine(["better", "undecided"]) == "undecided"
    assert rule.combine(["undecided", "not better", "better"]) == "fails"
    assert rule.combine([]) == "not measured"


def test_closest_subset():
    info = [3.0, 1.0, 0.5, 2.2]
    assert study.closest_subset(info, 3.05) == [0]  # 3.0 is closer than {1, 3} = 3.2
    assert study.closest_subset(info, 3.25) == [1, 3]
    assert study.closest_subset(info, 10.0) == [0, 1, 3]  # the whole set is never a candidate
    assert study.closest_subset(info, 0.0) == [2]


def _run(model, seed, **values):
    base = dict(dataset="mnist", model=model, seed=seed)
    base.update(values)
    return base


def _results(anchor_shift: float, noise: float = 0.002):
    """Five seeds of a VAE and one AnchorVAE arm; the arm's info and rate exceed the VAE's by
    ``anchor_shift`` nats, every other measure equal up to ``noise``."""
    out = []
    for s in range(5):
        e = noise * (s - 2)
        common = dict(probe_subset=0.5 + e, knn_subset=0.5 + e, held=0.6 + e, mi_joint_subset=0.4 + e,
                      entropy_prior=2.2 + e, fd_prior=100 + e, fd_prior_binary=90 + e, iwae=-95 + e)
        for key in ("fitted", "fitted_all"):
            common.update({f"entropy_{key}": 2.2 + e, f"fd_{key}": 80 + e, f"fd_{key}_binary": 70 + e})
        out.append(_run("VAE", s, rate_subset=5 + e, info_subset=4 + e, **common))
        out.append(_run("AnchorVAE 0.2", s, rate_subset=5 + anchor_shift - e, info_subset=4 + anchor_shift - e, **common))
    return out


def test_the_verdicts_follow_the_rule():
    matched = {"mnist": {"AnchorVAE 0.2": {"probe": [0.5 + 0.002 * k for k in range(-2, 3)],
                                           "knn": [0.5] * 4 + [0.502], "mi_joint": [0.4] * 4 + [0.402]}}}
    found = {v["id"]: v for v in study.verdicts(_results(10.0), matched, ["mnist"], ["AnchorVAE 0.2"])}
    assert found["1"]["cases"][0]["verdict"] == "holds"  # +10 nats, clear of the 1-nat margin
    assert found["1"]["m"] == 2 and found["1"]["level"] == pytest.approx(0.975)
    for cid in ("2a", "2b", "3a", "3b", "3c"):  # equal up to a small noise: inside the margins
        assert found[cid]["cases"][0]["verdict"] == "fails", cid
    assert "IWAE vs VAE +0.00" in found["1"]["cases"][0]["price"]
    # a shift the seeds' spread cannot separate from the margin
    loose = {v["id"]: v for v in study.verdicts(_results(1.05, noise=0.5), matched, ["mnist"], ["AnchorVAE 0.2"])}
    assert loose["1"]["cases"][0]["verdict"] == "undecided"


def test_the_report_prints_the_rule_the_intervals_and_the_price(tmp_path):
    results = _results(10.0)
    for r in results:
        r["val_elbo_curve"] = [-120.0, -100.0, -97.0, -96.5]
        r["val_elbo_last_quarter_gain"] = 0.5
    args = Namespace(datasets=["mnist"], budget="smoke", accelerator="cpu", workers=2, threads=1,
                     cpu_flags="avx2", out=str(tmp_path))
    study.write_report(results, {}, args, dict(study.BUDGETS["smoke"]), 60.0, len(results), len(results))
    text = (tmp_path / "paper_anchorvae.md").read_text()
    assert "## The decision rule" in text and "Bonferroni" in text
    assert "**Claim 1. Anchors carry more information:** AnchorVAE 0.2 (mnist): **holds**" in text
    assert "rate_subset vs VAE rate_subset: +10.0 [" in text and "price: IWAE vs VAE +0.00 [" in text
    assert "not measured" in text  # 2b without matched codes says so instead of deciding
    assert (tmp_path / "paper_anchorvae_mnist_curves.png").stat().st_size > 1000
    assert "+0.50 to +0.50 nats" in text
