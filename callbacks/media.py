"""Pictures of the model during training: latent traversals, reconstructions, samples.

Three callbacks (``LatentTraversal``, ``Reconstructions``, ``Samples``) and what they share:

- ``log_media``: the one place that sends pictures, animations and tables to the Trainer's
  loggers: W&B (``wandb.Image``, ``wandb.Video`` in GIF format, ``wandb.Table``), TensorBoard
  (``add_image``; tables as ``add_text``), and, for each kind no logger takes, files in
  ``media_dir(trainer)``: ``<name>_step<global_step>.png`` (images), ``.gif`` (animations),
  ``.csv`` (tables). A figure that fails to render or to log is reported with a warning and the run
  goes on.
- The builders (``traversal_media``, ``reconstruction_media``, ``sample_media``) that turn a model
  and a few inputs into ``Media`` items; ``tcx traverse`` (``tcx.callbacks.export``) uses the same.
- ``encode_dataset`` / ``shared_encoding``: the posteriors of the first validation points, computed
  once per global step and shared by every callback (``InformationDiagnostics`` included).

The callbacks read the model through its documented interface only (``encode``, ``decode``,
``latent_dim``, ``anchor_indices``; docs/design.md#the-model-interface) and the datamodule through
what it declares (``sample_factors`` and ``render``, or ``val_dataloader``); they import no
datamodule class. Pictures are made on global rank 0 only, at the end of every ``every_n_epochs``-th
validation epoch and at the end of fit, under ``torch.no_grad()`` with the model in eval mode (its
mode is restored), in float32 whatever the Trainer's precision. After fit the latest picture of
each key is always also a file in ``media_dir(trainer)``, even when W&B or TensorBoard took it;
each callback's ``files`` maps its keys to those paths (``media_files(trainer)`` gathers them).
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from tcx import visualize as viz
from tcx.estimators import rate_per_latent
from tcx.groundtruth import has_val_dataloader

__all__ = [
    "Media",
    "Encoded",
    "LatentTraversal",
    "Reconstructions",
    "Samples",
    "MediaCallback",
    "log_media",
    "write_media_files",
    "media_dir",
    "media_files",
    "encode_dataset",
    "shared_encoding",
    "fixed_inputs",
    "traversal_media",
    "reconstruction_media",
    "sample_media",
    "evaluating",
]

_EXTENSIONS = {"image": "png", "gif": "gif", "table": "csv"}


# --------------------------------------------------------------------------------------------
# what is logged


@dataclass
class Media:
    """One thing to log: ``kind`` ``"image"`` (``data`` a ``uint8`` RGB array ``[H, W, 3]``),
    ``"gif"`` (``data`` the bytes of an animated GIF) or ``"table"`` (``data`` a pair
    ``(columns, rows)``). ``key`` is the logger key (``"media/traversal"``); its last part is the
    file name's stem."""

    key: str
    kind: str
    data: Any
    caption: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _EXTENSIONS:
            raise ValueError(f"Media kind must be one of {sorted(_EXTENSIONS)}, got {self.kind!r}")

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def extension(self) -> str:
        return _EXTENSIONS[self.kind]

    def write(self, path: Path) -> Path:
        """Write the item to ``path`` (PNG, GIF or CSV bytes, by kind) and return the path."""
        path = Path(path)
        if self.kind == "image":
            viz.save_png(self.data, path)
        elif self.kind == "gif":
            path.write_bytes(self.data)
        else:
            columns, rows = self.data
            with path.open("w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(columns)
                writer.writerows(rows)
        return path


def _markdown_table(columns, rows) -> str:
    head = "| " + " | ".join(str(c) for c in columns) + " |"
    rule = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(_fmt_cell(v) for v in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def _fmt_cell(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _report(message: str) -> None:
    rank_zero_warn(message, category=RuntimeWarning)


# --------------------------------------------------------------------------------------------
# where things go


def media_dir(trainer) -> Path:
    """The folder for picture files: ``<run directory>/media``.

    The run directory is the first logger's: for W&B ``<save_dir>/<project>/<run id>`` (the folder
    that also holds the run's ``checkpoints``), for TensorBoard and CSV their ``log_dir``, for
    other loggers their ``save_dir``; with no logger ``trainer.default_root_dir``. Computed on the
    calling process only (``trainer.log_dir`` would need every process).
    """
    from lightning.pytorch.loggers import WandbLogger

    for logger in trainer.loggers[:1]:
        if isinstance(logger, WandbLogger):
            version = logger.version
            if version:
                return Path(logger.save_dir or ".") / str(logger.name or "lightning_logs") / str(version) / "media"
        log_dir = getattr(logger, "log_dir", None)
        if log_dir:
            return Path(log_dir) / "media"
        if logger.save_dir:
            return Path(logger.save_dir) / "media"
    return Path(trainer.default_root_dir) / "media"


def write_media_files(items: Sequence[Media], directory, suffix: str = "") -> dict[str, Path]:
    """Write each item to ``directory/<name><suffix>.<ext>``; returns ``{key: path}``. An item that
    cannot be written is reported and skipped; the others are written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for item in items:
        path = directory / f"{item.name}{suffix}.{item.extension}"
        try:
            written[item.key] = item.write(path)
        except Exception as exc:  # a file that cannot be written must not stop training
            _report(f"tcx: could not write {item.key} to {path}: {type(exc).__name__}: {exc}")
    return written


def log_media(trainer, items: Sequence[Media], step: int | None = None, write_files: bool = False) -> dict[str, Path]:
    """Send ``items`` to every logger of ``trainer`` that takes them; returns the files written.

    - ``WandbLogger``: one ``log`` call with ``wandb.Image`` (images), ``wandb.Video(format="gif")``
      (animations) and ``wandb.Table`` (tables), at ``trainer/global_step = step``.
    - ``TensorBoardLogger``: ``add_image(key, ..., dataformats="HWC")`` and tables as markdown
      ``add_text``; TensorBoard shows no GIFs.
    - Files ``media_dir(trainer)/<name>_step<step>.<ext>`` for every item of a kind no logger took,
      or for every item when ``write_files``.

    ``step`` defaults to ``trainer.global_step``. Failures are reported (a warning naming the key,
    the logger and the error) and the rest is still logged.
    """
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    step = int(trainer.global_step if step is None else step)
    taken: set[str] = set()
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            taken |= _log_wandb(logger, items, step)
        elif isinstance(logger, TensorBoardLogger):
            taken |= _log_tensorboard(logger, items, step)
    rest = [item for item in items if write_files or item.key not in taken]
    if not rest:
        return {}
    return write_media_files(rest, media_dir(trainer), suffix=f"_step{step}")


def _log_wandb(logger, items: Sequence[Media], step: int) -> set[str]:
    import wandb

    payload: dict[str, Any] = {}
    for item in items:
        try:
            if item.kind == "image":
                payload[item.key] = wandb.Image(item.data, caption=item.caption or None)
            elif item.kind == "gif":
                payload[item.key] = wandb.Video(io.BytesIO(item.data), caption=item.caption or None, format="gif")
            else:
                columns, rows = item.data
                payload[item.key] = wandb.Table(columns=list(columns), data=[list(r) for r in rows])
        except Exception as exc:
            _report(f"tcx: could not prepare {item.key} for W&B: {type(exc).__name__}: {exc}")
    if not payload:
        return set()
    try:
        logger.log_metrics(payload, step=step)
    except Exception as exc:
        _report(f"tcx: W&B could not log {sorted(payload)}: {type(exc).__name__}: {exc}")
        return set()
    return set(payload)


def _log_tensorboard(logger, items: Sequence[Media], step: int) -> set[str]:
    taken: set[str] = set()
    try:
        writer = logger.experiment
    except Exception as exc:
        _report(f"tcx: TensorBoard is not available: {type(exc).__name__}: {exc}")
        return taken
    for item in items:
        try:
            if item.kind == "image":
                writer.add_image(item.key, item.data, global_step=step, dataformats="HWC")
            elif item.kind == "table":
                writer.add_text(item.key, _markdown_table(*item.data), global_step=step)
            else:
                continue
            taken.add(item.key)
        except Exception as exc:
            _report(f"tcx: TensorBoard could not log {item.key}: {type(exc).__name__}: {exc}")
    with contextlib.suppress(Exception):
        writer.flush()
    return taken


def media_files(trainer) -> dict[str, Path]:
    """``{key: path}`` of the latest picture files of every tcx media or diagnostics callback of
    ``trainer`` (their ``files``), for the end-of-fit summary."""
    out: dict[str, Path] = {}
    for cb in trainer.callbacks:
        if isinstance(cb, MediaCallback):
            out.update(cb.files)
    return out


# --------------------------------------------------------------------------------------------
# running the model


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


def _param_dtype(model) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def _model_device(model) -> torch.device:
    device = getattr(model, "device", None)
    if device is not None:
        return torch.device(device)
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _to_model(model, t: Tensor) -> Tensor:
    return t.to(device=_model_device(model), dtype=_param_dtype(model))


def _encode(model, x: Tensor) -> tuple[Tensor, Tensor]:
    posterior = model.encode(_to_model(model, x))
    return posterior.mean.float().cpu(), posterior.log_var.float().cpu()


def decode_images(model, z: Tensor, batch_size: int = 512) -> Tensor:
    """Decoded means of codes ``z`` ``[n, D]`` as a float32 CPU image batch ``[n, C, H, W]``."""
    outs = [model.decode(_to_model(model, chunk)).float().cpu() for chunk in z.split(batch_size)]
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


def _split_batch(batch) -> tuple[Tensor, Tensor | None]:
    if isinstance(batch, (tuple, list)):
        x = batch[0]
        y = batch[1] if len(batch) > 1 and isinstance(batch[1], Tensor) else None
    else:
        x, y = batch, None
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
        x, y = _split_batch(batch)
        x = x[: num_points - have]
        mean, log_var = _encode(model, x)
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


def _validation_batches(trainer) -> Iterable | None:
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


def shared_encoding(trainer, model, num_points: int) -> Encoded | None:
    """``encode_dataset`` of the trainer's validation data, computed once per global step and
    shared by all callbacks (cached on the model; a later request for fewer points reuses it)."""
    key = (int(trainer.global_step), int(trainer.current_epoch))
    cached = model.__dict__.get("_tcx_shared_encoding")
    if cached is not None and cached[0] == key and (len(cached[1]) >= num_points or cached[2]):
        return cached[1].head(num_points)
    batches = _validation_batches(trainer)
    if batches is None:
        return None
    encoded = encode_dataset(model, batches, num_points)
    if encoded is not None:
        # the third entry: the data ran out before num_points, so no larger request can do better
        model.__dict__["_tcx_shared_encoding"] = (key, encoded, len(encoded) < num_points)
    return encoded


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
        x, _ = _split_batch(batch)
        xs.append(x[: num - have].float().cpu())
        have += xs[-1].shape[0]
        if have >= num:
            break
    return torch.cat(xs) if xs else None


# --------------------------------------------------------------------------------------------
# the pictures


def _attempt(key: str, failures: list[str], fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # one picture failing must not stop the others or the run
        failures.append(key)
        _report(f"tcx: could not render {key}: {type(exc).__name__}: {exc}")
        return None


def traversal_media(
    model,
    inputs: Tensor | None,
    encoded: Encoded | None,
    *,
    steps: int = 9,
    quantile: float = 0.05,
    limit: float | None = None,
    fps: float = 4.0,
    scale: int = 1,
    seed: int = 0,
    prefix: str = "media",
    failures: list[str] | None = None,
) -> list[Media]:
    """The traversal grid ``<prefix>/traversal`` and one GIF per latent ``<prefix>/traversal_z{j}``.

    Bases: the posterior means of ``inputs`` and the prior's mean ``z = 0``. Latent ``j`` sweeps
    ``steps`` values: the quantiles ``quantile .. 1 - quantile`` of the aggregate posterior
    ``q(z_j)`` (one posterior draw per point of ``encoded``, seeded with ``seed``), the standard
    normal's quantiles without ``encoded``, or ``linspace(-limit, limit)`` when ``limit`` is set.
    Grid rows are latents, anchors first, each group by decreasing rate ``E_x KL_j`` (nats, on
    ``encoded``; index order without it); the row label gives the latent, "anchor" for an anchor (in
    orange), the rate and the swept range. Columns: one block of ``steps`` per base. Frame ``k`` of
    a GIF shows every base at the ``k``-th value, forward then back.
    """
    failures = [] if failures is None else failures
    d = int(model.latent_dim)
    anchors = tuple(int(a) for a in getattr(model, "anchor_indices", ()))
    if encoded is not None and len(encoded) >= 2:
        rate = rate_per_latent(encoded.mean, encoded.log_var).float()
        values = viz.traversal_values(encoded.samples(seed), steps, quantile=quantile, limit=limit)
        order = viz.information_order(rate, anchors)
        source = "q(z_j)" if limit is None else "fixed"
    else:
        rate = None
        values = viz.traversal_values(None, steps, quantile=quantile, limit=limit, latent_dim=d)
        order = viz.information_order(torch.zeros(d), anchors)
        source = "prior" if limit is None else "fixed"
    bases, labels = [], []
    if inputs is not None and len(inputs):
        mean, _ = _encode(model, inputs)
        bases.append(mean)
        labels += [f"input {i}" for i in range(len(inputs))]
    bases.append(torch.zeros(1, d))
    labels.append("prior z = 0")
    base = torch.cat(bases)
    images = viz.latent_traversal(lambda z: decode_images(model, z), base, values, latents=order)
    # images: [L, B, K, C, H, W]
    items: list[Media] = []
    num_l, num_b, num_k = images.shape[:3]

    def row_label(j: int) -> str:
        tag = " anchor" if j in anchors else ""
        info = f" {float(rate[j]):.2f} nats" if rate is not None else ""
        lo, hi = float(values[j, 0]), float(values[j, -1])
        return f"z{j}{tag}{info}  [{lo:+.1f}, {hi:+.1f}]"

    def grid() -> Media:
        rows = images.reshape(num_l, num_b * num_k, *images.shape[3:])
        picture = viz.image_grid(
            rows, groups=num_b, group_labels=labels, scale=scale,
            row_labels=[row_label(j) for j in order], row_marks=[j in anchors for j in order],
        )
        pct = f"{100 * quantile:g}%..{100 * (1 - quantile):g}% quantiles of {source}" if limit is None else f"[-{limit}, {limit}]"
        caption = (
            f"one latent varied at a time over the {pct}; rows: latents, anchors first (orange), "
            "then by rate E KL_j (nats); blocks: " + ", ".join(labels)
        )
        return Media(f"{prefix}/traversal", "image", picture, caption)

    item = _attempt(f"{prefix}/traversal", failures, grid)
    if item is not None:
        items.append(item)
    for row, j in enumerate(order):
        key = f"{prefix}/traversal_z{j}"

        def gif(row=row, j=j, key=key) -> Media:
            frames = viz.traversal_frames(images[row], scale=scale)
            tag = " (anchor)" if j in anchors else ""
            return Media(key, "gif", viz.encode_gif(frames, fps=fps), f"z{j}{tag}: " + ", ".join(labels))

        item = _attempt(key, failures, gif)
        if item is not None:
            items.append(item)
    return items


def _rows_of(images: Tensor, per_row: int) -> Tensor:
    """``[n, C, H, W]`` as rows of ``per_row`` (the last one filled with grey tiles)."""
    n = images.shape[0]
    rows = math.ceil(n / per_row)
    missing = rows * per_row - n
    if missing:
        images = torch.cat([images, torch.full((missing, *images.shape[1:]), 0.5)])
    return images.reshape(rows, per_row, *images.shape[1:])


def reconstruction_media(
    model, inputs: Tensor, *, per_row: int = 8, scale: int = 1, prefix: str = "media",
    failures: list[str] | None = None,
) -> list[Media]:
    """``<prefix>/reconstructions``: rows of inputs, each above its reconstruction (the decoded
    posterior mean)."""
    failures = [] if failures is None else failures

    def build() -> Media:
        x = viz.as_image_batch(inputs)
        mean, _ = _encode(model, inputs)
        recon = decode_images(model, mean)
        per = min(per_row, x.shape[0])
        xr, rr = _rows_of(x, per), _rows_of(recon, per)
        rows = torch.stack([xr, rr], dim=1).reshape(-1, *xr.shape[1:])
        labels = ["input", "reconstruction"] * xr.shape[0]
        picture = viz.image_grid(rows, row_labels=labels, scale=scale)
        return Media(f"{prefix}/reconstructions", "image", picture,
                     "inputs (odd rows) above their reconstructions, decoded at the posterior mean")

    item = _attempt(f"{prefix}/reconstructions", failures, build)
    return [] if item is None else [item]


def sample_media(
    model,
    inputs: Tensor | None,
    encoded: Encoded | None = None,
    *,
    num_samples: int = 16,
    num_held: int = 4,
    num_resampled: int = 8,
    resample: str = "posterior",
    per_row: int = 8,
    seed: int = 0,
    scale: int = 1,
    prefix: str = "media",
    failures: list[str] | None = None,
) -> list[Media]:
    """Decoded prior samples, and for models with anchors what the anchors control.

    - ``<prefix>/samples``: ``num_samples`` decodings of ``z ~ N(0, I)`` (seeded, the same draws at
      every call, so the pictures of successive epochs compare).
    - ``<prefix>/anchor_samples_held`` (models with anchors and other latents): row ``r`` holds the
      anchors ``z_A`` at the posterior mean of input ``r`` (shown first; a prior draw when there
      are no inputs) and resamples the other latents, one draw per column, the same draw in every
      row: what stays the same along a row is what the anchors encode, what changes along it is
      what the other latents encode.
    - ``<prefix>/others_held``: the reverse, the non-anchor latents held and the anchors resampled.

    ``resample="posterior"`` (the default) draws the resampled latents from the aggregate posterior
    ``q(z)``: ``z ~ p(z|x')`` for ``num_resampled`` seeded validation points ``x'`` of ``encoded``,
    so every decoded code combines latents that occur in data and the pictures show what the
    held latents control even where ``q(z_j)`` and the prior differ (a "prior hole" would decode to
    a blank image and hide it). ``resample="prior"``, or no ``encoded``, draws from ``N(0, I)``.
    """
    if resample not in ("posterior", "prior"):
        raise ValueError(f"resample must be 'posterior' or 'prior', got {resample!r}")
    failures = [] if failures is None else failures
    d = int(model.latent_dim)
    anchors = sorted(int(a) for a in getattr(model, "anchor_indices", ()))
    others = [j for j in range(d) if j not in set(anchors)]
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(num_samples, d, generator=g)
    items: list[Media] = []

    def samples() -> Media:
        images = decode_images(model, z)
        picture = viz.image_grid(_rows_of(images, min(per_row, num_samples)), scale=scale)
        return Media(f"{prefix}/samples", "image", picture, f"decoded prior samples z ~ N(0, I), seed {seed}")

    item = _attempt(f"{prefix}/samples", failures, samples)
    if item is not None:
        items.append(item)
    if not anchors or not others or num_held < 1 or num_resampled < 1:
        return items

    def held_codes():
        if inputs is not None and len(inputs):
            held_inputs = inputs[:num_held]
            return _encode(model, held_inputs)[0], viz.as_image_batch(held_inputs), "input"
        held = torch.randn(num_held, d, generator=g)
        return held, decode_images(model, held), "prior draw"

    got = _attempt(f"{prefix}/anchor_samples_held", failures, held_codes)
    if got is None:
        return items
    held, first, first_label = got
    if resample == "posterior" and encoded is not None and len(encoded) >= 1:
        rows = torch.randperm(len(encoded), generator=g)[:num_resampled]
        fresh = encoded.samples(seed)[rows]
        source = "q(z)"
    else:
        fresh = torch.randn(num_resampled, d, generator=g)
        source = "the prior"
    count = fresh.shape[0]

    def held_grid(keep: list[int], key: str, what: str) -> Media:
        codes = fresh[None].repeat(held.shape[0], 1, 1)  # [R, C, D]
        codes[:, :, keep] = held[:, None, keep]
        decoded = decode_images(model, codes.reshape(-1, d))
        images = decoded.reshape(held.shape[0], count, *decoded.shape[1:])
        rows = torch.cat([first[:, None], images], dim=1)
        resampled = "others" if keep == anchors else "anchors"
        picture = viz.image_grid(
            rows, groups=[1, count], scale=scale,
            group_labels=[first_label, f"{what} held, {resampled} drawn from {source}"],
        )
        caption = (
            f"each row holds the {what} ({'z' + ', z'.join(map(str, keep))}) at the code of the {first_label} "
            f"on the left; each column draws the {resampled} from {source} (the same draw down a column)"
        )
        return Media(key, "image", picture, caption)

    for keep, key, what in ((anchors, f"{prefix}/anchor_samples_held", "anchors"), (others, f"{prefix}/others_held", "others")):
        item = _attempt(key, failures, held_grid, keep, key, what)
        if item is not None:
            items.append(item)
    return items


# --------------------------------------------------------------------------------------------
# the callbacks


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


class MediaCallback(Callback):
    """What the picture callbacks share: when they run, where the pictures go, ``files``.

    Subclasses implement ``make_media(trainer, pl_module) -> (items, scalars)``. Runs on global
    rank 0 at the end of every ``every_n_epochs``-th validation epoch (0: only at the end of fit;
    never during the sanity check) and at the end of fit; the pictures go through ``log_media``.
    At the end of fit the latest items are also written as files (``media_dir(trainer)``) when no
    logger wrote them there already, and ``files`` maps each key to its latest file.
    ``last_seconds`` is how long the last rendering took.
    """

    def __init__(self, every_n_epochs: int = 1) -> None:
        super().__init__()
        self.every_n_epochs = _check_int("every_n_epochs", every_n_epochs, 0)
        #: ``{key: path}`` of the latest file written for each key.
        self.files: dict[str, Path] = {}
        self.last_seconds: float | None = None
        self._last_step: int | None = None
        self._last_items: list[Media] = []
        self._files_step: int | None = None
        self._inputs: Tensor | None = None
        self._inputs_ready = False

    def make_media(self, trainer, pl_module) -> tuple[list[Media], dict[str, float]]:  # pragma: no cover
        raise NotImplementedError

    # -- helpers for subclasses
    def _fixed_inputs(self, trainer, num: int, seed: int) -> Tensor | None:
        if not self._inputs_ready:
            dm = getattr(trainer, "datamodule", None)
            batches = None if dm is not None else _validation_batches(trainer)
            try:
                self._inputs = fixed_inputs(dm, batches, num=num, seed=seed)
            except Exception as exc:
                _report(f"tcx: {type(self).__name__} could not get fixed inputs from the data "
                        f"({type(exc).__name__}: {exc}); pictures use the prior only")
                self._inputs = None
            self._inputs_ready = True
        return self._inputs

    # -- hooks
    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        if self.every_n_epochs == 0 or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        self._render(trainer, pl_module, in_hook=True)

    def on_fit_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        step = int(trainer.global_step)
        if self._last_step != step:
            self._render(trainer, pl_module, in_hook=False)
        if self._files_step != step and self._last_items:
            self.files.update(write_media_files(self._last_items, media_dir(trainer), suffix=f"_step{step}"))
            self._files_step = step

    def _render(self, trainer, pl_module, in_hook: bool) -> None:
        step = int(trainer.global_step)
        start = time.perf_counter()
        try:
            with evaluating(pl_module):
                items, scalars = self.make_media(trainer, pl_module)
        except Exception as exc:  # reported; the run goes on
            _report(f"tcx: {type(self).__name__} failed at step {step}: {type(exc).__name__}: {exc}")
            items, scalars = [], {}
        self.last_seconds = time.perf_counter() - start
        self._last_step, self._last_items = step, items
        if scalars:
            self._log_scalars(trainer, pl_module, scalars, step, in_hook)
        if items:
            written = log_media(trainer, items, step=step)
            if written:
                self.files.update(written)
                if len(written) == len(items):
                    self._files_step = step

    @staticmethod
    def _log_scalars(trainer, pl_module, scalars: dict[str, float], step: int, in_hook: bool) -> None:
        clean = {k: float(v) for k, v in scalars.items() if v is not None and math.isfinite(float(v))}
        if in_hook:
            # through the module, so that they also reach trainer.callback_metrics (the summary)
            for key, value in clean.items():
                pl_module.log(key, value, on_step=False, on_epoch=True, rank_zero_only=True)
            return
        for logger in trainer.loggers:
            try:
                logger.log_metrics(clean, step=step)
            except Exception as exc:
                _report(f"tcx: {type(logger).__name__} could not log {sorted(clean)}: {exc}")
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in clean.items()})


class LatentTraversal(MediaCallback):
    """Latent traversals: vary one latent at a time and decode (Higgins et al. 2017).

    Bases: the posterior means of ``num_inputs`` fixed inputs (``fixed_inputs``: a seeded factor
    sample rendered by the datamodule, or the first validation inputs) and the prior's mean
    ``z = 0``. Latent ``j`` sweeps ``steps`` values over the ``quantile .. 1 - quantile`` quantiles of
    the aggregate posterior ``q(z_j)``, estimated from ``num_points`` validation points (or over
    ``[-limit, limit]`` when ``limit`` is set). See ``traversal_media`` for the layout: rows are
    latents, anchors first (orange), then by decreasing rate ``E_x KL_j`` in nats.

    Logged (W&B keys; file names ``<name>_step<global_step>.<ext>`` in ``media_dir(trainer)``):

    - ``media/traversal`` (image; ``traversal_step{N}.png``): the grid;
    - ``media/traversal_z{j}`` (animated GIF, ``wandb.Video``; ``traversal_z{j}_step{N}.gif``): one
      per latent ``j``, all bases side by side, the values forward then back at ``fps``.

    Args:
        num_inputs: fixed inputs (besides the prior) to traverse from.
        steps: values per latent (>= 2). quantile: in [0, 0.5). limit: a fixed symmetric range.
        num_points: validation points for the quantiles and the rates (shared with the other
            callbacks at the same step).
        every_n_epochs: render every n-th validation epoch (0: only at the end of fit).
        fps: frames per second of the GIFs. scale: tile enlargement. seed: of the fixed inputs and
            the posterior draws.
    """

    def __init__(
        self,
        num_inputs: int = 2,
        steps: int = 9,
        quantile: float = 0.05,
        limit: float | None = None,
        num_points: int = 2000,
        every_n_epochs: int = 1,
        fps: float = 4.0,
        scale: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__(every_n_epochs)
        self.num_inputs = _check_int("num_inputs", num_inputs, 0)
        self.steps = _check_int("steps", steps, 2)
        if not (isinstance(quantile, (int, float)) and 0.0 <= quantile < 0.5):
            raise ValueError(f"quantile must be in [0, 0.5), got {quantile!r}")
        if limit is not None and not (isinstance(limit, (int, float)) and limit > 0):
            raise ValueError(f"limit must be a number > 0 or None, got {limit!r}")
        self.quantile, self.limit = float(quantile), (None if limit is None else float(limit))
        self.num_points = _check_int("num_points", num_points, 2)
        if not (isinstance(fps, (int, float)) and fps > 0):
            raise ValueError(f"fps must be > 0, got {fps!r}")
        self.fps = float(fps)
        self.scale = _check_int("scale", scale, 1)
        self.seed = int(seed)

    def make_media(self, trainer, pl_module):
        inputs = self._fixed_inputs(trainer, self.num_inputs, self.seed)
        encoded = shared_encoding(trainer, pl_module, self.num_points)
        items = traversal_media(
            pl_module, inputs, encoded, steps=self.steps, quantile=self.quantile, limit=self.limit,
            fps=self.fps, scale=self.scale, seed=self.seed,
        )
        return items, {}


class Reconstructions(MediaCallback):
    """Inputs beside their reconstructions (decoded at the posterior mean).

    The ``num_images`` fixed inputs (``fixed_inputs``), in rows of ``per_row``, each row of inputs
    above its row of reconstructions. Logged: ``media/reconstructions`` (image;
    ``reconstructions_step{N}.png`` in ``media_dir(trainer)``).
    """

    def __init__(self, num_images: int = 8, per_row: int = 8, every_n_epochs: int = 1, scale: int = 1, seed: int = 0) -> None:
        super().__init__(every_n_epochs)
        self.num_images = _check_int("num_images", num_images, 1)
        self.per_row = _check_int("per_row", per_row, 1)
        self.scale = _check_int("scale", scale, 1)
        self.seed = int(seed)

    def make_media(self, trainer, pl_module):
        inputs = self._fixed_inputs(trainer, self.num_images, self.seed)
        if inputs is None:
            return [], {}
        return reconstruction_media(pl_module, inputs, per_row=self.per_row, scale=self.scale), {}


class Samples(MediaCallback):
    """Decoded prior samples and, for models with anchors, what the anchors control.

    See ``sample_media``. Logged (W&B keys; files ``<name>_step<N>.png`` in ``media_dir(trainer)``):

    - ``media/samples``: ``num_samples`` decoded prior draws (the same draws at every call);
    - ``media/anchor_samples_held`` (models with anchors): rows hold the anchors at the code of a
      fixed input (shown first), columns resample the other latents (from the aggregate posterior
      of ``num_points`` validation points by default, ``resample="prior"`` for the prior);
    - ``media/others_held``: the non-anchor latents held, the anchors resampled;
    - ``media/samples_fitted`` (``fitted_density=True``, models with anchors): ``num_samples``
      draws whose anchors come from a Gaussian mixture of ``density_components`` fitted to their
      aggregate posterior on ``num_points`` validation points (``tcx.aggregate_density``), the
      other latents from the prior (the same prior draws as ``media/samples``).
    """

    def __init__(
        self,
        num_samples: int = 16,
        num_held: int = 4,
        num_resampled: int = 8,
        resample: str = "posterior",
        num_points: int = 2000,
        per_row: int = 8,
        every_n_epochs: int = 1,
        scale: int = 1,
        seed: int = 0,
        fitted_density: bool = False,
        density_components: int = 10,
    ) -> None:
        super().__init__(every_n_epochs)
        self.fitted_density = bool(fitted_density)
        self.density_components = _check_int("density_components", density_components, 1)
        self.num_samples = _check_int("num_samples", num_samples, 1)
        self.num_held = _check_int("num_held", num_held, 0)
        self.num_resampled = _check_int("num_resampled", num_resampled, 1)
        if resample not in ("posterior", "prior"):
            raise ValueError(f"resample must be 'posterior' or 'prior', got {resample!r}")
        self.resample = resample
        self.num_points = _check_int("num_points", num_points, 1)
        self.per_row = _check_int("per_row", per_row, 1)
        self.scale = _check_int("scale", scale, 1)
        self.seed = int(seed)

    def make_media(self, trainer, pl_module):
        inputs = self._fixed_inputs(trainer, self.num_held, self.seed) if self.num_held else None
        anchored = bool(getattr(pl_module, "anchor_indices", ()))
        encoded = None
        if anchored and self.num_held and self.resample == "posterior":
            encoded = shared_encoding(trainer, pl_module, self.num_points)
        items = sample_media(
            pl_module, inputs, encoded, num_samples=self.num_samples, num_held=self.num_held,
            num_resampled=self.num_resampled, resample=self.resample, per_row=self.per_row,
            seed=self.seed, scale=self.scale,
        )
        if anchored and self.fitted_density:
            item = _attempt("media/samples_fitted", [], self._fitted_samples, trainer, pl_module)
            if item is not None:
                items.append(item)
        return items, {}

    def _fitted_samples(self, trainer, pl_module) -> Media | None:
        from tcx.aggregate_density import AggregateDensity

        encoded = shared_encoding(trainer, pl_module, self.num_points)
        if encoded is None:
            return None
        anchors = sorted(int(a) for a in pl_module.anchor_indices)
        density = AggregateDensity.fit(encoded.mean, encoded.log_var, anchors, self.density_components, seed=self.seed)
        g = torch.Generator().manual_seed(self.seed)
        z = torch.randn(self.num_samples, int(pl_module.latent_dim), generator=g)
        z[:, anchors] = density.sample(self.num_samples, generator=g)
        images = decode_images(pl_module, z)
        picture = viz.image_grid(_rows_of(images, min(self.per_row, self.num_samples)), scale=self.scale)
        return Media("media/samples_fitted", "image", picture,
                     f"anchors from a {self.density_components}-component mixture fitted to their aggregate posterior, "
                     f"the rest z ~ N(0, I), seed {self.seed}")
