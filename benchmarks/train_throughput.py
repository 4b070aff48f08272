"""Training throughput of the default model: the `tcx fit` Trainer path against a bare PyTorch loop.

Both paths train the default AnchorVAE (Burgess conv net, 10 latents) on the default procedural
dSprites datamodule (batch 256) with Adam, in the same process, on the same data loader, at each
precision. The Trainer path is the one `tcx fit` builds: progress bar, logging every 25 steps,
the W&B logger (offline) and a checkpoint callback. Runs are interleaved (bare, trainer, bare,
trainer, ...) so that a load change on shared cores hits both, and the ratio is taken per pair.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/train_throughput.py [--steps 30] [--repeats 2]
        [--threads 2] [--precisions 32-true bf16-mixed] [--compile] [--out benchmarks/results/train_throughput.md]

Writes a markdown table to benchmarks/results/train_throughput.md (or --out).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402

from tcx.datamodules import DSprites  # noqa: E402
from tcx.models import AnchorVAE  # noqa: E402

BATCH = 256


def make_model(compile: bool) -> AnchorVAE:
    torch.manual_seed(0)
    return AnchorVAE(latent_dim=10, anchors=2, anchor_beta=0.2, compile=compile, input_entropy_samples=0)


def bare_loop(precision: str, steps: int, warmup: int, compile: bool) -> tuple[float, float]:
    """Images/s of a plain loop (after warmup steps) and the mean loss over the timed steps."""
    dm = DSprites(batch_size=BATCH, epoch_size=BATCH * (steps + warmup))
    dm.setup("fit")
    model = make_model(compile)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    bf16 = precision == "bf16-mixed"
    losses = []
    start = None
    for i, (x, _) in enumerate(dm.train_dataloader()):
        if i == warmup:
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model.step_terms(x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            losses.append(loss.item())
    elapsed = time.perf_counter() - start
    return steps * BATCH / elapsed, statistics.fmean(losses)


class _Clock(pl.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start = self.end = None
        self.losses: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step > self.warmup:
            self.losses.append(float(outputs["loss"]))
        self.end = time.perf_counter()


def trainer_path(precision: str, steps: int, warmup: int, compile: bool, root: str) -> tuple[float, float]:
    """Images/s of `tcx fit`'s Trainer path (after warmup steps) and the mean loss."""
    dm = DSprites(batch_size=BATCH, epoch_size=BATCH * (steps + warmup))
    model = make_model(compile)
    clock = _Clock(warmup)
    logger = pl.loggers.WandbLogger(project="tcx-bench", save_dir=root)
    trainer = pl.Trainer(
        max_epochs=1,
        precision=precision,
        log_every_n_steps=25,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        logger=logger,
        callbacks=[pl.callbacks.ModelCheckpoint(save_last=True), clock],
        default_root_dir=root,
        enable_progress_bar=True,
    )
    trainer.fit(model, datamodule=dm)
    logger.experiment.finish()
    return steps * BATCH / (clock.end - clock.start), statistics.fmean(clock.losses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"])
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile'd networks")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "train_throughput.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    configs = [(p, False) for p in args.precisions]
    if args.compile:
        configs += [(p, True) for p in args.precisions]
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for precision, compile in configs:
            bare, trainer, ratios, loss_b, loss_t = [], [], [], [], []
            for _ in range(args.repeats):
                b, lb = bare_loop(precision, args.steps, args.warmup, compile)
                t, lt = trainer_path(precision, args.steps, args.warmup, compile, root)
                bare.append(b), trainer.append(t), ratios.append(t / b), loss_b.append(lb), loss_t.append(lt)
                print(f"{precision:>11} compile={compile}: bare {b:7.0f} img/s  trainer {t:7.0f} img/s  "
                      f"ratio {t / b:.3f}  loss {lb:.1f} / {lt:.1f}", flush=True)
            rows.append((precision, compile, statistics.median(bare), statistics.median(trainer),
                         statistics.median(ratios), statistics.fmean(loss_b), statistics.fmean(loss_t)))

    lines = [
        "# Training throughput: `tcx fit` Trainer path vs. a bare PyTorch loop",
        "",
        f"- date: {datetime.date.today().isoformat()}; torch {torch.__version__}; lightning {pl.__version__}; "
        f"python {platform.python_version()}; {os.cpu_count()} CPUs, torch threads {args.threads}; "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; load average at the end "
        f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}",
        f"- command: `OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')} .venv/bin/python "
        f"benchmarks/train_throughput.py {' '.join(sys.argv[1:])}`",
        f"- default AnchorVAE (conv, 10 latents), batch {BATCH}, {args.steps} timed steps after {args.warmup} "
        f"warm-up steps, medians of {args.repeats} interleaved repeats; loss = mean training loss (nats) "
        "over the timed steps (same seed and data in both paths)",
        "",
        "| precision | compile | bare loop img/s | Trainer img/s | Trainer / bare | loss bare | loss Trainer |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for p, c, b, t, r, lb, lt in rows:
        lines.append(f"| {p} | {c} | {b:.0f} | {t:.0f} | {r:.3f} | {lb:.1f} | {lt:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
