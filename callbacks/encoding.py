"""Running a model on data for the callbacks: posteriors of a fixed sample, decoded images,
fixed inputs, and the cache of encodings the callbacks share.

Everything here reads the model through its documented interface (``encode``, ``decode``;
docs/design.md#the-model-interface) and the data through what the datamodule declares
(``sample_factors`` and ``render``, or ``val_dataloader``). Call the encoders under
``evaluating(model)``: no gradients, eval mode, the previous mode restored.
"""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass
from typing import Iterable

import torch
from torch import Tensor

from tcx import visualize as viz
from tcx.batches import split_batch as read_batch
from tcx.groundtruth import has_val_dataloader

__all__ = [
    "evaluating",
    "to_model",
    "encode_posteriors",
    "decode_images",
    "Encoded",
    "split_batch",
    "encode_dataset",
    "validation_batches",
    "EncodingCache",
    "SHARED_ENCODINGS",
    "shared_encoding",
    "fixed_inputs",
]


@contextlib.contextmanager
def evaluating(model):
    """``torch.no_grad()`` with ``model`` in eval mode; its previous mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def param_dtype(model) -> torch.dtype:
    """The dtype of the model's first floating parameter (float32 when it has none)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def model_device(model) -> torch.device:
    """The device the model runs on."""
    device = getattr(model, "device", None)
    if device is not None:
        return torch.device(device)
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def to_model(model, t: Tensor) -> Tensor:
    """``t`` on the model's device, in its parameters' dtype."""
    return t.to(device=model_device(model), dtype=param_dtype(model))


def encode_posteriors(model, x: Tensor) -> tuple[Tensor, Tensor]:
    """The posterior ``mean`` and ``log_var`` of ``x`` ``[B, D]``, float32 on the CPU."""
    posterior = model.encode(to_model(model, x))
    return posterior.mean.float().cpu(), posterior.log_var.float().cpu()


def decode_images(model, z: Tensor, batch_size: int = 512) -> Tensor:
    """Decoded means of codes ``z`` ``[n, D]`` as a float32 CPU image batch ``[n, C, H, W]``."""
    outs = [model.decode(to_model(model, chunk)).float().cpu() for chunk in z.split(batch_size)]
    return viz.as_image_batch(torch.cat(outs))


@dataclass
class Encoded:
    """Posteriors of ``N`` data points: ``mean`` and ``log_var`` ``[N, D]`` (float32, CPU) and
    their factors ``[N, K]`` or labels ``[N]`` (``y``; ``None`` when the data have none)."""

    mean: Tensor
    log_var: Tensor
    y: Tensor | None

    def __len__(self) -> int:
        return self.mean.shape[0]

    def head(self, n: int) -> "Encoded":
        return Encoded(self.mean[:n], self.log_var[:n], None if self.y is None else self.y[:n])

    def samples(self, seed: int = 0) -> Tensor:
        """One draw ``z ~ p(z|x)`` per point: a sample of the aggregate posterior ``q(z)``."""
        g = torch.Generator().manual_seed(seed)
        eps = torch.randn(self.mean.shape, generator=g)
        return self.mean + torch.exp(0.5 * self.log_var) * eps


def split_batch(batch) -> tuple[Tensor, Tensor | None]:
    """``(x, y)`` of a batch (``tcx/batches.py``); ``y`` is ``None`` unless it holds integer factors
    or labels, one per row."""
    x, y = read_batch(batch)
    if y is not None and (y.dim() == 0 or y.shape[0] != x.shape[0] or y.numel() == 0 or y.is_floating_point()):
        y = None
    return x, y


def encode_dataset(model, batches: Iterable, num_points: int) -> Encoded | None:
    """Encode the first ``num_points`` points of ``batches`` (an iterable of ``x`` or ``(x, y)``
    batches, e.g. a validation DataLoader); ``None`` when it yields nothing. Call it under
    ``evaluating(model)``."""
    means, log_vars, ys, have = [], [], [], 0
    keep_y = True
    for batch in batches:
        x, y = split_batch(batch)
        x = x[: num_points - have]
        mean, log_var = encode_posteriors(model, x)
        means.append(mean)
        log_vars.append(log_var)
        if y is None:
            keep_y = False
        elif keep_y:
            ys.append(y[: x.shape[0]].cpu().long())
        have += x.shape[0]
        if have >= num_points:
            break
    if not means:
        return None
    y_all = torch.cat(ys) if keep_y and ys else None
    return Encoded(torch.cat(means), torch.cat(log_vars), y_all)


