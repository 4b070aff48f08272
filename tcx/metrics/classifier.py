"""The small classifier whose features and predictions score generated images.

tcx's sample-quality measures (``tcx.metrics.sample_quality``) need a feature space and a label
predictor for the dataset at hand; Inception-v3 (the FID's) is neither available offline nor
suited to small images. ``train_classifier`` fits a small network (128 features) on the dataset's
own labels, seeded, and reports its held-out accuracy, which must be quoted beside any score
computed in its features. ``cached_classifier`` trains it once per dataset and seed and keeps the
weights in a file (tensors only, read back with ``weights_only=True``: the file is data, never code).

Details (the network, the training, the cache): docs/metrics.md#sample-quality-interpretability-and-likelihood
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn

from tcx.safe_io import atomic_save
from tcx.errors import TcxError
from tcx.validation import check_int

__all__ = ["FeatureClassifier", "train_classifier", "cached_classifier", "data_fingerprint", "default_cache_dir"]

FEATURE_DIM = 128
_VERSION = 2  # bump when the network or its training changes: old cache files are then not used


class FeatureClassifier(nn.Module):
    """``features(x) [B, 128]``, ``forward(x)`` class logits ``[B, num_classes]``,
    ``probs(x)`` softmax; ``accuracy`` is the held-out accuracy measured after training."""

    def __init__(self, input_shape: Sequence[int], num_classes: int):
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.num_classes = check_int("num_classes", num_classes, 2)
        if len(self.input_shape) == 3:
            c = self.input_shape[0]
            self.body = nn.Sequential(
                nn.Conv2d(c, 32, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(64, 64, 3, stride=1, padding=1), nn.ReLU(),
                nn.AdaptiveMaxPool2d(4), nn.Flatten(), nn.Linear(64 * 16, FEATURE_DIM), nn.ReLU(),
            )
        elif len(self.input_shape) == 1:
            self.body = nn.Sequential(
                nn.Linear(self.input_shape[0], 256), nn.ReLU(), nn.Linear(256, FEATURE_DIM), nn.ReLU()
            )
        else:
            raise TcxError(f"input_shape must be [C, H, W] or [n], got {self.input_shape}")
        self.head = nn.Linear(FEATURE_DIM, self.num_classes)
        self.register_buffer("accuracy", torch.tensor(float("nan")))

    def _check(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.input_shape:
            raise TcxError(f"FeatureClassifier: x has shape {tuple(x.shape)}, expected [B, *{self.input_shape}]")
        return x.float()

    def features(self, x: Tensor) -> Tensor:
        return self.body(self._check(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    @torch.no_grad()
    def probs(self, x: Tensor) -> Tensor:
        return torch.softmax(self(x), dim=1)

    @torch.no_grad()
    def evaluate(self, x: Tensor, batch_size: int = 512) -> tuple[Tensor, Tensor]:
        """``(features [N, 128], probs [N, C])`` of ``x`` in eval mode, on the module's device."""
        was = self.training
        self.eval()
        device = next(self.parameters()).device
        feats, probs = [], []
        for xb in x.split(batch_size):
            f = self.features(xb.to(device))
            feats.append(f.cpu())
            probs.append(torch.softmax(self.head(f), 1).cpu())
        self.train(was)
        return torch.cat(feats), torch.cat(probs)


def _labels(y: Tensor, num_classes: int, what: str) -> Tensor:
    y = torch.as_tensor(y)
    if y.dim() != 1 or y.dtype.is_floating_point:
        raise TcxError(f"{what} must be [N] integer class labels, got {y.dtype} {tuple(y.shape)}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise TcxError(f"{what} must lie in 0 .. {num_classes - 1}, found {int(y.min())} .. {int(y.max())}")
    return y.long()


@torch.enable_grad()
def train_classifier(
    x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor, num_classes: int,
    epochs: int = 2, seed: int = 0, batch_size: int = 128, lr: float = 1e-3,
) -> FeatureClassifier:
    """Fit a ``FeatureClassifier`` on ``(x_train, y_train [N])`` for ``epochs`` passes (seeded by
    ``seed``: the initialisation and the batch order) on the CPU, and store its accuracy on
    ``(x_test, y_test)`` in ``.accuracy``. Returned in eval mode."""
    y_train, y_test = _labels(y_train, num_classes, "y_train"), _labels(y_test, num_classes, "y_test")
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise TcxError("x_train/y_train and x_test/y_test must have the same number of rows")
    epochs = check_int("epochs", epochs, 1)
    torch.manual_seed(int(seed))
    model = FeatureClassifier(x_train.shape[1:], num_classes)
    g = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(int(epochs)):
        order = torch.randperm(len(x_train), generator=g)
        for rows in order.split(batch_size):
            loss = nn.functional.cross_entropy(model(x_train[rows].float()), y_train[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    _, probs = model.evaluate(x_test)
    model.accuracy.fill_(float((probs.argmax(1) == y_test).float().mean()))
    return model


def data_fingerprint(x: Tensor, y: Tensor, num: int = 512) -> str:
    """A short hash of the size and the first ``num`` items of a dataset: a cache key part that
    changes when the data (or their split) change."""
    h = hashlib.sha1()
    h.update(repr((tuple(x.shape), tuple(y.shape))).encode())
    h.update(x[:num].float().contiguous().numpy().tobytes())
    h.update(y[:num].long().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def default_cache_dir() -> Path:
    """``$TCX_CACHE`` or ``~/.cache/tcx``, subfolder ``classifiers``."""
    return Path(os.environ.get("TCX_CACHE", Path.home() / ".cache" / "tcx")) / "classifiers"


def cached_classifier(
    name: str, x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor, num_classes: int,
    seed: int = 0, epochs: int = 2, cache_dir: str | os.PathLike | None = None,
) -> FeatureClassifier:
    """``train_classifier`` once per dataset and seed: the weights are kept in
    ``cache_dir/<name>-<fingerprint>-s<seed>.pt`` (``name`` a readable dataset name; the
    fingerprint covers the data, the epochs and the network version) and read back with
    ``torch.load(weights_only=True)``. A file that cannot be read is replaced."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = json.dumps([_VERSION, data_fingerprint(x_train, y_train), data_fingerprint(x_test, y_test), num_classes, epochs])
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    path = folder / f"{safe}-{digest}-s{int(seed)}.pt"
    if path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model = FeatureClassifier(x_train.shape[1:], num_classes)
            model.load_state_dict(state)
            model.eval()
            return model
        except Exception:  # a truncated or foreign file: train again and overwrite it
            pass
    model = train_classifier(x_train, y_train, x_test, y_test, num_classes, epochs=epochs, seed=seed)
    state = model.state_dict()
    atomic_save(lambda f: torch.save(state, f), path, advice="set TCX_CACHE to a folder with space")
    return model
