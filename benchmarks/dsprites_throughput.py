"""Throughput of the procedural dSprites renderer and of the DSprites train dataloader.

Measures images per second of ``render_dsprites`` on 256-image batches, of the full-image
reference evaluation (``_render_full``, for comparison only) and of iterating the DSprites train
dataloader, with one and two torch threads. Prints a table and writes it, with the date, the
torch version and the command, to ``benchmarks/results/dsprites_throughput.md``.

Run from the repository root:

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/dsprites_throughput.py

Details (each row, the target rate): benchmarks/README.md#dsprites_throughputpy
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from tcx.datamodules.dsprites import NUM_IMAGES, DSprites, _render_full, index_to_factors, render_dsprites

RESULTS = Path(__file__).resolve().parent / "results" / "dsprites_throughput.md"


def _images_per_second(fn, batches, repeats: int) -> float:
    """Median over ``repeats`` timed passes of ``fn`` over ``batches`` (after one warm-up pass)."""
    for b in batches[:2]:
        fn(b)
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        n = 0
        for b in batches:
            n += fn(b)
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def bench_render(threads: int, batch: int, num_batches: int, repeats: int, full: bool = False) -> float:
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    batches = [
        index_to_factors(torch.randint(0, NUM_IMAGES, (batch,), generator=g)) for _ in range(num_batches)
    ]
    render = _render_full if full else render_dsprites
    return _images_per_second(lambda f: render(f).shape[0], batches, repeats)


def bench_loader(threads: int, batch: int, num_batches: int, repeats: int) -> float:
    torch.set_num_threads(threads)
    dm = DSprites(batch_size=batch, num_workers=0, epoch_size=batch * num_batches, seed=0)
    loader = dm.train_dataloader()
    list(zip(range(2), loader))  # warm-up, builds the datasets

    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        n = sum(x.shape[0] for x, _ in loader)
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only, do not write the results file")
    args = parser.parse_args()

    rows = []
    for threads in (1, 2):
        rows.append(("render_dsprites", threads, bench_render(threads, args.batch, args.batches, args.repeats)))
        rows.append(
            ("full 64x64 evaluation (reference)", threads,
             bench_render(threads, args.batch, args.batches // 5 or 1, args.repeats, full=True))
        )
        rows.append(("train_dataloader, num_workers=0", threads, bench_loader(threads, args.batch, args.batches, args.repeats)))

    table = [
        f"| what (batch {args.batch}) | threads | images/s |",
        "|---|---:|---:|",
        *[f"| {what} | {threads} | {rate:,.0f} |" for what, threads, rate in rows],
    ]
    print("\n".join(table))
    if args.no_write:
        return
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    command = "OMP_WAIT_POLICY=PASSIVE .venv/bin/python " + " ".join(
        [os.path.relpath(sys.argv[0], Path(__file__).resolve().parents[1])] + sys.argv[1:]
    )
    text = "\n".join(
        [
            "# dSprites throughput",
            "",
            f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
            f"- torch: {torch.__version__}, python {platform.python_version()}, {platform.machine()}",
            f"- machine: {os.cpu_count()} CPUs visible"
            + (f", load average {load[0]:.2f} at the end of the run (shared machine)" if load else ""),
            f"- OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}",
            f"- command: `{command}`",
            f"- median of {args.repeats} passes over {args.batches} batches of {args.batch} random grid points"
            " (the full-image reference over a fifth as many batches)",
            "",
            *table,
            "",
            "On a small shared machine the figures move by up to a factor of about 2 between runs"
            " (other processes compete for the cores); compare rows within one table. The loader rows"
            " include sampling, index-to-factor conversion and collation on top of rendering.",
            "",
        ]
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
