"""Writing a benchmark's record into its results file without losing the earlier ones.

``add_record`` puts one run's lines into ``benchmarks/results/<name>.md`` under the file's title:
first (``newest_first``, for files whose top section is the current record) or last. The earlier
records stay as they are, hand-written notes included, and the file is replaced atomically.
``recorded_args`` is the command line as a record shows it (without ``--out PATH``).
"""

from __future__ import annotations

from pathlib import Path

from tcx.safe_io import atomic_save

__all__ = ["add_record", "recorded_args"]


def add_record(path, title: str, lines: list[str], newest_first: bool = True) -> Path:
    """Print ``lines`` and add them to the results file ``path``, whose first line is ``title``
    (a markdown heading); a new file starts with the title."""
    record = "\n".join(lines).strip("\n") + "\n"
    print(record)
    out = Path(path)
    old = out.read_text() if out.exists() else ""
    head = title.rstrip("\n") + "\n"
    earlier = old[len(head):].strip("\n") if old.startswith(head) else old.strip("\n")
    parts = [record, earlier + "\n"] if newest_first else [earlier + "\n", record]
    text = head + "\n" + "\n".join(p for p in parts if p.strip())
    atomic_save(lambda f: f.write(text.encode()), out, advice="give --out a path on a disk with room")
    return out


def recorded_args(argv: list[str]) -> list[str]:
    """The arguments without ``--out PATH``: a path on the machine that ran it, not a setting."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--out":
            skip = True
        elif not arg.startswith("--out="):
            out.append(arg)
    return out
