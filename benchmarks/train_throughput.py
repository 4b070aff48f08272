"""Training throughput of the default model: the `tcx fit` Trainer path against bare loops and the matmul limit.

Measured in one run, at each precision: the Trainer path against tcx's bare loop (their ratio,
target >= 0.95 at the chosen precision), a minimal plain-PyTorch loop of the same net on data in
memory, the matmul GFLOP/s and the training FLOP per image (the fraction of the machine's matmul
limit the training reaches), the CPU flags and the precision tcx.hardware picks. Every rate is a
run's median step (robust to a stray slow step on shared cores), runs are interleaved (bare,
trainer, ...) and the figure is the median over the repeats; page faults per step are recorded.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/train_throughput.py [--steps 30] [--repeats 3]
        [--threads 2] [--precisions 32-true bf16-mixed] [--compile] [--out benchmarks/results/train_throughput.md]

Adds its record at the top of benchmarks/results/train_throughput.md (or --out), earlier ones kept.

Details (the loops, the model, the measurements): benchmarks/README.md#train_throughputpy
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
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

from results_io import add_record, recorded_args  # noqa: E402  (benchmarks/results_io.py, beside this script)

TITLE = "# Training throughput: `tcx fit` Trainer path vs. a bare PyTorch loop"

BATCH = 256


def matmul_gflops(dtype: torch.dtype, n: int = 1024, seconds: float = 1.0) -> float:
    """GFLOP/s of an n x n x n matmul in ``dtype`` (2 n^3 FLOP each), over about ``seconds``."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    reps, start = 0, time.perf_counter()
    while True:
        a @ b
        reps += 1
        elapsed = time.perf_counter() - start
        if elapsed > seconds:
            return 2 * n**3 * reps / elapsed / 1e9


def flop_per_image() -> float:
    """FLOP of one fp32 training step (forward and backward) of the default net, per image."""
    from torch.utils.flop_counter import FlopCounterMode

    model = make_model(False)
    x = torch.rand(32, 1, 64, 64).round()
    with FlopCounterMode(display=False) as counter:
        loss = model.step_terms(x).loss
        loss.backward()
    return counter.get_total_flops() / 32


def in_memory_batches(n: int) -> list[torch.Tensor]:
    dm = DSprites(batch_size=BATCH, epoch_size=BATCH * n)
    dm.setup("fit")
    return [x for x, _ in dm.train_dataloader()]


def tick() -> tuple[float, int, float]:
    """The clock, the process's minor page faults and this thread's CPU seconds, at the start of a step."""
    return time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.thread_time()


def median_step(ticks: list[tuple[float, int, float]], warmup: int) -> tuple[float, float, float]:
    """Images/s at the median step, the median minor page faults per step and the median CPU ms of
    the training thread per step (what waiting for a shared core does not inflate), from the ticks
    at the start of each step (the first ``warmup`` steps left out; the last tick ends the last step)."""
    timed = ticks[warmup:]
    med = [statistics.median(b[i] - a[i] for a, b in zip(timed, timed[1:])) for i in range(3)]
    return BATCH / med[0], med[1], 1000 * med[2]


def _timed(step, batches, warmup: int) -> tuple[float, float]:
    losses, ticks = [], []
    for i, x in enumerate(batches):
        ticks.append(tick())
        loss = step(x)
        if i >= warmup:
            losses.append(loss)
    ticks.append(tick())
    return median_step(ticks, warmup)[0], statistics.fmean(losses)


def minimal_loop(precision: str, batches, warmup: int) -> tuple[float, float]:
    """Images/s of a minimal plain-PyTorch VAE loop on tcx's net (no tcx objective, data in memory)."""
    model = make_model(False)
    enc, dec = model.encoder, model.decoder
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=1e-3)
    bf16 = precision == "bf16-mixed"

    def step(x):
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            mean, log_var = enc(x)
            z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
            logits = dec(z)
        rec = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), x, reduction="sum") / len(x)
        kl = 0.5 * (mean.float().square() + log_var.float().exp() - 1 - log_var.float()).sum() / len(x)
        loss = rec + kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    return _timed(step, batches, warmup)


