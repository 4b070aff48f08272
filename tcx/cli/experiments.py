"""Experiment configurations shipped with tcx, selectable by name.

``tcx fit -c NAME`` accepts, besides a path to a YAML file, the name of a packaged experiment
(``betavae_dsprites``, ``anchorvae_mnist``, ...): the files of the ``tcx.configs`` package, which
are the repository's ``configs/`` folder installed with tcx. A path that exists always wins over a
packaged name, so a user's own ``betavae_dsprites.yaml`` in the working directory is the one used.
``tcx configs`` prints the list with each experiment's first comment line.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from tcx.errors import MissingFileError

__all__ = [
    "available_experiments",
    "experiment_path",
    "describe_experiments",
]

_SUFFIXES = (".yaml", ".yml")


def _package_dir() -> Path:
    return Path(str(resources.files("tcx.configs")))


def available_experiments() -> dict[str, Path]:
    """The packaged experiments, name (file stem) to file, sorted by name."""
    folder = _package_dir()
    files = sorted(p for p in folder.iterdir() if p.suffix in _SUFFIXES and p.is_file())
    return {p.stem: p for p in files}


def experiment_path(name: str) -> Path:
    """The file of a packaged experiment; ``name`` may carry a ``.yaml`` suffix or the
    ``configs/`` prefix of the source tree. Raises ``FileNotFoundError`` naming the choices."""
    stem = Path(name).name
    for suffix in _SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    known = available_experiments()
    if stem not in known:
        raise MissingFileError(
            f"no config file {name!r} and no packaged experiment of that name; give a path to a "
            f"YAML file, or one of: {', '.join(known)} (`tcx configs` lists them)"
        )
    return known[stem]


def _summary(path: Path) -> str:
    for line in path.read_text().splitlines():
        text = line.lstrip("# ").strip()
        if line.startswith("#") and text:
            # the first comment line reads "<title>: `tcx fit -c configs/...`"; keep the title
            return text.split(": `tcx", 1)[0].rstrip(".:")
    return ""


def describe_experiments() -> str:
    """The text of ``tcx configs``: one line per packaged experiment."""
    known = available_experiments()
    width = max(len(n) for n in known)
    lines = ["Packaged experiments (run one with `tcx fit -c NAME`; a path to your own YAML works too):"]
    lines += [f"  {name.ljust(width)}  {_summary(path)}" for name, path in known.items()]
    return "\n".join(lines)
