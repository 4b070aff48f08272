"""CelebA (Liu, Luo, Wang and Tang, "Deep Learning Face Attributes in the Wild", ICCV 2015).

``CelebA``: 202,599 aligned face photos with 40 binary attributes, read from the official layout
under ``root/celeba/`` (get the files from ``CELEBA_URL``; tcx does not download them).
``verify_md5=True`` reads with torchvision after checking the official MD5 sums; ``False`` uses
tcx's own reader (``read_celeba_annotations``), for modified or partial copies. Batches are
``x [3, 64, 64]`` float in [0, 1] (centre-cropped to ``crop_size``, resized to ``image_size``) and
``y [40]`` long in {0, 1} (``ATTRIBUTE_NAMES``); the splits are CelebA's official partition.

Details (the layout, the two readers, the preprocessing): docs/datamodules.md#datamodulescelebapy-celeba
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import Dataset

from tcx.datamodules.loading import LoaderMixin
from tcx.validation import check_int
from tcx.errors import MissingFileError, TcxError
from tcx.validation import check_choice

__all__ = ["CelebA", "CelebAImages", "ATTRIBUTE_NAMES", "CELEBA_FILES", "CELEBA_URL", "read_celeba_annotations"]

CELEBA_URL = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
IMAGE_FOLDER = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
CELEBA_FILES = (
    ATTR_FILE,
    PARTITION_FILE,
    "identity_CelebA.txt",
    "list_bbox_celeba.txt",
    "list_landmarks_align_celeba.txt",
)
ATTRIBUTE_NAMES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin",
    "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young",
)
SPLITS = {"train": 0, "valid": 1, "test": 2}


def _folder(root: Path, verify_md5: bool) -> Path:
    """``root/celeba`` with the files the chosen reader needs; a clear error otherwise."""
    base = root / "celeba"
    needed = CELEBA_FILES if verify_md5 else (ATTR_FILE, PARTITION_FILE)
    get = (
        f"Get CelebA from {CELEBA_URL} (Align&Cropped Images: img_align_celeba.zip, unpacked; "
        f"Anno and Eval: {', '.join(CELEBA_FILES)}) and lay it out as ROOT/celeba/{IMAGE_FOLDER}/*.jpg "
        "and ROOT/celeba/<the text files>."
    )
    if not root.is_dir():
        raise MissingFileError(f"CelebA root {str(root)!r} does not exist. {get}")
    if not base.is_dir():
        if (root / IMAGE_FOLDER).is_dir() or (root / ATTR_FILE).is_file():
            raise MissingFileError(
                f"CelebA: found the files in {str(root)!r}, but torchvision's layout is ROOT/celeba/...: "
                f"set root={str(root.parent)!r} (the folder that contains celeba/)"
            )
        raise MissingFileError(f"CelebA: {str(base)!r} does not exist. {get}")
    missing = [n for n in needed if not (base / n).is_file()]
    if not (base / IMAGE_FOLDER).is_dir():
        missing.append(f"{IMAGE_FOLDER}/ (the unpacked img_align_celeba.zip)")
    if missing:
        hint = ""
        if verify_md5 and (base / ATTR_FILE).is_file() and (base / PARTITION_FILE).is_file() and (base / IMAGE_FOLDER).is_dir():
            hint = " (or pass verify_md5=False: tcx's reader needs only the attributes, the partition and the images)"
        raise MissingFileError(f"CelebA: missing in {str(base)!r}: {', '.join(missing)}{hint}. {get}")
    return base


def _check_md5(base: Path) -> None:
    from torchvision.datasets import CelebA as TorchvisionCelebA
    from torchvision.datasets.utils import check_integrity

    for _, md5, name in TorchvisionCelebA.file_list:
        if name.endswith(".zip"):
            continue
        if not check_integrity(str(base / name), md5):
            raise TcxError(
                f"CelebA: {str(base / name)!r} does not have the official MD5 sum {md5}: the file is truncated, "
                f"corrupt or modified. Download it again from {CELEBA_URL}, or pass verify_md5=False to read a "
                "modified copy without the check"
            )


def _read_lines(path: Path) -> list[list[str]]:
    try:
        with open(path) as f:
            return [line.split() for line in f if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise TcxError(f"{str(path)!r} could not be read as text ({exc}); the file is corrupt") from exc


def read_celeba_annotations(base: str | Path) -> tuple[list[str], Tensor, Tensor, tuple[str, ...]]:
    """tcx's reader of CelebA's annotation files in ``base`` (the ``celeba`` folder).

    Returns ``(filenames, attributes [N, 40] long in {0, 1}, partition [N] long in {0, 1, 2},
    attribute_names)``. Raises ``ValueError`` naming the file, what was expected and what was
    found, for a truncated or malformed file.
    """
    base = Path(base)
    attr_path, part_path = base / ATTR_FILE, base / PARTITION_FILE
    lines = _read_lines(attr_path)
    if len(lines) < 2 or len(lines[0]) != 1 or not lines[0][0].isdigit():
        raise TcxError(f"{str(attr_path)!r}: expected the image count on line 1 and the 40 attribute names on line 2")
    count, names = int(lines[0][0]), tuple(lines[1])
    if len(names) != len(ATTRIBUTE_NAMES):
        raise TcxError(f"{str(attr_path)!r}: line 2 must name 40 attributes, found {len(names)}")
    rows = lines[2:]
    if len(rows) != count:
        raise TcxError(
            f"{str(attr_path)!r}: line 1 announces {count} images but the file lists {len(rows)}; it is "
            f"truncated or corrupt: download it again from {CELEBA_URL}"
        )
    filenames = [r[0] for r in rows]
    bad = next((i for i, r in enumerate(rows) if len(r) != 41 or any(v not in ("1", "-1") for v in r[1:])), None)
    if bad is not None:
        raise TcxError(
            f"{str(attr_path)!r}: line {bad + 3} must be a file name and 40 values in {{-1, 1}}, found {rows[bad][:6]}..."
        )
    attrs = torch.tensor([[v == "1" for v in r[1:]] for r in rows], dtype=torch.long)
    parts = _read_lines(part_path)
    if len(parts) != count or any(len(p) != 2 or p[1] not in ("0", "1", "2") for p in parts):
        raise TcxError(
            f"{str(part_path)!r}: expected {count} lines 'file split' with split 0, 1 or 2 (as many as "
            f"{ATTR_FILE} lists), found {len(parts)} lines"
        )
    part_of = {p[0]: int(p[1]) for p in parts}
    missing = [f for f in filenames if f not in part_of]
    if missing:
        raise TcxError(f"{str(part_path)!r} does not list {len(missing)} images of {ATTR_FILE}, e.g. {missing[0]}")
    partition = torch.tensor([part_of[f] for f in filenames], dtype=torch.long)
    return filenames, attrs, partition, names


class CelebAImages(Dataset):
    """CelebA items ``(x [3, S, S] float in [0, 1], y [40] long in {0, 1})`` for positions ``indices``.

    ``load(i) -> uint8 [3, H, W]`` reads image ``i``; it is cropped to ``crop_size`` about the
    centre and resized to ``image_size`` (antialiased bilinear).
    """

    def __init__(self, load, names: Sequence[str], attrs: Tensor, indices: Tensor, crop_size: int, image_size: int):
        self.load, self.names, self.attrs = load, names, attrs
        self.indices, self.crop_size, self.image_size = indices.long(), crop_size, image_size

    def __len__(self) -> int:
        return self.indices.shape[0]

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        import torchvision.transforms.v2.functional as TF

        k = int(self.indices[i])
        img = self.load(k)
        h, w = img.shape[-2:]
        if img.shape[0] != 3 or min(h, w) < self.crop_size:
            raise TcxError(
                f"CelebA image {self.names[k]!r} is {img.shape[0]} x {h} x {w}; crop_size={self.crop_size} needs RGB "
                "images at least that large (CelebA's aligned images are 3 x 218 x 178)"
            )
        img = TF.center_crop(img, [self.crop_size, self.crop_size])
        if self.image_size != self.crop_size:
            img = TF.resize(img, [self.image_size, self.image_size], antialias=True)
        return img.float() / 255.0, self.attrs[k]


class _FolderLoader:
    def __init__(self, folder: Path, names: Sequence[str]):
        self.folder, self.names = folder, names

    def __call__(self, k: int) -> Tensor:
        from torchvision.io import ImageReadMode, decode_image

        path = self.folder / self.names[k]
        try:
            return decode_image(str(path), mode=ImageReadMode.RGB)
        except RuntimeError as exc:
            raise TcxError(f"CelebA image {str(path)!r} could not be decoded ({exc}); the file is corrupt") from exc


class _TorchvisionLoader:
    def __init__(self, dataset):
        self.dataset = dataset

    def __call__(self, k: int) -> Tensor:
        import torchvision.transforms.v2.functional as TF

        return TF.pil_to_tensor(self.dataset[k][0].convert("RGB"))


class CelebA(LoaderMixin, pl.LightningDataModule):
    """CelebA datamodule: batches ``(x [B, 3, 64, 64] float in [0, 1], y [B, 40] long in {0, 1})``.

    See docs/datamodules.md#datamodulescelebapy-celeba for the layout, the two readers and the preprocessing.

    Args:
        root: the folder that contains ``celeba/`` (torchvision's ``root``).
        image_size: side of the output images (64; the conv network needs a multiple of 16).
        crop_size: side of the centre crop taken before resizing (148).
        verify_md5: read with torchvision after checking the official MD5 sums (True), or with
            tcx's own reader without them (False).
        batch_size: images per batch.
        num_workers: DataLoader workers; None (the default) uses the CPUs available to this
            process less one, at most 8 (JPEG decoding is the bottleneck).
        pin_memory: None pins when training on CUDA.
        epoch_size: training images per epoch (a fresh seeded subset each epoch), None for all.
        seed: seed of the per-epoch subsets.

    Declares ``attribute_names`` (40) and ``num_attributes``; it has no factor grid, so it is
    neither ``GroundTruth`` nor ``LabelledData``.
    """

    def __init__(
        self,
        root: str = "data",
        image_size: int = 64,
        crop_size: int = 148,
        verify_md5: bool = True,
        batch_size: int = 128,
        num_workers: int | None = None,
        pin_memory: bool | None = None,
        epoch_size: int | None = None,
        seed: int = 0,
    ):
        super().__init__()
        check_int("crop_size", crop_size, 1, 178)
        check_int("image_size", image_size, 1, crop_size)
        check_int("batch_size", batch_size, 1)
        check_int("num_workers", num_workers, 0, allow_none=True)
        check_int("epoch_size", epoch_size, 1, allow_none=True)
        check_int("seed", seed, -(2**62), 2**62)
        self.save_hyperparameters()
        self.root, self.verify_md5 = Path(root), bool(verify_md5)
        self.image_size, self.crop_size = image_size, crop_size
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.epoch_size, self.seed = epoch_size, seed
        self.input_shape: tuple[int, int, int] = (3, image_size, image_size)
        self._base = _folder(self.root, self.verify_md5)
        self._data: tuple | None = None
        self.train_dataset = self.val_dataset = self.test_dataset = None

    @property
    def attribute_names(self) -> tuple[str, ...]:
        """The 40 attribute names, in the order of ``y``'s columns."""
        return ATTRIBUTE_NAMES

    @property
    def num_attributes(self) -> int:
        return len(ATTRIBUTE_NAMES)

    def _load(self) -> tuple:
        if self._data is None:
            if self.verify_md5:
                _check_md5(self._base)
                from torchvision.datasets import CelebA as TorchvisionCelebA

                ds = TorchvisionCelebA(str(self.root), split="all", target_type="attr", download=False)
                names = list(ds.filename)
                attrs = ds.attr.long()
                part_of = {p[0]: int(p[1]) for p in _read_lines(self._base / PARTITION_FILE) if len(p) == 2}
                partition = torch.tensor([part_of.get(f, -1) for f in names], dtype=torch.long)
                load = _TorchvisionLoader(ds)
            else:
                names, attrs, partition, _ = read_celeba_annotations(self._base)
                load = _FolderLoader(self._base / IMAGE_FOLDER, names)
            present = set(os.listdir(self._base / IMAGE_FOLDER))
            missing = [f for f in names if f not in present]
            if missing:
                raise MissingFileError(
                    f"CelebA: {len(missing)} of the {len(names)} images listed in {ATTR_FILE} are missing from "
                    f"{str(self._base / IMAGE_FOLDER)!r} (e.g. {missing[0]}); unpack img_align_celeba.zip there again"
                )
            self._data = (load, names, attrs, partition)
        return self._data

    def dataset(self, split: str) -> CelebAImages:
        """The images of an official split: ``"train"``, ``"valid"`` or ``"test"``."""
        check_choice("split", split, SPLITS)
        load, names, attrs, partition = self._load()
        idx = (partition == SPLITS[split]).nonzero().squeeze(1)
        if idx.numel() == 0:
            raise TcxError(f"CelebA: {PARTITION_FILE} in {str(self._base)!r} puts no image in the {split!r} split")
        return CelebAImages(load, names, attrs, idx, self.crop_size, self.image_size)

    def has_own_test_set(self) -> bool:
        """CelebA's official partition has a test part."""
        return True

    def setup(self, stage: str | None = None) -> None:
        if self.train_dataset is None:
            self.train_dataset = self.dataset("train")
            self.val_dataset = self.dataset("valid")
        if self.test_dataset is None and stage in ("test", None):
            self.test_dataset = self.dataset("test")
