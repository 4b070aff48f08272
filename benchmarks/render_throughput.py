"""Procedural dSprites: how fast the images are made, on which path, against what training needs.

Measured in one process (``--threads`` torch threads): the loader path (``render_on="loader"``),
the device path (``render_on="device"``, rendering on ``--device``), ``render_dsprites`` alone on
batches of 256 and 4096, the equality of both paths' images for the same ``--check`` indices (the
number that differ must be 0), and the images per second a training run would consume at 100 %
and at ``--mfu`` of a device's peak (the FLOP of one training step per image, default AnchorVAE).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/render_throughput.py [--device cuda]
        [--seconds 3] [--check 20000] [--out benchmarks/results/render_throughput.md]

Details (each row): benchmarks/README.md#render_throughputpy
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import torch

from tcx.datamodules import DSprites, render_dsprites
from tcx.datamodules.dsprites import NUM_IMAGES, index_to_factors

from results_io import add_record, recorded_args  # benchmarks/results_io.py, beside this script

BATCH = 256

# dense peaks from the vendors' data sheets, TFLOP/s (no sparsity)
PEAKS = {
    "NVIDIA H200 / H100 SXM, bf16": 989.0,
    "NVIDIA H200 / H100 SXM, fp32 (no tensor cores)": 67.0,
    "NVIDIA A100, bf16": 312.0,
    "NVIDIA A100, fp32 (no tensor cores)": 19.5,
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def loader_rate(seconds: float) -> float:
    """Images/s of the default CPU loader path (render_on='loader')."""
    dm = DSprites(batch_size=BATCH, epoch_size=BATCH * 4096, render_on="loader")
    dm.setup("fit")
    n, start = 0, time.perf_counter()
    for x, _ in dm.train_dataloader():
        n += len(x)
        if time.perf_counter() - start > seconds:
            break
    return n / (time.perf_counter() - start)


def device_path_rate(device: torch.device, seconds: float) -> float:
    """Images/s of the device path: indices from the loader, moved, rendered on ``device``."""
    dm = DSprites(batch_size=BATCH, epoch_size=BATCH * 4096, render_on="device")
    dm.setup("fit")
    n, start = 0, time.perf_counter()
    for batch in dm.train_dataloader():
        x, _ = dm.on_after_batch_transfer(type(batch)(batch.rows.to(device, non_blocking=True)), 0)
        n += len(x)
        if time.perf_counter() - start > seconds:
            break
    _sync(device)
    return n / (time.perf_counter() - start)


def renderer_rate(device: torch.device, batch: int, seconds: float) -> float:
    """Images/s of render_dsprites alone on ``device`` for batches of ``batch`` random factors."""
    g = torch.Generator().manual_seed(0)
    factors = index_to_factors(torch.randint(0, NUM_IMAGES, (batch,), generator=g)).to(device)
    render_dsprites(factors)
    _sync(device)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        render_dsprites(factors)
        n += batch
    _sync(device)
    return n / (time.perf_counter() - start)


def mismatches(device: torch.device, count: int) -> int:
    """Images that differ between the loader path and the device path for ``count`` indices."""
    loader = DSprites(batch_size=BATCH, epoch_size=count, render_on="loader", seed=7)
    on_device = DSprites(batch_size=BATCH, epoch_size=count, render_on="device", seed=7)
    torch.manual_seed(0)
    a = list(loader.train_dataloader())
    torch.manual_seed(0)
    b = list(on_device.train_dataloader())
    bad = 0
    for (xa, ya), batch in zip(a, b):
        xb, yb = on_device.on_after_batch_transfer(type(batch)(batch.rows.to(device)), 0)
        if not torch.equal(ya, yb.cpu()):
            raise AssertionError("the two paths drew different indices")
        bad += int((xa != xb.cpu()).flatten(1).any(dim=1).sum())
    return bad


def flop_per_image() -> float:
    """FLOP of one training step (forward and backward) of the default AnchorVAE, per image."""
    from torch.utils.flop_counter import FlopCounterMode

    from tcx.models import AnchorVAE

    model = AnchorVAE(latent_dim=10, anchors=2, anchor_beta=0.2, input_entropy_samples=0)
    x = torch.rand(32, 1, 64, 64).round()
    with FlopCounterMode(display=False) as counter:
        model.step_terms(x).loss.backward()
    return counter.get_total_flops() / 32


def main() -> None:
    from tcx.hardware import cpu_flags

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--check", type=int, default=20000, help="indices compared image for image")
    parser.add_argument("--mfu", type=float, default=0.3, help="fraction of peak a training run reaches")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "render_throughput.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    rows = []
    rows.append(("loader path (render_on='loader', CPU DataLoader)", loader_rate(args.seconds)))
    rows.append((f"device path (render_on='device', on {device})", device_path_rate(device, args.seconds)))
    for b in (BATCH, 4096):
        rows.append((f"render_dsprites alone, batch {b}, on {device}", renderer_rate(device, b, args.seconds)))
    bad = mismatches(device, args.check)
    flop = flop_per_image()

    flags = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in cpu_flags())
    lines = [
        "",
        f"## {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, device {device}",
        "",
        f"- command: `OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')} python benchmarks/render_throughput.py "
        f"{' '.join(recorded_args(sys.argv[1:]))}`",
        f"- CPU: {platform.processor() or platform.machine()}, flags: {flags or 'none of avx2/avx512f/avx512_bf16/amx_bf16'}; "
        f"torch {torch.__version__}, {args.threads} threads; load average {os.getloadavg()[0]:.2f}",
        "",
        "| path | images/s |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {rate:,.0f} |" for name, rate in rows]
    lines += [
        "",
        f"Image for image: {bad} of {args.check} images differ between the loader path and the device path.",
        "",
        f"What training consumes: one training step of the default AnchorVAE costs {flop / 1e6:.1f} MFLOP per "
        "image (forward and backward), so a device at a peak of P TFLOP/s trains at most P / FLOP images/s:",
        "",
        f"| device | peak TFLOP/s | img/s at 100 % | img/s at {args.mfu:.0%} | loader path covers | "
        "device path here covers |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, peak in PEAKS.items():
        full = peak * 1e12 / flop
        need = full * args.mfu
        lines.append(f"| {name} | {peak:g} | {full:,.0f} | {need:,.0f} | {rows[0][1] / need:.3f}x | "
                     f"{rows[1][1] / need:.3f}x |")
    add_record(args.out, "# Procedural dSprites: rendering rate and the rate training needs\n\n"
               "Written by `benchmarks/render_throughput.py` "
               "(benchmarks/README.md#render_throughputpy says what each row is); "
               "each run appends a section.", lines, newest_first=False)


if __name__ == "__main__":
    main()
