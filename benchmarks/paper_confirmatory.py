"""The confirmatory AnchorVAE study: the corrected rule, paired seeds sized by power, models kept.

Trains VAE, AnchorVAE 0.2 and 0.1 and a same-total-rate control (a beta-VAE with beta < 1, its
beta calibrated first) on the full binarized MNIST with the pilot's networks and budget, one
seed after another (each seed gives every arm the same initialisation and batch order), keeps
every checkpoint, measures each model on the test split and judges the claims by
``benchmarks/paper_confirmatory_rule.py``. Every finished run's JSON lands in
``benchmarks/results/paper_anchorvae_confirmatory/``, so ``--resume`` goes on where it stopped.

    make mnist                                              # once
    python benchmarks/paper_confirmatory.py                 # sizes, calibrates, runs, reports
    python benchmarks/paper_confirmatory.py --resume        # goes on after an interruption
    python benchmarks/paper_confirmatory.py --report-only   # the report from the runs on disk

Details: benchmarks/README.md#paper_confirmatorypy
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

import paper_confirmatory_rule as rule  # noqa: E402
from paper_anchorvae import cpu_flags, make_datamodule  # noqa: E402

NAME = "paper_anchorvae_confirmatory"
PILOT = RESULTS / "paper_anchorvae.json"
LATENT_DIM = 10
BUDGETS = {
    # the pilot's small budget (MLP 512-256, 30 epochs, fp32), every sample and test image measured
    "small": dict(network="mlp", hidden_dims=[512, 256], batch_size=128, mnist_epochs=30,
                  num_points=10000, num_fit=10000, num_samples=5000, real_points=5000, iwae_k=1000,
                  iwae_images=1000, change_points=1000, change_steps=9, pr_k=3, dc_k=5,
                  classifier_epochs=3, classifier_train=None),
    # a few minutes: checks the whole pipeline (not a result)
    "smoke": dict(network="mlp", hidden_dims=[64], batch_size=256, mnist_epochs=1, mnist_epoch_size=4096,
                  num_points=600, num_fit=1000, num_samples=300, real_points=300, iwae_k=8, iwae_images=50,
                  change_points=50, change_steps=5, pr_k=3, dc_k=5, classifier_epochs=1, classifier_train=5000),
}


def arms(control_beta: float | None) -> list[tuple[str, str, dict]]:
    out = [("VAE", "tcx.models.VAE", {}),
           ("AnchorVAE 0.2", "tcx.models.AnchorVAE", {"anchors": 2, "anchor_beta": 0.2}),
           ("AnchorVAE 0.1", "tcx.models.AnchorVAE", {"anchors": 2, "anchor_beta": 0.1})]
    if control_beta is not None:
        out.append(("control", "tcx.models.BetaVAE", {"beta": control_beta}))
    return out


def run_name(arm: str, seed: int, kwargs: dict | None = None) -> str:
    tag = arm.replace(" ", "_")
    if arm.startswith("calibration"):
        tag = f"calibration_beta{kwargs['beta']}" if kwargs else tag
    return f"{tag}_seed{seed}"


# ------------------------------------------------------------------------------- power


def sizing(pilot_path: Path = PILOT) -> dict:
    """Seeds per arm from the pilot's paired differences (same seeds in every arm): for each primary
    endpoint with a pilot value, the seeds for 80 % power at the pilot's mean and SD; the study runs
    max(MIN_SEEDS, the largest) capped by MAX_SEEDS. Endpoints without a pilot value are listed."""
    pilot = json.loads(pilot_path.read_text())
    by = {(r["model"], r["seed"]): r for r in pilot["runs"] if r.get("dataset", "mnist") == "mnist"}
    seeds = sorted({s for (_, s) in by})
    rows = []
    for claim in rule.CLAIMS:
        for arm in claim.arms:
            for e in claim.primary:
                ref = "VAE" if claim.reference == "VAE" else None
                pairs = [(by[(arm, s)].get(e.key), by[(ref, s)].get(e.key)) for s in seeds
                         if ref and (arm, s) in by and (ref, s) in by]
                pairs = [(a, b) for a, b in pairs if isinstance(a, (int, float)) and isinstance(b, (int, float))]
                if len(pairs) < 2:
                    rows.append(dict(claim=claim.id, arm=arm, key=e.key, pilot=False))
                    continue
                sign = 1 if e.higher else -1
                diffs = [sign * (a - b) for a, b in pairs]
                ref_mean = statistics.fmean(b for _, b in pairs)
                margin = _margin(e, ref_mean)
                effect, sd = statistics.fmean(diffs), statistics.stdev(diffs)
                rows.append(dict(claim=claim.id, arm=arm, key=e.key, pilot=True, n_pilot=len(pairs), effect=effect,
                                 sd=sd, margin=margin, needed=rule.seeds_needed(effect, sd, margin)))
    needed = [r["needed"] if r["needed"] is not None else 10**9 for r in rows if r["pilot"]]
    n = min(max([rule.MIN_SEEDS, *needed]), rule.MAX_SEEDS)
    for r in rows:
        if r["pilot"]:
            r["power_at_n"] = rule.power(n, r["effect"], r["sd"], r["margin"])
    return dict(seeds=n, rows=rows)


def _margin(e: rule.Endpoint, reference_mean: float) -> float:
    if isinstance(e.margin, str):
        return abs(reference_mean) * float(e.margin.rstrip("%")) / 100
    return float(e.margin)


# --------------------------------------------------------------------------------- jobs


def _quality(budget: dict):
    from tcx.callbacks import QualityMetrics

    # IWAE is measured by run_job on a seeded random sample of the whole test split (iwae_k=1 here)
    return QualityMetrics(num_points=budget["num_points"], num_fit=budget["num_fit"],
                          num_samples=budget["num_samples"], iwae_k=1, iwae_points=1,
                          classifier_epochs=budget["classifier_epochs"],
                          classifier_train=budget["classifier_train"], seed=0)


def _encode(model, x, batch_size: int = 500):
    import torch

    from tcx.callbacks.encoding import encode_posteriors

    parts = [encode_posteriors(model, xb) for xb in x.split(batch_size)]
    return torch.cat([m for m, _ in parts]), torch.cat([v for _, v in parts])


def real_floor(budget: dict, data_root: str) -> dict:
    """The data's own values: real training images against real test images, in the classifier's
    features, with the sample sizes and seeds the runs use."""
    import torch

    from tcx.metrics import class_divergence, density_coverage, frechet_distance, precision_recall

    dm = make_datamodule("mnist", budget, data_root)
    clf = _quality(budget).classifier(dm)
    x_te, y_te = dm.split_data("test", max_items=budget["num_points"])
    x_tr, _ = dm.split_data("train", max_items=budget["num_fit"])
    n = budget["real_points"]
    te = torch.randperm(len(x_te), generator=torch.Generator().manual_seed(7))[:n]
    tr = torch.randperm(len(x_tr), generator=torch.Generator().manual_seed(8))[:n]
    f_te, p_te = clf.evaluate(x_te[te])
    f_tr, _ = clf.evaluate(x_tr[tr])
    counts = torch.bincount(y_te.long(), minlength=10).double()
    freq = counts / counts.sum()
    out = dict(precision_recall(f_te, f_tr, budget["pr_k"]), **density_coverage(f_te, f_tr, budget["dc_k"]))
    out["fd"] = frechet_distance(clf.evaluate(x_te)[0], f_tr)
    out["class_kl"] = class_divergence(p_te.argmax(1), y_te.long(), 10)
    out["class_entropy"] = float(-(freq[freq > 0] * freq[freq > 0].log()).sum())
    out["classifier_accuracy"] = float(clf.accuracy)
    return out


def run_job(job: dict) -> dict:
    """Train one arm with one seed, keep its checkpoint, measure it (calibration runs: the rate only)."""
    import importlib

    import numpy as np
    import torch

    torch.set_num_threads(job["threads"])
    import lightning.pytorch as pl

    from tcx.aggregate_density import AggregateDensity
    from tcx.estimators import rate_per_latent
    from tcx.metrics import (class_divergence, density_coverage, iwae_per_input, precision_recall,
                             traversal_class_change)

    budget = job["budget"]
    pl.seed_everything(job["seed"], workers=True, verbose=False)
    dm = make_datamodule("mnist", budget, job["data_root"])  # the same split for every seed (seed 0)
    module, _, cls = job["class_path"].rpartition(".")
    model = getattr(importlib.import_module(module), cls)(
        latent_dim=LATENT_DIM, input_shape=dm.input_shape, network=budget["network"],
        hidden_dims=budget["hidden_dims"], likelihood="bernoulli", lr=1e-3, **job["kwargs"])
    curve: list[float] = []

    class Curve(pl.Callback):
        def on_validation_epoch_end(self, trainer, pl_module):
            if not trainer.sanity_checking and "val/elbo" in trainer.callback_metrics:
                curve.append(float(trainer.callback_metrics["val/elbo"]))

    trainer = pl.Trainer(max_epochs=budget["mnist_epochs"], accelerator="cpu", devices=1, precision="32-true",
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, callbacks=[Curve()])
    t0 = time.time()
    trainer.fit(model, datamodule=dm)
    out: dict = dict(arm=job["arm"], seed=job["seed"], kwargs=job["kwargs"], train_seconds=time.time() - t0,
                     val_elbo_curve=curve, code_commit=job["commit"])
    ckpt = Path(job["runs_dir"]) / f"{job['name']}.ckpt"
    trainer.save_checkpoint(ckpt, weights_only=True)
    out["checkpoint"] = str(ckpt)
    t1 = time.time()
    model.eval()
    x_te, y_te = dm.split_data("test", max_items=budget["num_points"])
    with torch.no_grad():
        m_te, v_te = _encode(model, x_te)
    rates = rate_per_latent(m_te, v_te)
    out["rate_total"] = float(rates.sum())
    if job["calibration"]:
        out["measure_seconds"] = time.time() - t1
        return out
    q = _quality(budget)
    measured = q.measure(model, dm, split="test")
    for key in ("iwae", "elbo"):  # iwae_k=1 there: measured below instead
        measured.pop(key, None)
    out.update(measured)
    subset = [int(j) for j in str(out["subset"]).split(",")]
    rest = [j for j in range(LATENT_DIM) if j not in subset]
    out["rate_share_subset"] = out["rate_subset"] / out["rate_total"]
    out["mi_per_nat"] = out["mi_joint_subset"] / max(out["info_subset"], 1e-6)
    clf = q.classifier(dm)
    with torch.no_grad():
        # how often traversing each latent changes the class read from the decoded image
        change = traversal_class_change(model.decode, clf.probs, m_te[: budget["change_points"]],
                                        steps=budget["change_steps"])
        out["change_per_latent"] = [round(float(c), 5) for c in change]
        out["change_subset"] = float(change[subset].mean())
        out["change_rest"] = float(change[rest].mean())
        out["change_gap"] = out["change_subset"] - out["change_rest"]
        # samples against real test images in the classifier's features: binary draws, like the data
        real = torch.randperm(len(x_te), generator=torch.Generator().manual_seed(7))[: budget["real_points"]]
        f_real, _ = clf.evaluate(x_te[real])
        x_tr, _ = dm.split_data("train", max_items=budget["num_fit"])
        m_tr, v_tr = _encode(model, x_tr)
        gen, draws = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)

        def samples(density=None):
            chunks, left = [], budget["num_samples"]
            while left > 0:
                n = min(500, left)
                z = torch.randn(n, LATENT_DIM, generator=gen)
                if density is not None:
                    z[:, list(density.indices)] = density.sample(n, generator=gen)
                chunks.append(model.decode(z).float().clamp(0, 1))
                left -= n
            return torch.bernoulli(torch.cat(chunks), generator=draws)

        density = AggregateDensity.fit(m_tr, v_tr, subset, 10, seed=0)
        for tag, images in (("prior", samples()), ("fitted", samples(density))):
            f, p = clf.evaluate(images)
            pr = precision_recall(f_real, f, budget["pr_k"])
            dc = density_coverage(f_real, f, budget["dc_k"])
            out[f"precision_{tag}"], out[f"recall_{tag}"] = pr["precision"], pr["recall"]
            out[f"density_{tag}"], out[f"coverage_{tag}"] = dc["density"], dc["coverage"]
            out[f"class_kl_{tag}"] = class_divergence(p.argmax(1), y_te.long(), 10)
        # held-out likelihood on a seeded random sample of the whole test split, per image
        pick = torch.randperm(len(x_te), generator=torch.Generator().manual_seed(12345))[: budget["iwae_images"]]
        iw, el = iwae_per_input(model, x_te[pick], k=budget["iwae_k"], generator=torch.Generator().manual_seed(11))
    out["iwae"], out["elbo"] = float(iw.mean()), float(el.mean())
    out["iwae_images"] = [round(float(v), 4) for v in iw]
    out["measure_seconds"] = time.time() - t1
    np.savez_compressed(Path(job["runs_dir"]) / f"{job['name']}.npz", train_codes=m_tr.numpy(),
                        train_labels=dm.split_data("train", max_items=budget["num_fit"])[1].numpy(),
                        test_codes=m_te.numpy(), test_labels=y_te.numpy())
    if curve:
        quarter = max(1, len(curve) // 4)
        out["val_elbo_last"] = curve[-1]
        out["val_elbo_last_quarter_gain"] = curve[-1] - curve[-1 - quarter] if len(curve) > quarter else float("nan")
    return out


# ---------------------------------------------------------------------------------- main


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _read_runs(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def _pool_run(jobs: list[dict], workers: int, done: dict, folder: Path, start: float, after=None) -> None:
    import multiprocessing as mp

    if not jobs:
        return
    folder.mkdir(parents=True, exist_ok=True)
    with mp.get_context("spawn").Pool(workers, maxtasksperchild=1) as pool:
        results = pool.imap(run_job, jobs)  # in order: a stop leaves whole seeds behind it
        while True:
            try:
                r = results.next(timeout=60)
            except mp.TimeoutError:  # a heartbeat: the wall time so far is on disk if the process is killed
                if after is not None:
                    after()
                continue
            except StopIteration:
                break
            name = run_name(r["arm"], r["seed"], r["kwargs"])
            r["finished_after"] = time.time() - start
            (folder / f"{name}.json").write_text(json.dumps(r, sort_keys=True) + "\n")  # numbers first
            done[name] = r
            print(f"[{time.time() - start:6.0f}s] {name}: train {r['train_seconds']:.0f}s, measure "
                  f"{r['measure_seconds']:.0f}s, total rate {r['rate_total']:.2f}"
                  + (f", iwae {r['iwae']:.2f}, probe {r['probe_subset']:.3f}, precision "
                     f"{r['precision_prior']:.3f}, recall {r['recall_prior']:.3f}" if "iwae" in r else ""), flush=True)
            if after is not None:
                after()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", choices=sorted(BUDGETS), default="small")
    p.add_argument("--workers", type=int, default=None, help="parallel runs (default: the cores)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--seeds", type=int, default=None, help="override the power computation's number of seeds")
    p.add_argument("--data-root", default="data", help="folder with MNIST/raw (`make mnist` fills data/)")
    p.add_argument("--out", default=str(RESULTS), help="the report's folder (default benchmarks/results)")
    p.add_argument("--runs-dir", default="runs/paper_confirmatory", help="where checkpoints and codes are kept")
    p.add_argument("--resume", action="store_true", help="keep the finished runs and run the missing ones")
    p.add_argument("--report-only", action="store_true", help="write the report from the runs on disk")
    args = p.parse_args(argv)
    budget = dict(BUDGETS[args.budget])
    args.workers = args.workers or max(1, len(os.sched_getaffinity(0)))
    args.cpu_flags = cpu_flags()
    out = Path(args.out)
    folder = out / (NAME if args.budget == "small" else f"{NAME}_{args.budget}")
    runs_dir = Path(args.runs_dir) if args.budget == "small" else Path(args.runs_dir + f"_{args.budget}")
    study_path = folder / "study.json"
    if args.report_only:
        import report_confirmatory

        report_confirmatory.write(folder, runs_dir, out)
        return 0
    done = {**_read_runs(folder / "calibration"), **_read_runs(folder / "runs")}
    if done and not args.resume:
        print(f"{folder} already holds {len(done)} runs: add --resume to go on, or move that folder away",
              file=sys.stderr)
        return 2
    from tcx.datamodules.mnist_full import verify_full_mnist

    problems = verify_full_mnist(args.data_root)
    if problems:
        print("the full MNIST is not installed: run `make mnist` first (" + "; ".join(problems) + ")", file=sys.stderr)
        return 2
    start = time.time()
    size = sizing()
    n = args.seeds or size["seeds"]
    print(f"seeds per arm from the power computation: {size['seeds']} (running {n})", flush=True)
    import torch

    torch.set_num_threads(max(1, args.workers * args.threads))
    real = real_floor(budget, args.data_root)
    print(f"[{time.time() - start:6.0f}s] real vs real: " + json.dumps({k: round(v, 4) for k, v in real.items()}),
          flush=True)
    runs_dir.mkdir(parents=True, exist_ok=True)
    study = dict(budget_name=args.budget, budget=budget, sizing=size, seeds=n, real=real, cpu_flags=args.cpu_flags,
                 workers=args.workers, threads=args.threads, runs_dir=str(runs_dir),
                 invocations=[], control_betas=list(rule.CONTROL_BETAS))
    if study_path.is_file():
        kept = json.loads(study_path.read_text())
        if kept.get("budget") != json.loads(json.dumps(budget)):
            print(f"{study_path} was written with another budget: move that folder away", file=sys.stderr)
            return 2
        study["invocations"] = kept.get("invocations", [])
    invocation = dict(started=time.strftime("%Y-%m-%d %H:%M:%S"), commit=_commit(), cpu_flags=args.cpu_flags)
    study["invocations"].append(invocation)
    folder.mkdir(parents=True, exist_ok=True)

    def save_study() -> None:
        invocation["wall_seconds"] = time.time() - start
        study_path.write_text(json.dumps(study, indent=1, sort_keys=True) + "\n")

    save_study()
    common = dict(budget=budget, data_root=args.data_root, threads=args.threads, runs_dir=str(runs_dir),
                  commit=invocation["commit"])
    # 1. the control's beta: one calibration run per candidate, at a seed no confirmatory run uses
    cal = [dict(common, arm="calibration", name=run_name("calibration", rule.CALIBRATION_SEED, {"beta": b}),
                class_path="tcx.models.BetaVAE", kwargs={"beta": b}, seed=rule.CALIBRATION_SEED, calibration=True)
           for b in rule.CONTROL_BETAS]
    _pool_run([j for j in cal if j["name"] not in done], args.workers, done, folder / "calibration", start, save_study)
    pilot = json.loads(PILOT.read_text())
    arm_name, key = rule.CONTROL_TARGET
    target = statistics.fmean(r[key] for r in pilot["runs"] if r["model"] == arm_name)
    found = {j["kwargs"]["beta"]: done[j["name"]]["rate_total"] for j in cal}
    beta = min(found, key=lambda b: (abs(found[b] - target), b))
    study["calibration"] = dict(target=target, rates={str(b): r for b, r in found.items()}, beta=beta)
    print(f"control: beta {beta} (total rate {found[beta]:.2f} against the target {target:.2f})", flush=True)
    save_study()
    # 2. the confirmatory runs, seed after seed
    seeds = range(rule.SEEDS_FROM, rule.SEEDS_FROM + n)
    jobs = [dict(common, arm=a, name=run_name(a, s), class_path=cp, kwargs=kw, seed=s, calibration=False)
            for s in seeds for a, cp, kw in arms(beta)]
    todo = [j for j in jobs if j["name"] not in done]
    print(f"{len(jobs) - len(todo)} confirmatory runs kept, {len(todo)} to run", flush=True)

    def after() -> None:
        save_study()
        try:  # the run's numbers are on disk already: a report that fails loses nothing
            import report_confirmatory

            report_confirmatory.write(folder, runs_dir, out)
        except Exception as e:  # noqa: BLE001 - reported, and --report-only writes it again
            print(f"the report was not written ({type(e).__name__}: {e}); the runs are kept", flush=True)

    _pool_run(todo, args.workers, done, folder / "runs", start, after)
    after()
    print(f"done in {(time.time() - start) / 60:.1f} min: {out / (NAME + '.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
