"""The experiments shipped with tcx (the ``tcx.configs`` package, the repository's ``configs/``):
``tcx fit -c NAME`` selects one by name (a path that exists always wins), ``tcx configs`` lists them."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from tcx.errors import MissingFileError


def available_experiments() -> dict[str, Path]:
    """The packaged experiments, name (file stem) to file, sorted by name."""
    folder = Path(str(resources.files("tcx.configs")))
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix in (".yaml", ".yml") and p.is_file()}


def experiment_path(name: str) -> Path:
    """The file of a packaged experiment (``name`` may carry ``configs/`` and ``.yaml``), or a
    :class:`MissingFileError` naming the choices."""
    known = available_experiments()
    stem = re.sub(r"\.ya?ml$", "", Path(name).name)
    if stem not in known:
        raise MissingFileError(
            f"no config file {name!r} and no packaged experiment of that name; give a path to a "
            f"YAML file, or one of: {', '.join(known)} (`tcx configs` lists them)")
    return known[stem]


def _title(path: Path) -> str:
    # the first comment line reads "<title>: `tcx fit -c configs/...`"; keep the title
    line = next((ln for ln in path.read_text().splitlines() if ln.startswith("#") and ln.lstrip("# ").strip()), "")
    return line.lstrip("# ").strip().split(": `tcx", 1)[0].rstrip(".:")


def describe_experiments() -> str:
    """The text of ``tcx configs``: one line per packaged experiment."""
    known = available_experiments()
    width = max(len(n) for n in known)
    lines = ["Packaged experiments (run one with `tcx fit -c NAME`; a path to your own YAML works too):"]
    return "\n".join(lines + [f"  {name.ljust(width)}  {_title(path)}" for name, path in known.items()])
