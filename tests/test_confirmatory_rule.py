"""The confirmatory study's rule (benchmarks/paper_confirmatory_rule.py): the paired bounds against
scipy, the four outcomes, the intersection-union verdict, the bound check and the power."""

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import paper_confirmatory_rule as rule  # noqa: E402


def test_paired_bounds_are_one_sided_t_bounds():
    from scipy import stats

    d = [0.05, 0.07, 0.02, 0.09, 0.04, 0.06]
    p = rule.paired(d, m=4)
    mean, se = sum(d) / 6, stats.sem(d)
    assert p.diff == pytest.approx(mean) and p.se == pytest.approx(se)
    assert p.lower == pytest.approx(mean - stats.t.ppf(0.95, 5) * se)
    assert p.upper == pytest.approx(mean + stats.t.ppf(1 - 0.05 / 4, 5) * se)
    # the one-sided 95 % lower bound is the lower end of scipy's two-sided 90 % interval
    assert p.lower == pytest.approx(stats.t.interval(0.90, 5, loc=mean, scale=se)[0])
    with pytest.raises(ValueError):
        rule.paired([1.0], m=1)


def test_the_four_outcomes_and_the_verdict():
    P = rule.Paired
    assert rule.outcome(P(10, 0.10, 0.01, 0.05, 0.15, 2), 0.02) == "better"
    assert rule.outcome(P(10, -0.10, 0.01, -0.12, -0.05, 2), 0.02) == "worse"
    assert rule.outcome(P(10, 0.00, 0.005, -0.01, 0.01, 2), 0.02) == "not better"
    assert rule.outcome(P(10, 0.02, 0.02, -0.01, 0.06, 2), 0.02) == "undecided"
    assert rule.verdict(["better", "better"]) == "holds"
    assert rule.verdict(["better", "undecided"]) == "undecided"
    assert rule.verdict(["better", "not better"]) == "not better"
    assert rule.verdict(["not better", "worse"]) == "fails"
    # an unwinnable comparison decides nothing, and a claim cannot hold without it
    assert rule.verdict(["better", "unwinnable"]) == "undecided"
    assert rule.verdict(["unwinnable"]) == "not decidable"


def test_a_margin_beyond_the_measures_bound_is_unwinnable():
    assert rule.winnable(0.87, 0.02, True, 0.88) is False  # precision ceiling: the data's own value
    assert rule.winnable(0.80, 0.02, True, 0.88) is True
    assert rule.winnable(2.5, 0.5, False, 2.08) is False  # a distance floor
    assert rule.winnable(5.0, 1.0, True, None) is True
    # every declared bound is a number or names a real-vs-real value the study records
    real = {"precision", "recall", "density", "coverage", "class_kl", "fd", "class_entropy"}
    for claim in rule.CLAIMS:
        for e in (*claim.primary, *claim.secondary):
            assert e.bound is None or isinstance(e.bound, float) or e.bound.split(":", 1)[1] in real


def test_power_matches_the_noncentral_t_and_grows_with_seeds():
    from scipy import stats

    n, effect, sd, margin = 10, 0.08, 0.03, 0.02
    crit = stats.t.ppf(0.95, n - 1)
    want = 1 - stats.nct.cdf(crit, n - 1, (effect - margin) * math.sqrt(n) / sd)
    assert rule.power(n, effect, sd, margin) == pytest.approx(want)
    assert rule.power(5, effect, sd, margin) < rule.power(10, effect, sd, margin) < rule.power(20, effect, sd, margin)
    need = rule.seeds_needed(effect, sd, margin)
    assert rule.power(need, effect, sd, margin) >= 0.8 > rule.power(need - 1, effect, sd, margin)
    assert rule.seeds_needed(0.01, 0.03, 0.02) is None  # an effect inside the margin is never detected
    mde = rule.detectable(12, sd, margin)
    assert rule.power(12, mde, sd, margin) == pytest.approx(0.8, abs=1e-3)


def test_the_report_orders_power_and_bounds_before_the_tables_and_applies_the_rule(tmp_path):
    import json

    import report_confirmatory as report

    folder = tmp_path / "study"
    (folder / "runs").mkdir(parents=True)
    real = dict(precision=0.88, recall=0.89, density=0.98, coverage=0.96, class_kl=0.0004, fd=2.0,
                class_entropy=2.30, classifier_accuracy=0.976)
    study = dict(seeds=3, real=real, workers=2, threads=1, cpu_flags="avx2", invocations=[dict(commit="abc1234",
                 wall_seconds=60.0)], sizing=dict(seeds=12, rows=[dict(claim="2", arm="AnchorVAE 0.1",
                 key="probe_subset", pilot=True, n_pilot=5, effect=0.079, sd=0.027, margin=0.02, needed=4,
                 power_at_n=1.0)]), calibration=dict(target=22.2, rates={"0.8": 22.0, "0.9": 20.5}, beta=0.8))
    (folder / "study.json").write_text(json.dumps(study))
    base = dict(rate_subset=5.0, info_subset=4.9, rate_total=19.0, rate_share_subset=0.26, probe_subset=0.35,
                knn_subset=0.35, mi_joint_subset=0.6, held=0.23, change_subset=0.1, change_gap=0.05,
                mi_per_nat=0.12, precision_prior=0.60, recall_prior=0.50, iwae=-95.0)
    for s, noise in zip((100, 101, 102), (0.0, 0.01, -0.01)):
        for arm, shift in (("VAE", 0.0), ("AnchorVAE 0.2", 1.0), ("AnchorVAE 0.1", 2.0), ("control", 0.5)):
            r = {k: v + noise for k, v in base.items()}
            r["rate_subset"] += 2 * shift  # the anchors: +2 and +4 nats, clearly better than 1 nat
            r["probe_subset"] += 0.1 * shift
            r["precision_prior"] -= 0.05 * shift  # samples clearly worse
            r.update(arm=arm, seed=s, iwae_images=[-95.0 - shift, -94.0 - shift], subset="0,1")
            (folder / "runs" / f"{arm.replace(' ', '_')}_seed{s}.json").write_text(json.dumps(r))
    report.write(folder, tmp_path / "none", tmp_path)
    text = (tmp_path / "paper_anchorvae_confirmatory.md").read_text()
    assert text.index("## The power computation") < text.index("## Margins against") < text.index("## Measurements")
    saved = json.loads((tmp_path / "paper_anchorvae_confirmatory.json").read_text())
    got = {(v["id"], c["arm"]): c["verdict"] for v in saved["verdicts"] for c in v["cases"]}
    # claim 1's info_subset has the same value in every arm: not better, so claim 1 is not better
    assert got[("1", "AnchorVAE 0.1")] == "not better"
    assert got[("2", "AnchorVAE 0.1")] == "holds" and got[("2", "AnchorVAE 0.2")] == "holds"
    assert got[("3", "AnchorVAE 0.1")] == "fails"
    price = saved["verdicts"][0]["cases"][1]["price"]
    assert price["diff"] == pytest.approx(-2.0) and price["n"] == 3
