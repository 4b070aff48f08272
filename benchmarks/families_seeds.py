"""Every model family on dSprites over several seeds: one table of mean +- sd a researcher can start from.

The successor of ``families_dsprites.py`` (one seed): each family's config runs through the real
command line once per seed (``tcx fit -c configs/<family>.yaml --seed_everything S``, the same short
budget for all), each run leaves its ``summary.json`` (validation ELBO, rate, the disentanglement
metrics at the end of fit), and ``tcx.compare`` turns them into mean +- sd over the seeds, n per row.

    nice .venv/bin/python benchmarks/families_seeds.py                 # 9 families x 3 seeds
    nice .venv/bin/python benchmarks/families_seeds.py --seeds 0 1 --epoch-size 16384 --families VAE

It writes the table, the budget, the wall time and the CPU to ``benchmarks/results/families_seeds.md``
(``--out``) and keeps the runs' folders under ``--runs`` (default ``runs/families_seeds``).

Details: benchmarks/README.md#families_seedspy
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from families_dsprites import FAMILIES  # noqa: E402  (the families and their configs)

from results_io import add_record  # noqa: E402
from tcx.compare import compare, load_summaries  # noqa: E402
from tcx.hardware import cpu_flags  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "families_seeds.md"
#: what the table shows: the family's own bound on the validation split and the metrics at the end of fit
VALUES = ("val/elbo", "val/rate", "metrics/mig", "metrics/dci_disentanglement", "metrics/sap")
#: the code metrics at the end of fit on the default config's 5,000 points (no FactorVAE/BetaVAE
#: scores: their classifiers took most of a short run's time)
METRICS = ["--trainer.callbacks+=tcx.callbacks.DisentanglementMetrics", "--trainer.callbacks.num_samples=5000",
           "--trainer.callbacks.metrics=[mig, dci, sap]"]


def fit_command(config: str, extra: list[str], seed: int, epoch_size: int, run_dir: Path) -> list[str]:
    steps = epoch_size // 256
    return [
        str(Path(sys.executable).with_name("tcx")), "fit", "-c", str(ROOT / "configs" / config),
        "--seed_everything", str(seed), "--trainer.max_epochs", "1", "--data.epoch_size", str(epoch_size),
        "--data.batch_size", "256", "--trainer.precision", "32-true", "--trainer.logger", "false",
        "--trainer.callbacks", "[]", *METRICS, "--trainer.enable_progress_bar", "false",
        "--trainer.default_root_dir", str(run_dir), *[e.format(steps=steps) for e in extra],
    ]


def _cell(stats) -> str:
    if stats is None:
        return ""
    mean, sd, n = stats
    return f"{mean:.3f} +- {sd:.3f}" if n > 1 else f"{mean:.3f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epoch-size", type=int, default=16384, help="training images (one epoch, batch 256)")
    parser.add_argument("--families", nargs="*", help="table names to run (default: all)")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "families_seeds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--reuse", action="store_true",
                        help="keep a run whose folder already has its summary.json (write the table again, or finish "
                        "an interrupted benchmark); the wall time then counts only the runs made now")
    args = parser.parse_args(argv)

    chosen = [f for f in FAMILIES if not args.families or f[0] in args.families]
    unknown = sorted(set(args.families or ()) - {f[0] for f in FAMILIES})
    if unknown:
        parser.error(f"--families: unknown {', '.join(unknown)}; the table names are {', '.join(f[0] for f in FAMILIES)}")
    env = dict(os.environ, WANDB_MODE="disabled", OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    started = time.perf_counter()
    rows, example = [], None
    for name, config, extra in chosen:
        folders = []
        for seed in args.seeds:
            run_dir = args.runs / f"{config.removesuffix('.yaml')}-seed{seed}"
            cmd = fit_command(config, extra, seed, args.epoch_size, run_dir)
            example = example or cmd
            folders.append(run_dir)
            if args.reuse and (run_dir / "summary.json").is_file():
                continue
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"{name} seed {seed}: `tcx fit` failed (exit {proc.returncode})")
            print(f"{name:16s} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
        # the seeds of one family are one group: compare() must find exactly one, with n = seeds
        summaries = load_summaries(folders)
        (row,) = compare(summaries, VALUES)
        assert row["n"] == len(args.seeds), row
        collapsed = sum(any("collapsed" in w for w in s.get("warnings", [])) for s in summaries)
        flags = " ".join(e.format(steps=args.epoch_size // 256) for e in extra)
        rows.append((name, config + (f"` `{flags}" if flags else ""), row, collapsed))
    seconds = time.perf_counter() - started

    flags = sorted(cpu_flags() & {"avx2", "avx512_bf16", "amx_bf16"})
    lines = [
        f"# Model families on dSprites over {len(args.seeds)} seeds: mean +- sd",
        "",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}; "
        f"{'wall time of the runs made now (the others reused)' if args.reuse else 'total wall time'} {seconds / 60:.1f} min "
        f"on {os.cpu_count()} CPUs ({platform.machine()}, flags: {', '.join(flags) or 'none of avx2/avx512_bf16/amx_bf16'}),"
        " a machine shared with other work, under `nice`",
        f"- command: `.venv/bin/python benchmarks/families_seeds.py "
        f"{' '.join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))}".rstrip() + "`",
        f"- budget per run: one epoch of {args.epoch_size} procedural dSprites images, batch 256 "
        f"({args.epoch_size // 256} steps), fp32, seeds {' '.join(map(str, args.seeds))} (`--seed_everything`; "
        "the data split stays seed 0), each family's config otherwise unchanged:",
        "",
        "      " + " ".join(shlex.quote(a) for a in ["tcx", "fit", "-c", "configs/<family>.yaml", *example[4:-2]])
        + " --trainer.default_root_dir <run>",
        "",
        "- values from each run's summary.json, gathered by `tcx.compare`: ELBO and total rate (nats per image, "
        "the family's own bound, on the 5,000 validation images), MIG, DCI disentanglement and SAP at the "
        "end of fit (on 5,000 rendered points); mean +- sample sd over the seeds",
        "",
        "| family | config (extra flags) | n | " + " | ".join(VALUES) + " | runs warned collapsed |",
        "|---|---|---:|" + "---:|" * len(VALUES) + "---:|",
    ]
    for name, config, row, collapsed in rows:
        lines.append(f"| {name} | `{config}` | {row['n']} | " + " | ".join(_cell(row["values"].get(v)) for v in VALUES)
                     + f" | {collapsed} of {row['n']} |")
    warned = sum(r[3] for r in rows)
    total = sum(r[2]["n"] for r in rows)
    lines += [
        "",
        f"{warned} of {total} runs ended with tcx's posterior-collapse warning (a total rate under 0.1 nats, or "
        "idle latents with a poor reconstruction; callbacks/run_summary.py). Where most runs collapsed, the metrics score "
        "codes that carry almost nothing, so their differences say nothing about disentanglement: raise "
        "`--epoch-size` (the one-seed table of families_dsprites.md, at 256 steps, has total rates of 11-52 nats).",
        "",
        "What it can show: at this budget, how the families differ early in training and how much a seed moves "
        "each number (the sd), so a difference smaller than about two sd between two rows is not one. What it "
        f"cannot show: converged quality (the papers train for 300k+ steps, this is {args.epoch_size // 256}), "
        f"rankings that hold at other budgets or settings, or differences below what {len(args.seeds)} seeds "
        "resolve. ELBOs of different families are different bounds (the hierarchical VAE's is its hierarchical "
        "ELBO; AnnealedVAE and FactorVAE do not bound the same objective), so compare them with that in mind.",
    ]
    # the earlier records of the file stay (newest first), as every benchmark's do
    add_record(args.out, lines[0], [f"## {datetime.date.today().isoformat()}", *lines[1:]])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
