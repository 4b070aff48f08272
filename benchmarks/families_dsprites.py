"""Every model family on the same short dSprites budget: final validation ELBO, total rate, MIG.

Each family is trained from its config by the real command line (``tcx fit -c
configs/<family>.yaml``), with the same budget for all (one epoch of ``--epoch-size`` images, batch
256, seed 0), then its checkpoint is loaded and scored the same way for all on the first
``--eval-size`` DSprites validation images: its own ELBO and total rate in nats per image, and
the MIG of its posterior means against the five varying factors.

Run from the repository root (about 1-2 minutes per family on 2 CPU threads):

    OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/families_dsprites.py

It prints the table and writes it to ``benchmarks/results/families_dsprites.md``.

Details (the exact command, the scores): benchmarks/README.md#families_dspritespy
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "families_dsprites.md"

# (name in the table, config, extra flags)
FAMILIES = [
    ("VAE", "vae_dsprites.yaml", []),
    ("BetaVAE", "betavae_dsprites.yaml", []),
    ("AnchorVAE", "anchorvae_dsprites.yaml", []),
    ("HierarchicalVAE", "hierarchicalvae_dsprites.yaml", []),
    ("BetaTCVAE", "betatcvae_dsprites.yaml", []),
    ("FactorVAE", "factorvae_dsprites.yaml", []),
    ("DIP-VAE I", "dipvae1_dsprites.yaml", []),
    ("DIP-VAE II", "dipvae2_dsprites.yaml", []),
    ("AnnealedVAE", "annealedvae_dsprites.yaml", ["--model.capacity_steps", "{steps}"]),
]


def fit_command(config: str, extra: list[str], epoch_size: int, batch_size: int, run_dir: Path) -> list[str]:
    steps = epoch_size // batch_size
    return [
        str(Path(sys.executable).with_name("tcx")), "fit", "-c", str(ROOT / "configs" / config),
        "--trainer.max_epochs", "1", "--data.epoch_size", str(epoch_size), "--data.batch_size", str(batch_size),
        "--trainer.logger", "false", "--trainer.callbacks", "[]", "--trainer.limit_val_batches", "0",
        "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(run_dir),
        *[e.format(steps=steps) for e in extra],
    ]


@torch.no_grad()
def score(model, eval_size: int, seed: int = 0) -> dict:
    """ELBO and rate (nats per image) and MIG on the first ``eval_size`` validation images."""
    from tcx.datamodules import DSprites
    from tcx.metrics import mig

    dm = DSprites(batch_size=250, val_size=5000, seed=0)
    dm.setup("fit")
    model.attach_data(dataset_size=dm.dataset_size)
    torch.manual_seed(seed)
    elbo = rate = 0.0
    count = 0
    codes, factors, extra = [], [], {}
    for x, y in dm.val_dataloader():
        if count >= eval_size:
            break
        x, y = x[: eval_size - count], y[: eval_size - count]
        # the bound alone (the families' own reports come from extra_loss, which is not scored here)
        _, _, terms = model.bound(x)
        n = x.shape[0]
        elbo += terms.elbo.item() * n
        rate += terms.rate.item() * n
        if hasattr(model, "layer_information"):  # the hierarchical VAE's diagnostic, per batch
            for l, v in enumerate(model.layer_information(x), start=1):
                extra[f"layer{l}/mutual_info"] = extra.get(f"layer{l}/mutual_info", 0.0) + v.item() * n
        codes.append(model.encode(x).mean)
        factors.append(y)
        count += n
    codes_t = torch.cat(codes).double()
    factors_t = torch.cat(factors)[:, 1:]  # color is constant
    return {
        "elbo": elbo / count,
        "rate": rate / count,
        "mig": mig(codes_t.numpy(), factors_t.numpy()),
        "n": count,
        **{k: v / count for k, v in extra.items()},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epoch-size", type=int, default=16384, help="training images (one epoch)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--eval-size", type=int, default=5000, help="validation images scored")
    parser.add_argument("--families", nargs="*", help="table names to run (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from tcx.models import load_model

    chosen = [f for f in FAMILIES if not args.families or f[0] in args.families]
    rows = []
    example = None
    with tempfile.TemporaryDirectory(prefix="tcx-families-") as tmp:
        for name, config, extra in chosen:
            run_dir = Path(tmp) / config.replace(".yaml", "")
            cmd = fit_command(config, extra, args.epoch_size, args.batch_size, run_dir)
            if example is None:
                example = cmd
            env = dict(os.environ, WANDB_MODE="disabled")
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"{name}: `tcx fit` failed (exit {proc.returncode})")
            ckpts = sorted(run_dir.glob("checkpoints/*.ckpt"))
            if not ckpts:
                raise SystemExit(f"{name}: no checkpoint under {run_dir}")
            model = load_model(ckpts[-1])
            result = score(model, args.eval_size)
            result.update(name=name, config=config, seconds=seconds, extra=" ".join(e.format(steps=args.epoch_size // args.batch_size) for e in extra))
            rows.append(result)
            print(f"{name:16s} ELBO {result['elbo']:10.2f}  rate {result['rate']:7.2f}  MIG {result['mig']:.3f}  ({seconds:.0f} s)", flush=True)

    env_settings = [f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY") if k in os.environ]
    lines = [
        "# Model families on dSprites: one short budget, scored the same way",
        "",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- torch: {torch.__version__}, python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs visible, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
        f"- command: `{' '.join([*env_settings, '.venv/bin/python', 'benchmarks/families_dsprites.py', *(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))])}`",
        f"- budget per family: one epoch of {args.epoch_size} procedural dSprites images, batch {args.batch_size} "
        f"({args.epoch_size // args.batch_size} steps), seed 0, each family's config otherwise unchanged; trained by",
        "",
        "      " + " ".join(shlex.quote(a) for a in [
            "tcx", "fit", "-c", "configs/<family>.yaml", *example[4:-2]]) + " --trainer.default_root_dir <run>",
        "",
        f"- scored on the first {rows[0]['n'] if rows else args.eval_size} images of the validation split "
        "(DSprites val_size 5000, seed 0): ELBO and total rate in nats per image from the family's own "
        "bound (one seeded posterior sample per image; the hierarchical VAE's is its hierarchical ELBO "
        "and the rate of all its layers), MIG (tcx.metrics.mig, 20 bins) of the posterior means against "
        "shape, scale, orientation, posX, posY",
        "",
        "| family | config (extra flags) | val ELBO (nats) | total rate (nats) | MIG | train wall time (s) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        cfg = f"`{r['config']}`" + (f" `{r['extra']}`" if r["extra"] else "")
        lines.append(f"| {r['name']} | {cfg} | {r['elbo']:.2f} | {r['rate']:.2f} | {r['mig']:.3f} | {r['seconds']:.0f} |")
    hier = [r for r in rows if any(k.startswith("layer") for k in r)]
    for r in hier:
        info = ", ".join(f"I(X;Z^{k.split('/')[0][5:]}) = {v:.2f}" for k, v in sorted(r.items()) if k.endswith("/mutual_info"))
        lines += ["", f"{r['name']}: per-layer information estimates on the same images (nats): {info}."]
    lines += [
        "",
        "A short budget: these numbers compare the families' behaviour early in training on one seed, "
        "not their converged quality (the papers train for 300k+ steps). Wall times include start-up "
        "and are from a shared machine.",
    ]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