def tcx_in_memory(precision: str, batches, warmup: int) -> tuple[float, float]:
    """Images/s of tcx's bare loop (step_terms) on the same in-memory batches."""
    model = make_model(False)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    bf16 = precision == "bf16-mixed"

    def step(x):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model.step_terms(x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    return _timed(step, batches, warmup)


def render_rate(steps: int) -> float:
    """Images/s of the default loader alone (procedural rendering, no training)."""
    dm = DSprites(batch_size=BATCH, epoch_size=BATCH * steps)
    dm.setup("fit")
    start = time.perf_counter()
    n = sum(len(x) for x, _ in dm.train_dataloader())
    return n / (time.perf_counter() - start)


def make_model(compile: bool) -> AnchorVAE:
    torch.manual_seed(0)
    return AnchorVAE(latent_dim=10, anchors=2, anchor_beta=0.2, compile=compile, input_entropy_samples=0)


def compiled_for_bare_loop(model: AnchorVAE, compile: bool) -> AnchorVAE:
    """A bare loop has no fit start, where the model applies its ``compile`` rule: compile here."""
    model.compile_networks(compile)
    return model


def bare_loop(precision: str, steps: int, warmup: int, compile: bool,
              ticks: list | None = None) -> tuple[float, float, float]:
    """Images/s of a plain loop at its median step (after warmup steps), the mean loss over the
    timed steps, and the seconds the warm-up steps took (with compile: the compilation); ``ticks``
    (if given) gets :func:`tick` at the start of every step and after the last."""
    dm = DSprites(batch_size=BATCH, epoch_size=BATCH * (steps + warmup))
    dm.setup("fit")
    model = compiled_for_bare_loop(make_model(compile), compile)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    bf16 = precision == "bf16-mixed"
    losses = []
    ticks = [] if ticks is None else ticks
    began = time.perf_counter()
    for i, (x, _) in enumerate(dm.train_dataloader()):
        ticks.append(tick())
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model.step_terms(x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            losses.append(loss.item())
    ticks.append(tick())
    return median_step(ticks, warmup)[0], statistics.fmean(losses), ticks[warmup][0] - began


class Clock(pl.Callback):
    """:func:`tick` at the start of every training step and at the end of the epoch, and the
    losses of the steps after ``warmup``."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.ticks: list[tuple[float, int]] = []
        self.losses: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.ticks.append(tick())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx >= self.warmup:
            self.losses.append(float(outputs["loss"]))

    def on_train_epoch_end(self, trainer, pl_module):
        self.ticks.append(tick())


def trainer_path(precision: str, steps: int, warmup: int, compile: bool, root: str) -> tuple[float, float, float]:
    """Images/s of `tcx fit`'s Trainer path at its median step (after warmup steps), the mean
    loss, and the median minor page faults and training-thread CPU ms per step."""
    dm = DSprites(batch_size=BATCH, epoch_size=BATCH * (steps + warmup))
    model = make_model(compile)
    clock = Clock(warmup)
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
    rate, faults, cpu_ms = median_step(clock.ticks, warmup)
    return rate, statistics.fmean(clock.losses), (faults, cpu_ms)


def main() -> None:
    from tcx.hardware import cpu_flags, default_precision, keep_freed_memory

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"])
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile'd networks")
    parser.add_argument("--emulated-steps", type=int, default=3,
                        help="timed steps (after 1 warm-up) for bf16 where the CPU has no native bf16 (~10x slower)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "train_throughput.md"))
    parser.add_argument("--system-malloc", action="store_true",
                        help="leave glibc's allocator at its defaults (tcx fit keeps freed memory, as this does)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # both paths run with the allocator setting `tcx fit` makes at its start
    allocator = "glibc defaults" if args.system_malloc else (keep_freed_memory() or "unchanged (see TCX_MALLOC)")
    print(f"allocator: {allocator}", flush=True)

    chosen, reason = default_precision("cpu")
    flags = sorted(f for f in cpu_flags() if f.startswith(("avx", "amx", "fma", "f16c")))
    caps_env = {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS",
                                           "MALLOC_MMAP_THRESHOLD_", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_") if k in os.environ}
    gflops = {"32-true": matmul_gflops(torch.float32), "bf16-mixed": matmul_gflops(torch.bfloat16)}
    fpi = flop_per_image()
    print(f"precision tcx picks here: {chosen} ({reason})")
    print(f"matmul GFLOP/s: fp32 {gflops['32-true']:.1f}, bf16 {gflops['bf16-mixed']:.1f}; "
          f"training FLOP per image {fpi / 1e6:.1f} M", flush=True)

    configs = [(p, False) for p in args.precisions]
    if args.compile:
        configs += [(p, True) for p in args.precisions]
    rows, extra = [], []
    with tempfile.TemporaryDirectory() as root:
        for precision, compile in configs:
            steps, warmup = args.steps, args.warmup
            if precision == "bf16-mixed" and chosen != "bf16-mixed":
                steps, warmup = args.emulated_steps, 1
            batches = in_memory_batches(steps + warmup)
            bare, trainer, ratios, loss_b, loss_t = [], [], [], [], []
            mins, mems, warm, faults = [], [], [], []
            for _ in range(args.repeats):
                ticks: list = []
                b, lb, w = bare_loop(precision, steps, warmup, compile, ticks=ticks)
                warm.append(w)
                t, lt, ft = trainer_path(precision, steps, warmup, compile, root)
                faults.append((median_step(ticks, warmup)[1:], ft))
                bare.append(b), trainer.append(t), ratios.append(t / b), loss_b.append(lb), loss_t.append(lt)
                if not compile:
                    m, _ = minimal_loop(precision, batches, warmup)
                    i, _ = tcx_in_memory(precision, batches, warmup)
                    mins.append(m), mems.append(i)
                print(f"{precision:>11} compile={compile}: bare {b:7.0f} img/s  trainer {t:7.0f} img/s  "
                      f"ratio {t / b:.3f}  loss {lb:.1f} / {lt:.1f}  faults/step {faults[-1][0][0]:.0f} / {ft[0]:.0f}  "
                      f"CPU ms/step {faults[-1][0][1]:.0f} / {ft[1]:.0f}"
                      + (f"  | minimal {m:7.0f}  tcx in memory {i:7.0f}" if not compile else ""), flush=True)
            med = statistics.median
            # the ratio of the medians over the rounds, as benchmarks/trainer_variants.py takes it; the
            # rounds' own ratios are listed beside it
            rows.append((precision, compile, med(bare), med(trainer), med(trainer) / med(bare), statistics.fmean(loss_b),
                         statistics.fmean(loss_t), med(warm), warmup, ratios,
                         [med(f[i][j] for f in faults) for i in (0, 1) for j in (0, 1)]))
            if mins:
                extra.append((precision, med(mins), med(mems), med(bare), med(trainer)))
    render = render_rate(args.steps)

    lines = [
        f"## {datetime.date.today().isoformat()}: {chosen} picked, {platform.processor() or platform.machine()} "
        f"with {' '.join(f for f in flags if f.startswith(('avx512_bf16', 'amx_bf16'))) or 'no native bf16'}",
        "",
        f"- date: {datetime.date.today().isoformat()}; torch {torch.__version__}; lightning {pl.__version__}; "
        f"python {platform.python_version()}; {os.cpu_count()} CPUs, torch threads {args.threads}; "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; load average at the end "
        f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}",
        f"- CPU: {platform.processor() or platform.machine()}; flags {' '.join(flags) or 'n/a'}; "
        f"torch CPU capability {torch.backends.cpu.get_cpu_capability()}; ISA caps "
        f"{' '.join(f'{k}={v}' for k, v in caps_env.items()) or 'none'}",
        f"- precision tcx picks here: **{chosen}** ({reason}); allocator: {allocator}",
        f"- command: `{' '.join(f'{k}={v}' for k, v in caps_env.items())} OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY', 'unset')} .venv/bin/python "
        f"benchmarks/train_throughput.py {' '.join(recorded_args(sys.argv[1:]))}`".replace("` ", "`"),
        f"- default AnchorVAE (conv, 10 latents), batch {BATCH}, {args.steps} timed steps after {args.warmup} "
        f"warm-up steps; img/s = {BATCH} / a run's median step, the median of {args.repeats} interleaved repeats; "
        "Trainer / bare = the ratio of those medians (each repeat's own ratio listed); loss = mean training "
        "loss (nats) over the timed steps (same seed and data in both paths); page faults and CPU ms = the "
        "median minor faults and training-thread CPU ms per step (bare / Trainer; the CPU ms are not inflated "
        f"by waiting for a shared core); bf16 where it is emulated: {args.emulated_steps} timed steps after 1",
        f"- matmul 1024^3: fp32 **{gflops['32-true']:.1f}** GFLOP/s, bf16 **{gflops['bf16-mixed']:.1f}** GFLOP/s; "
        f"training FLOP per image (fp32 forward + backward, counted): {fpi / 1e6:.1f} MFLOP",
        f"- the loader alone (procedural rendering): {render:.0f} img/s",
        "",
        "| precision | compile | bare loop img/s | Trainer img/s | Trainer / bare | each repeat | loss bare "
        "| loss Trainer | page faults per step | CPU ms per step | warm-up s (bare) | compile pays after |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    plain = {p: (b, w, n) for p, c, b, t, r, lb, lt, w, n, *_ in rows if not c}
    for p, c, b, t, r, lb, lt, w, n, each, (fb, cb, ft, ct) in rows:
        pays = ""
        if c and p in plain:
            b0, w0, n0 = plain[p]
            # the compiled run's warm-up beyond the plain one's, against the time it saves a step
            extra_s = w - w0 * n / n0
            saved = BATCH / b0 - BATCH / b
            pays = f"{extra_s / saved:,.0f} steps" if saved > 0 else "never (not faster)"
        lines.append(f"| {p} | {c} | {b:.0f} | {t:.0f} | {r:.3f} | {' '.join(f'{v:.3f}' for v in each)} | {lb:.1f} "
                     f"| {lt:.1f} | {fb:.0f} / {ft:.0f} | {cb:.0f} / {ct:.0f} | {w:.1f} | {pays} |")
    lines += [
        "",
        "Where the time goes, and the fraction of the matmul limit (img/s x FLOP per image / matmul FLOP/s "
        "of that dtype):",
        "",
        "| precision | minimal plain loop (in memory) | tcx bare (in memory) | tcx bare (loader) | Trainer "
        "| tcx bare / minimal | Trainer fraction of matmul limit |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for p, m, i, b, t in extra:
        lines.append(f"| {p} | {m:.0f} | {i:.0f} | {b:.0f} | {t:.0f} | {b / m:.3f} | "
                     f"{t * fpi / (gflops[p] * 1e9):.1%} |")
    add_record(args.out, TITLE, lines)


if __name__ == "__main__":
    main()
