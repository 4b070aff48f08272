"""One table across runs: ``tcx compare RUN_DIRS...`` and :func:`compare` from Python.

Reads each run's ``summary.json`` (folders searched recursively), groups the runs by their
configuration less the seeds, and gives each group's mean +- sd (n - 1) over its runs, with n.

    tcx compare runs/tcx --values val/elbo metrics/mig --format csv
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import statistics
from pathlib import Path

from tcx.errors import TcxError

#: the values a table shows unless asked for others (those that no run has are left out)
DEFAULT_VALUES = ("val/elbo", "val/reconstruction", "val/rate", "val/corex_bound", "metrics/mig",
                  "metrics/dci_disentanglement", "metrics/sap", "test/elbo")
#: the Trainer settings that make two runs different experiments (folders, loggers, bars do not)
TRAINER_KEYS = ("max_epochs", "max_steps", "min_epochs", "min_steps", "precision", "accumulate_grad_batches",
                "gradient_clip_val", "gradient_clip_algorithm", "limit_train_batches", "deterministic")


def load_summaries(paths) -> list[dict]:
    """The ``summary.json`` of each of ``paths`` (a file, or every one under a folder), with its ``path``."""
    out = []
    for given in paths:
        path = Path(given)
        files = [path] if path.is_file() else sorted(path.rglob("summary.json")) if path.is_dir() else []
        if not files:
            raise TcxError(f"{given}: no summary.json there (every tcx run writes one in its folder, "
                           "runs/tcx/<run id>/ or its --trainer.default_root_dir)")
        for file in files:
            try:
                data = json.loads(file.read_text())
            except (OSError, ValueError) as exc:
                raise TcxError(f"{file}: not a readable summary.json ({type(exc).__name__}: {exc})") from None
            if not isinstance(data, dict):
                raise TcxError(f"{file}: not a tcx summary (a JSON object)")
            out.append({**data, "path": str(file)})
    return out


def group_key(summary: dict) -> dict:
    """What makes runs the same experiment: the configuration less its seeds."""
    trainer = summary.get("trainer") or {}
    return {
        "command": summary.get("command"), "model": summary.get("model_class"), "data": summary.get("data_class"),
        **{f"{group}.{k}": v for group in ("model", "data")
           for k, v in sorted(dict(summary.get(f"{group}_args") or {}).items()) if k != "seed"},
        **{f"trainer.{k}": trainer.get(k) for k in TRAINER_KEYS if k in trainer},
        "precision": summary.get("precision"), "optimizer": summary.get("optimizer"),
        "lr_scheduler": summary.get("lr_scheduler"),
    }


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def compare(summaries, values=None) -> list[dict]:
    """A row per group, in order of appearance: ``{"setting": {key: value where groups differ}, "n",
    "seeds", "values": {name: (mean, sd, count)}}``; sd is ``nan`` for one run, and a value only some
    runs have is averaged over those (``count``). ``values``: what to average (:data:`DEFAULT_VALUES`)."""
    summaries = list(summaries)
    if not summaries:
        raise TcxError("no runs to compare")
    groups: dict[str, list[dict]] = {}
    keys: dict[str, dict] = {}
    for summary in summaries:
        key = group_key(summary)
        name = _canonical(key)
        groups.setdefault(name, []).append(summary)
        keys[name] = key
    names = sorted({k for key in keys.values() for k in key})
    differ = [k for k in names if len({_canonical(key.get(k)) for key in keys.values()}) > 1]
    wanted = list(values) if values else [v for v in DEFAULT_VALUES
                                          if any(v in (s.get("values") or {}) for s in summaries)]
    rows = []
    for name, runs in groups.items():
        stats = {}
        for value in wanted:
            xs = [float(r["values"][value]) for r in runs if value in (r.get("values") or {})]
            xs = [x for x in xs if math.isfinite(x)]
            if xs:
                sd = statistics.stdev(xs) if len(xs) > 1 else float("nan")
                stats[value] = (statistics.fmean(xs), sd, len(xs))
        rows.append({"setting": {k: keys[name].get(k) for k in differ}, "n": len(runs),
                     "seeds": [r.get("seed_everything") for r in runs], "values": stats})
    return rows


def _cell(value) -> str:
    if isinstance(value, str):
        return value.rsplit(".", 1)[-1] if value.startswith("tcx.") else value
    return json.dumps(value, default=str)


def _number(mean: float, sd: float) -> str:
    return f"{mean:.4g} +- {sd:.2g}" if math.isfinite(sd) else f"{mean:.4g}"


def format_table(rows: list[dict], fmt: str = "markdown") -> str:
    """``rows`` of :func:`compare` as markdown (``mean +- sd``, ``(k)`` after a value only ``k`` runs
    have) or CSV (a ``_mean``, ``_sd`` and ``_n`` column per value)."""
    settings = list(dict.fromkeys(k for row in rows for k in row["setting"]))
    values = list(dict.fromkeys(v for row in rows for v in row["values"]))
    if fmt == "csv":
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow([*(settings or ["runs"]), "n", "seeds", *(f"{v}_{s}" for v in values for s in ("mean", "sd", "n"))])
        for row in rows:
            cells = [_cell(row["setting"].get(k)) for k in settings] or ["all"]
            stats = [x for v in values for x in (row["values"].get(v) or ("", "", 0))]
            writer.writerow([*cells, row["n"], " ".join(str(s) for s in row["seeds"]), *stats])
        return text.getvalue()
    if fmt != "markdown":
        raise TcxError(f"--format {fmt!r}: markdown or csv")
    head = [*(settings or ["runs"]), "n", *values]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [_cell(row["setting"].get(k)) for k in settings] or ["all"]
        cells.append(str(row["n"]))
        for v in values:
            if v not in row["values"]:
                cells.append("")
                continue
            mean, sd, count = row["values"][v]
            cells.append(_number(mean, sd) + (f" ({count})" if count != row["n"] else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def compare_main(argv: list[str]) -> int:
    """``tcx compare RUN_DIRS... [--values V ...] [--format markdown|csv] [--out FILE]``."""
    parser = argparse.ArgumentParser(
        prog="tcx compare", description="One table of mean +- sd over seeds from the summary.json of each run "
        "(runs grouped by their configuration less the seed).")
    parser.add_argument("runs", nargs="+", help="run folders (searched recursively) or summary.json files")
    parser.add_argument("--values", nargs="+", default=None,
                        help=f"the logged values to average (default: those of {', '.join(DEFAULT_VALUES)} the runs have)")
    parser.add_argument("--format", choices=("markdown", "csv"), default="markdown")
    parser.add_argument("--out", default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    table = format_table(compare(load_summaries(args.runs), args.values), args.format)
    print(table, end="")
    if args.out:
        Path(args.out).write_text(table)
    return 0
