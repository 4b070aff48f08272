"""A user's own datamodule, outside the tcx package, for `tcx fit --data my_module.MyDataModule`.

It follows tcx's datamodule protocol (tcx.datamodules.protocol): it declares `input_shape` and
yields `(x, y)` batches with x in [0, 1]; it also declares its two ground-truth factors.
`LabelledDataModule` has class labels and no renderer, `ImageDataModule` images only
(`(x,)` batches). The other classes are deliberately broken, for the tests of tcx's error messages.
"""

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset


def _two_factor_data(n: int, seed: int):
    """16-dimensional binary vectors: columns 0-7 copy factor a, columns 8-15 copy factor b,
    each bit flipped with probability 0.05."""
    g = torch.Generator().manual_seed(seed)
    factors = torch.randint(0, 2, (n, 2), generator=g)
    x = factors.repeat_interleave(8, dim=1).float()
    flip = torch.rand(n, 16, generator=g) < 0.05
    return torch.where(flip, 1.0 - x, x), factors


class MyDataModule(pl.LightningDataModule):
    def __init__(self, batch_size: int = 32, num_points: int = 256, seed: int = 0):
        super().__init__()
        self.batch_size = batch_size
        self.input_shape = (16,)  # tcx builds the model's networks from this
        self.factor_names = ("a", "b")
        self.factor_sizes = (2, 2)
        x, y = _two_factor_data(num_points, seed)
        self.train_set = TensorDataset(x[: num_points * 3 // 4], y[: num_points * 3 // 4])
        self.val_set = TensorDataset(x[num_points * 3 // 4 :], y[num_points * 3 // 4 :])
        self.dataset_size = len(self.train_set)  # the number of training points

    def sample_factors(self, num, generator=None):
        return torch.randint(0, 2, (num, 2), generator=generator)

    def render(self, factors):
        return factors.repeat_interleave(8, dim=1).float()

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)

    # `tcx test` and `tcx predict` run on these (here the held-out points again)
    def test_dataloader(self):
        return self.val_dataloader()

    def predict_dataloader(self):
        return self.val_dataloader()


def _labelled_images(n: int, seed: int):
    """16x16 images of 4 classes: class c lights quadrant c (value 0.8) over noise in [0, 0.2]."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    x = 0.2 * torch.rand(n, 1, 16, 16, generator=g)
    for c in range(4):
        rows, cols = divmod(c, 2)
        x[labels == c, :, rows * 8:(rows + 1) * 8, cols * 8:(cols + 1) * 8] = 0.8
    return x, labels


class LabelledDataModule(pl.LightningDataModule):
    """Images with a class label `[B]` (long) and no renderer: `tcx.groundtruth.LabelledData`."""

    input_shape = (1, 16, 16)
    num_classes = 4
    class_names = ("top left", "top right", "bottom left", "bottom right")

    def __init__(self, batch_size: int = 32, num_points: int = 256, seed: int = 0):
        super().__init__()
        self.batch_size = batch_size
        x, y = _labelled_images(num_points, seed)
        cut = num_points * 3 // 4
        self.train_set, self.val_set = TensorDataset(x[:cut], y[:cut]), TensorDataset(x[cut:], y[cut:])
        self.dataset_size = cut

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)

    def test_dataloader(self):
        return self.val_dataloader()

    def predict_dataloader(self):
        return self.val_dataloader()


class ImageDataModule(LabelledDataModule):
    """The same images with no labels at all: batches are 1-tuples `(x,)` (what `TensorDataset(x)` gives)."""

    num_classes = class_names = None

    def __init__(self, batch_size: int = 32, num_points: int = 256, seed: int = 0):
        super().__init__(batch_size, num_points, seed)
        self.train_set, self.val_set = TensorDataset(self.train_set.tensors[0]), TensorDataset(self.val_set.tensors[0])


class NoShapeDataModule(MyDataModule):
    """Forgets to declare `input_shape`."""

    def __init__(self, batch_size: int = 32):
        super().__init__(batch_size=batch_size)
        del self.input_shape


class ByteDataModule(MyDataModule):
    """Yields x in 0..255 (bytes, not rescaled to [0, 1])."""

    def train_dataloader(self):
        x, y = self.train_set.tensors
        return DataLoader(TensorDataset(x * 255.0, y), batch_size=self.batch_size)