def validation_batches(trainer) -> Iterable | None:
    """The validation data of ``trainer``: its (first) validation loader, or under DDP the
    datamodule's whole, unsharded ``val_dataloader()``; ``None`` when there is none."""
    dm = getattr(trainer, "datamodule", None)
    if int(getattr(trainer, "world_size", 1) or 1) > 1 and has_val_dataloader(dm):
        # under DDP the trainer's loaders are sharded (DistributedSampler): read the datamodule's
        # whole validation set, so that pictures and diagnostics see the one-process sample
        return dm.val_dataloader()
    loaders = getattr(trainer, "val_dataloaders", None)
    if isinstance(loaders, dict):
        loaders = next(iter(loaders.values()), None)
    if isinstance(loaders, (list, tuple)):
        loaders = loaders[0] if loaders else None
    if loaders is not None:
        return loaders
    dm = getattr(trainer, "datamodule", None)
    if has_val_dataloader(dm):
        return dm.val_dataloader()
    return None


class EncodingCache:
    """The posteriors of the first validation points, encoded once per global step and shared by
    every callback that asks for them (``InformationDiagnostics``, ``LatentTraversal``,
    ``Samples``, ...), so a validation epoch encodes its sample once.

    Owned by the callbacks: one module-level instance, ``SHARED_ENCODINGS``, holds the latest
    encoding only, with a weak reference to the model it came from, so it neither keeps a model
    alive nor hands one model's codes to another. A later request for fewer points reuses it; one
    for more points encodes again, unless the data ran out the last time.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self._model: weakref.ref | None = None
        self._key: tuple[int, int] | None = None
        self._encoded: Encoded | None = None
        self._exhausted = False

    @staticmethod
    def _step_key(trainer) -> tuple[int, int]:
        return int(trainer.global_step), int(trainer.current_epoch)

    def store(self, trainer, model, encoded: Encoded, exhausted: bool) -> None:
        """Keep ``encoded`` as ``model``'s posteriors at the trainer's current step;
        ``exhausted``: the data had no more points than these."""
        self._model = weakref.ref(model)
        self._key = self._step_key(trainer)
        self._encoded, self._exhausted = encoded, bool(exhausted)

    def get(self, trainer, model, num_points: int) -> Encoded | None:
        """The posteriors of the first ``num_points`` validation points of ``trainer`` under
        ``model``, from the cache when it holds them for this step, else encoded now (call it
        under ``evaluating(model)``). ``None`` when there are no validation data."""
        fresh = (
            self._model is not None and self._model() is model and self._key == self._step_key(trainer)
            and self._encoded is not None
        )
        if fresh and (len(self._encoded) >= num_points or self._exhausted):
            return self._encoded.head(num_points)
        batches = validation_batches(trainer)
        if batches is None:
            return None
        encoded = encode_dataset(model, batches, num_points)
        if encoded is not None:
            self.store(trainer, model, encoded, exhausted=len(encoded) < num_points)
        return encoded


#: the encodings the callbacks share (see :class:`EncodingCache`)
SHARED_ENCODINGS = EncodingCache()


def shared_encoding(trainer, model, num_points: int) -> Encoded | None:
    """``SHARED_ENCODINGS.get(trainer, model, num_points)``: the shared posteriors of the first
    ``num_points`` validation points."""
    return SHARED_ENCODINGS.get(trainer, model, num_points)


def fixed_inputs(datamodule=None, batches: Iterable | None = None, num: int = 8, seed: int = 0) -> Tensor | None:
    """``num`` fixed inputs ``[num, *input_shape]`` (CPU), the same at every call.

    A datamodule with ``sample_factors`` and ``render`` (``tcx.groundtruth.GroundTruth``) renders
    the first ``num`` of 64 factor draws seeded with ``seed`` (so fewer inputs are a prefix of
    more); otherwise the first ``num`` inputs of ``batches`` (or of the datamodule's
    ``val_dataloader()``). ``None`` when there are no data.
    """
    if num < 1:
        return None
    if datamodule is not None and callable(getattr(datamodule, "sample_factors", None)) and callable(
        getattr(datamodule, "render", None)
    ):
        g = torch.Generator().manual_seed(seed)
        factors = datamodule.sample_factors(max(num, 64), generator=g)[:num]
        return torch.as_tensor(datamodule.render(factors)).float().cpu()
    if batches is None and has_val_dataloader(datamodule):
        batches = datamodule.val_dataloader()
    if batches is None:
        return None
    xs, have = [], 0
    for batch in batches:
        x, _ = split_batch(batch)
        xs.append(x[: num - have].float().cpu())
        have += xs[-1].shape[0]
        if have >= num:
            break
    return torch.cat(xs) if xs else None
