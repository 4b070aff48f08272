"""The report of the confirmatory AnchorVAE study (``paper_confirmatory.py``) from its runs on disk.

Reads ``study.json``, ``calibration/*.json`` and ``runs/*.json`` of the study's folder, applies
``paper_confirmatory_rule.py`` to the seeds every arm finished, and writes
``paper_anchorvae_confirmatory.md`` and ``.json`` beside the folder: the power computation and
the margin-against-bound check first, then the measurements, the verdicts, the paired IWAE and
the figures drawn from the kept checkpoints of the first seed whose four checkpoints are on disk.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent  # checkpoint paths in the runs are relative to the project
sys.path.insert(0, str(HERE))

import paper_confirmatory_rule as rule  # noqa: E402

ARMS = ("VAE", "AnchorVAE 0.2", "AnchorVAE 0.1", "control")
NAME = "paper_anchorvae_confirmatory"
TABLE = [
    ("rate_subset", "rate of those 2 (anchors; others: the top-2 latents by rate), nats"),
    ("info_subset", "I(Z_j;X) summed over those 2, nats"),
    ("rate_total", "rate of all 10 latents, nats"),
    ("rate_share_subset", "those 2's share of the total rate"),
    ("probe_subset", "class from those 2: linear probe accuracy"),
    ("knn_subset", "class from those 2: k-NN probe accuracy"),
    ("mi_joint_subset", "I(those 2; class), joint lower bound, nats"),
    ("mi_per_nat", "I(those 2; class) per nat of I(those 2; X)"),
    ("held", "class kept, those 2 held, rest from the prior"),
    ("change_subset", "class-change rate, traversing one of those 2"),
    ("change_rest", "class-change rate, traversing one of the other 8"),
    ("change_gap", "difference of the two class-change rates"),
    ("probe_all", "class from all 10: linear probe accuracy"),
    ("precision_prior", "prior samples: precision"),
    ("recall_prior", "prior samples: recall"),
    ("density_prior", "prior samples: density"),
    ("coverage_prior", "prior samples: coverage"),
    ("class_kl_prior", "prior samples: KL(data's classes || samples'), nats"),
    ("fd_prior_binary", "prior samples: Frechet distance"),
    ("precision_fitted", "fitted-2 samples: precision"),
    ("recall_fitted", "fitted-2 samples: recall"),
    ("density_fitted", "fitted-2 samples: density"),
    ("coverage_fitted", "fitted-2 samples: coverage"),
    ("class_kl_fitted", "fitted-2 samples: KL(data's classes || samples'), nats"),
    ("fd_fitted_binary", "fitted-2 samples: Frechet distance"),
    ("iwae", "held-out IWAE bound (k = 1000, 1000 random test images), nats"),
    ("elbo", "held-out ELBO (same images), nats"),
    ("val_elbo_last", "validation ELBO, last epoch, nats"),
    ("val_elbo_last_quarter_gain", "validation ELBO gain over the last quarter of epochs, nats"),
    ("train_seconds", "training time, s"),
]
REAL = [("precision", "precision"), ("recall", "recall"), ("density", "density"), ("coverage", "coverage"),
        ("class_kl", "KL(data's classes || classifier's reading of real test images), nats"),
        ("fd", "Frechet distance (test against training images)"), ("class_entropy", "H(class) of the test labels, nats"),
        ("classifier_accuracy", "the classifier's held-out accuracy")]


def _read(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def _fmt(values: list[float], digits: int | None = None) -> str:
    if not values:
        return "-"
    m = statistics.fmean(values)
    d = digits if digits is not None else (3 if abs(m) < 10 else 1)
    return f"{m:.{d}f}" if len(values) == 1 else f"{m:.{d}f} ± {statistics.stdev(values):.{d}f}"


def _num(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _bound(e: rule.Endpoint, real: dict) -> float | None:
    if isinstance(e.bound, str):
        return float(real[e.bound.split(":", 1)[1]])
    return e.bound


def _margin(e: rule.Endpoint, reference_mean: float) -> float:
    if isinstance(e.margin, str):
        return abs(reference_mean) * float(e.margin.rstrip("%")) / 100
    return float(e.margin)


def compare(by: dict, seeds: list[int], arm: str, ref: str, e: rule.Endpoint, m: int, real: dict) -> dict | None:
    pairs = [(by[(arm, s)].get(e.key), by[(ref, s)].get(e.key)) for s in seeds]
    pairs = [(a, b) for a, b in pairs if _num(a) and _num(b)]
    if len(pairs) < 2:
        return None
    sign = 1 if e.higher else -1
    ref_mean = statistics.fmean(b for _, b in pairs)
    margin, bound = _margin(e, ref_mean), _bound(e, real)
    p = rule.paired([sign * (a - b) for a, b in pairs], m)
    can = rule.winnable(ref_mean, margin, e.higher, bound)
    return dict(key=e.key, label=e.label, arm=arm, reference=ref, n=p.n, diff=p.diff, se=p.se, lower=p.lower,
                upper=p.upper, m=m, margin=margin, bound=bound, reference_mean=ref_mean, winnable=can,
                outcome=rule.outcome(p, margin) if can else "unwinnable")


def _line(c: dict) -> str:
    d = 3 if abs(c["diff"]) < 10 else 1
    return (f"{c['key']}: {c['diff']:+.{d}f} (SE {c['se']:.{d}f}; 95 % lower {c['lower']:+.{d}f}, "
            f"{100 * (1 - rule.ALPHA / c['m']):.2f} % upper {c['upper']:+.{d}f}; margin {c['margin']:.{d}f}) "
            f"**{c['outcome']}**")


def paired_iwae(by: dict, seeds: list[int], arm: str, ref: str = "VAE") -> dict | None:
    """The IWAE difference ``arm - ref``, paired by seed and by image: its mean over seeds, the SE
    across seeds, and the mean within-seed SE from the images (how much the 1,000-image sample adds)."""
    per_seed, within = [], []
    for s in seeds:
        a, b = by[(arm, s)].get("iwae_images"), by[(ref, s)].get("iwae_images")
        if not a or not b or len(a) != len(b):
            continue
        d = [x - y for x, y in zip(a, b)]
        per_seed.append(statistics.fmean(d))
        within.append(statistics.stdev(d) / math.sqrt(len(d)))
    if len(per_seed) < 2:
        return None
    return dict(n=len(per_seed), diff=statistics.fmean(per_seed),
                se_seeds=statistics.stdev(per_seed) / math.sqrt(len(per_seed)), se_images=statistics.fmean(within))


def verdicts(by: dict, seeds: list[int], real: dict) -> list[dict]:
    out = []
    for claim in rule.CLAIMS:
        m_primary = len(claim.primary) * len(claim.arms)
        m_secondary = max(1, len(claim.secondary) * len(claim.arms))
        cases = []
        for arm in claim.arms:
            prim = [compare(by, seeds, arm, claim.reference, e, m_primary, real) for e in claim.primary]
            sec = [compare(by, seeds, arm, claim.reference, e, m_secondary, real) for e in claim.secondary]
            ok = all(p is not None for p in prim)
            cases.append(dict(arm=arm, verdict=rule.verdict([p["outcome"] for p in prim]) if ok else "not measured",
                              primary=[p for p in prim if p], secondary=[s for s in sec if s],
                              price=paired_iwae(by, seeds, arm, claim.reference)))
        out.append(dict(id=claim.id, title=claim.title, reference=claim.reference, cases=cases))
    return out


def figures(study: dict, by: dict, seed: int, out: Path, data_root: str = "data") -> list[str]:
    """Traversals of those 2 latents and prior / fitted-2 sample grids per arm from the kept
    checkpoints of ``seed``; the names of the pictures written (missing checkpoints are skipped)."""
    import numpy as np
    import torch

    from tcx import visualize as viz
    from tcx.aggregate_density import AggregateDensity
    from tcx.callbacks.encoding import encode_posteriors
    from tcx.models import load_model

    written, train = [], None
    for arm in ARMS:
        r = by.get((arm, seed))
        if not r or not (ROOT / r.get("checkpoint", "")).is_file():
            continue
        codes = (ROOT / r["checkpoint"]).with_suffix(".npz")
        if not codes.is_file():
            continue
        tag = arm.replace(" ", "_")
        model = load_model(ROOT / r["checkpoint"])
        z = np.load(codes)
        m_te = torch.from_numpy(z["test_codes"])
        if train is None:
            from paper_anchorvae import make_datamodule

            dm = make_datamodule("mnist", study["budget"], data_root)
            train = dm.split_data("train", max_items=study["budget"]["num_fit"])[0]
        with torch.no_grad():  # the posterior (means and variances) of the training images, as the run fitted it
            parts = [encode_posteriors(model, xb) for xb in train.split(500)]
        m_tr, v_tr = torch.cat([m for m, _ in parts]), torch.cat([v for _, v in parts])
        info = [float(v) for v in str(r["info_per_latent"]).split(",")]
        subset = [int(j) for j in str(r["subset"]).split(",")]
        # anchors: the anchors; other arms: their two most informative latents by I(Z_j;X)
        shown = subset if arm.startswith("AnchorVAE") else sorted(range(len(info)), key=lambda j: -info[j])[:2]
        with torch.no_grad():
            base = m_te[:4]
            values = viz.traversal_values(m_te, steps=9, quantile=0.02)
            trav = viz.latent_traversal(model.decode, base, values, shown)
            rows = trav.reshape(-1, *trav.shape[2:])
            labels = [f"z{j}" for j in shown for _ in range(trav.shape[1])]
            name = f"{NAME}_{tag}_traversal.png"
            viz.save_png(viz.image_grid(rows, row_labels=labels), out / name)
            written.append(name)
            g = torch.Generator().manual_seed(0)
            prior = model.decode(torch.randn(32, model.latent_dim, generator=g)).float()
            density = AggregateDensity.fit(m_tr, v_tr, subset, 10, seed=0)
            zf = torch.randn(32, model.latent_dim, generator=g)
            zf[:, list(density.indices)] = density.sample(32, generator=g)
            fitted = model.decode(zf).float()
            grid = torch.cat([prior.view(4, 8, *prior.shape[1:]), fitted.view(4, 8, *fitted.shape[1:])], 1)
            name = f"{NAME}_{tag}_samples.png"
            viz.save_png(viz.image_grid(grid, groups=2, group_labels=["prior", "fitted-2"], scale=2), out / name)
            written.append(name)
    return written


def write(folder: Path, runs_dir: Path, out: Path) -> None:
    study = json.loads((folder / "study.json").read_text())
    runs = list(_read(folder / "runs").values())
    cal = list(_read(folder / "calibration").values())
    by = {(r["arm"], r["seed"]): r for r in runs}
    seeds_all = sorted({r["seed"] for r in runs})
    seeds = [s for s in seeds_all if all((a, s) in by for a in ARMS)]
    real = study["real"]
    beta = study.get("calibration", {}).get("beta")
    found = verdicts(by, seeds, real) if len(seeds) >= 2 else []
    wall = sum(i.get("wall_seconds", 0) for i in study.get("invocations", []))
    commits = sorted({i.get("commit", "?")[:7] for i in study.get("invocations", [])})
    n_planned = study["seeds"]
    L = [
        "# The AnchorVAE paper's claims: the confirmatory study",
        "",
        f"Command: `python benchmarks/paper_confirmatory.py` (`--resume` goes on after a stop; after `make mnist`). "
        f"Finished: {len(seeds)} of {n_planned} paired seeds (all four arms), {len(runs)} of {4 * n_planned} "
        f"confirmatory runs, {len(cal)} of {len(rule.CONTROL_BETAS)} calibration runs. Wall time"
        f"{' so far' if len(seeds) < n_planned else ''} {wall / 60:.0f} min over {len(study.get('invocations', []))} "
        "invocation(s) (each counted to its last finished run, or its last minute since the runner's heartbeat: "
        "a process killed before either adds minutes not in this figure), "
        f"{study['workers']} processes of {study['threads']} thread(s) at nice 19 on 2 shared cores; CPU flags: "
        f"{study['cpu_flags']}; code at {', '.join(commits)}. fp32 (`32-true`) throughout.",
        "",
        "The pilot (`paper_anchorvae.md`, 5 unpaired seeds, Welch intervals) is kept as it was; its paired "
        "per-seed differences size this study. Models: the pilot's (latent_dim 10, MLP 512-256 encoder and "
        "decoder, Bernoulli likelihood, Adam 1e-3, batch 128, 30 epochs) on the full binarized MNIST (55,000 "
        "training images after 5,000 for validation; measured on the official 10,000 test images). Seeds "
        f"{rule.SEEDS_FROM} onwards (the pilot used 0-4); one seed gives every arm the same initialisation and "
        "batch order. Arms: VAE; AnchorVAE with 2 anchors at anchor_beta 0.2 and 0.1; the control, a beta-VAE "
        f"whose beta (< 1) spreads AnchorVAE 0.1's extra total rate over all latents: beta = {beta}.",
        "",
        "## The rule (`benchmarks/paper_confirmatory_rule.py`, committed before every run)",
        "",
        "Each comparison is paired by seed; the difference is oriented so that positive favours the claim. "
        "**better**: the one-sided 95 % lower bound is above +margin. **worse**: the one-sided upper bound at "
        "1 - 0.05/m (Bonferroni over the m comparisons of the claim's primary, or secondary, endpoints) is "
        "below 0. **not better**: that upper bound is below +margin (equivalent, or worse within the margin). "
        "**undecided**: otherwise. A claim **holds** for an arm when every primary comparison is better (an "
        "intersection-union test: 5 % without correction), **fails** when one is worse, is **not better** when "
        "one is not better, else undecided. Secondary endpoints get the same outcomes and decide nothing. A "
        "comparison whose reference mean is within its margin of the measure's bound (its maximum, or the "
        "data's own value) is **unwinnable** and decides nothing.",
        "",
        "| claim | arms against | endpoint | primary | higher is better | margin | bound |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in rule.CLAIMS:
        for kind, eps in (("primary", c.primary), ("secondary", c.secondary)):
            for e in eps:
                L.append(f"| {c.id} {c.title} | {', '.join(c.arms)} against {c.reference} | {e.key}: {e.label} | "
                         f"{'yes' if kind == 'primary' else 'no'} | {'yes' if e.higher else 'no'} | {e.margin} | "
                         f"{'-' if e.bound is None else e.bound if isinstance(e.bound, str) else f'{e.bound:.3f}'} |")
    L += ["", "## The power computation (from the pilot, before the runs)", "",
          f"One-sided paired t test of advantage > margin at 5 %, the pilot's mean paired difference taken as the "
          f"true effect (optimistic: a pilot's winner's curse), 80 % power; seeds = max({rule.MIN_SEEDS}, the "
          f"largest need) capped by the budget at {rule.MAX_SEEDS}: **{study['sizing']['seeds']} seeds**.", "",
          "| claim | arm | endpoint | pilot seeds | pilot advantage | paired SD | margin | seeds for 80 % | power at "
          f"{study['sizing']['seeds']} |", "|---|---|---|---|---|---|---|---|---|"]
    for r in study["sizing"]["rows"]:
        if r["pilot"]:
            need = r["needed"] if r["needed"] is not None else "> 1000"
            L.append(f"| {r['claim']} | {r['arm']} | {r['key']} | {r['n_pilot']} | {r['effect']:+.4f} | "
                     f"{r['sd']:.4f} | {r['margin']:.3f} | {need} | {r['power_at_n']:.2f} |")
        else:
            L.append(f"| {r['claim']} | {r['arm']} | {r['key']} | - | no pilot value | - | - | - | see below |")
    if len(seeds) >= 2:
        L += ["", "For the endpoints without a pilot value, the smallest true advantage that the seeds run would "
              "detect with 80 % power, at the SD of the paired differences observed here (a sensitivity figure, "
              "not a power claim):", ""]
        for claim in rule.CLAIMS:
            for arm in claim.arms:
                for e in claim.primary:
                    if any(r["claim"] == claim.id and r["arm"] == arm and r["key"] == e.key and r["pilot"]
                           for r in study["sizing"]["rows"]):
                        continue
                    c = compare(by, seeds, arm, claim.reference, e, 1, real)
                    if c:
                        sd = c["se"] * math.sqrt(c["n"])
                        L.append(f"- {claim.id}, {arm}, {e.key}: paired SD {sd:.4f}, detectable advantage "
                                 f"{rule.detectable(c['n'], sd, c['margin']):+.4f} (margin {c['margin']:.3f}).")
    # margin against bound
    L += ["", "## Margins against the measures' bounds", "",
          "| claim | endpoint | reference | reference mean | margin | bound | winnable |", "|---|---|---|---|---|---|---|"]
    for claim in rule.CLAIMS:
        for e in (*claim.primary, *claim.secondary):
            vals = [by[(claim.reference, s)].get(e.key) for s in seeds]
            vals = [v for v in vals if _num(v)]
            if not vals:
                continue
            mean = statistics.fmean(vals)
            margin, bound = _margin(e, mean), _bound(e, real)
            L.append(f"| {claim.id} | {e.key} | {claim.reference} | {mean:.4f} | {margin:.4f} | "
                     f"{'-' if bound is None else f'{bound:.4f}'} | "
                     f"{'yes' if rule.winnable(mean, margin, e.higher, bound) else '**no**'} |")
    L += ["", "The data's own values (real training against real test images, the same sample sizes, k and "
          "classifier as the runs):", ""]
    L += [f"- {label}: {real[k]:.4f}" for k, label in REAL if k in real]
    # calibration
    cal_info = study.get("calibration")
    if cal_info:
        L += ["", "## The control's beta", "",
              f"One run per candidate at seed {rule.CALIBRATION_SEED} (no confirmatory seed); the beta whose total "
              f"rate on the test images is closest to the pilot's AnchorVAE 0.1 mean ({cal_info['target']:.2f} nats):", "",
              "| beta | total rate, nats |", "|---|---|"]
        L += [f"| {b} | {r:.2f} |" for b, r in sorted(cal_info["rates"].items(), key=lambda kv: float(kv[0]))]
        match = compare(by, seeds, "control", "AnchorVAE 0.1", rule.Endpoint("rate_total", True, 0.0), 1, real)
        if match:
            L += ["", f"Chosen: beta = {cal_info['beta']}. In the confirmatory runs, control minus AnchorVAE 0.1 "
                  f"total rate: {match['diff']:+.2f} nats (SE {match['se']:.2f}, {match['n']} paired seeds)."]
    # the table
    L += ["", "## Measurements", "", "Mean ± SD over the paired seeds.", "",
          "| measurement | " + " | ".join(ARMS) + " |", "|---|" + "---|" * len(ARMS)]
    for key, label in TABLE:
        cells = [_fmt([by[(a, s)][key] for s in seeds if _num(by[(a, s)].get(key))]) for a in ARMS]
        if any(c != "-" for c in cells):
            L.append(f"| {label} | " + " | ".join(cells) + " |")
    # verdicts
    L += ["", "## Verdicts", ""]
    if found and len(seeds) < n_planned:
        L += [f"**Interim: {len(seeds)} of the {n_planned} paired seeds the power computation fixed.** The rule "
              f"decides at {n_planned} seeds; what follows is where the comparisons stand now, not the study's "
              "verdicts.", ""]
    if not found:
        L.append("Fewer than 2 paired seeds have finished: no verdict yet.")
    for v in found:
        L.append(f"**Claim {v['id']}. {v['title']}** (against {v['reference']}): "
                 + ", ".join(f"{c['arm']}: **{c['verdict']}**" for c in v["cases"]) + ".")
        L.append("")
        for c in v["cases"]:
            price = c["price"]
            ptxt = (f"IWAE {price['diff']:+.2f} nats against {v['reference']} (SE {price['se_seeds']:.2f} across seeds, "
                    f"{price['se_images']:.2f} from the images)" if price else "IWAE: not measured")
            L.append(f"- {c['arm']}: {c['verdict']}; price: {ptxt}.")
            L += [f"  - primary {_line(p)}" for p in c["primary"]]
            L += [f"  - secondary {_line(s)}" for s in c["secondary"]]
        L.append("")
    # paired IWAE
    L += ["## Held-out likelihood, paired", "",
          "IWAE (k = 1000) on the same 1,000 test images, drawn at random (seed 12345) from the whole test split; "
          "differences paired by seed and by image.", "",
          "| arm | minus VAE, nats | SE across seeds | SE from the images (mean within seed) | seeds |", "|---|---|---|---|---|"]
    for a in ARMS[1:]:
        p = paired_iwae(by, seeds, a)
        if p:
            L.append(f"| {a} | {p['diff']:+.3f} | {p['se_seeds']:.3f} | {p['se_images']:.3f} | {p['n']} |")
    # figures
    kept = [s for s in seeds if all((ROOT / by[(a, s)].get("checkpoint", "")).is_file() for a in ARMS)]
    if kept:
        names = figures(study, by, kept[0], out)
        if names:
            L += ["", "## Figures from the kept checkpoints (seed " + str(kept[0]) + ")", "",
                  "Traversals: rows are a latent and 4 test inputs, columns the latent from its 2 % to its 98 % "
                  "quantile on test codes; AnchorVAE shows its anchors, the other arms their two latents of largest "
                  "I(Z_j;X). Samples: the left 8 columns from the prior, the right 8 with the 2 latents drawn from "
                  "the mixture fitted to their aggregate posterior (decoded means).", ""]
            L += [f"- {n.split(NAME + '_')[1].rsplit('_', 1)[0].replace('_', ' ')} ({n.rsplit('_', 1)[1][:-4]}): "
                  f"![{n}]({n})" for n in names]
    L += ["", "## What these verdicts rest on", "",
          "- One dataset (MNIST), one network (MLP 512-256), 30 epochs: the pilot's budget; other settings may behave "
          "differently.",
          "- Sample realism and richness are read in the features of one small classifier tcx trains (its accuracy "
          "is above): precision, recall, density and coverage there, not in Inception features.",
          "- 'Those 2' for the VAE and the control are their two latents of largest held-out rate.",
          f"- Power: the study runs at most {rule.MAX_SEEDS} seeds (the 4-hour budget); where the power table "
          "shows less than 80 %, an undecided verdict is what these seeds cannot settle, not a result either way.",
          ""]
    (out / f"{NAME}.md").write_text("\n".join(L) + "\n")
    saved = dict(study=study, paired_seeds=seeds, verdicts=found,
                 runs=[{k: v for k, v in r.items() if k not in ("iwae_images", "val_elbo_curve")} for r in runs])
    (out / f"{NAME}.json").write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")
