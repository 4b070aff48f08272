"""The pictures of a model, as ``Media`` items: latent traversals, reconstructions, samples.

The builders (``traversal_media``, ``reconstruction_media``, ``sample_media``) turn a model and a
few inputs into items that ``log_media`` sends to the loggers; the picture callbacks
(``tcx.callbacks.media``) and ``tcx traverse`` (``callbacks/export.py``) use the same builders. Each
picture is built under ``attempt``: one that fails is reported and the others are still made.
For vector data (a model whose ``input_shape`` is ``(n,)``) every picture is a heatmap of items by
features (``tcx.visualize.vector_panels``) instead of image tiles, readable at any ``n``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from tcx import visualize as viz
from tcx.callbacks.encoding import Encoded, decode_images, encode_posteriors, to_model
from tcx.callbacks.media_logging import Media, report
from tcx.estimators import rate_per_latent
from tcx.validation import check_choice

__all__ = ["attempt", "rows_of", "traversal_media", "reconstruction_media", "sample_media", "is_vector_model",
           "decode_vectors", "vector_picture"]


def is_vector_model(model) -> bool:
    """True when the model's ``input_shape`` (the datamodule's, linked by the CLI) is ``(n,)``."""
    shape = getattr(model, "input_shape", None)
    return shape is not None and len(tuple(shape)) == 1


def decode_vectors(model, z: Tensor, batch_size: int = 512) -> Tensor:
    """Decoded means of codes ``z`` ``[m, D]`` as float32 CPU vectors ``[m, n]``."""
    outs = [model.decode(to_model(model, chunk)).float().cpu() for chunk in z.split(batch_size)]
    out = torch.cat(outs)
    return out.reshape(out.shape[0], -1)


def vector_picture(panels, title: str | None = None, row_marks=None) -> "np.ndarray":
    """``viz.vector_panels(panels, title=...)`` drawn as a picture (``uint8`` ``[H, W, 3]``)."""
    return viz.figure_to_array(viz.vector_panels(panels, title=title, row_marks=row_marks))


def attempt(key: str, failures: list[str], fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, or ``None`` with ``key`` added to ``failures`` and a warning when it
    raises: one picture failing must not stop the others or the run."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # one picture failing must not stop the others or the run
        failures.append(key)
        report(f"tcx: could not render {key}: {type(exc).__name__}: {exc}")
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
        mean, _ = encode_posteriors(model, inputs)
        bases.append(mean)
        labels += [f"input {i}" for i in range(len(inputs))]
    bases.append(torch.zeros(1, d))
    labels.append("prior z = 0")
    base = torch.cat(bases)
    vectors = is_vector_model(model)
    decode = (lambda z: decode_vectors(model, z)) if vectors else (lambda z: decode_images(model, z))
    images = viz.latent_traversal(decode, base, values, latents=order)  # vectors: [L, B, K, n]
    # images: [L, B, K, C, H, W]
    items: list[Media] = []
    num_l, num_b, num_k = images.shape[:3]

    def row_label(j: int) -> str:
        tag = " anchor" if j in anchors else ""
        info = f" {float(rate[j]):.2f} nats" if rate is not None else ""
        lo, hi = float(values[j, 0]), float(values[j, -1])
        return f"z{j}{tag}{info}  [{lo:+.1f}, {hi:+.1f}]"

    def vector_grid() -> Media:
        panels = []
        for row, j in enumerate(order):
            row_labels = [f"{labels[b]}  z{j}={float(values[j, k]):+.2f}" for b in range(num_b) for k in range(num_k)]
            panels.append((row_label(j), images[row].reshape(num_b * num_k, -1), row_labels))
        picture = vector_picture(panels, title="one latent varied at a time; rows: the values swept from each base",
                                 row_marks=[j in anchors for j in order])
        return Media(f"{prefix}/traversal", "image", picture,
                     "vector data: a panel per latent (anchors first, orange, then by rate), a row per base and "
                     "value, a column per feature")

    def grid() -> Media:
        if vectors:
            return vector_grid()
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

    item = attempt(f"{prefix}/traversal", failures, grid)
    if item is not None:
        items.append(item)
    for row, j in enumerate(order):
        key = f"{prefix}/traversal_z{j}"

        def gif(row=row, j=j, key=key) -> Media:
            if vectors:
                frames = viz.vector_traversal_frames(images[row])
            else:
                frames = viz.traversal_frames(images[row], scale=scale)
            tag = " (anchor)" if j in anchors else ""
            return Media(key, "gif", viz.encode_gif(frames, fps=fps), f"z{j}{tag}: " + ", ".join(labels))

        item = attempt(key, failures, gif)
        if item is not None:
            items.append(item)
    return items


def rows_of(images: Tensor, per_row: int) -> Tensor:
    """``images`` ``[n, C, H, W]`` as rows of ``per_row`` tiles ``[rows, per_row, C, H, W]`` (grey
    tiles pad the last row)."""
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

    def vector_build() -> Media:
        mean, _ = encode_posteriors(model, inputs)
        recon = decode_vectors(model, mean)
        x = inputs.reshape(len(inputs), -1).float().cpu()
        names = [f"input {i}" for i in range(len(x))]
        picture = vector_picture([("inputs", x, names), ("reconstructions (decoded posterior means)", recon, names)])
        return Media(f"{prefix}/reconstructions", "image", picture,
                     "vector data: the inputs (top) and their reconstructions (bottom), a row per item and a column "
                     "per feature, on one colour scale")

    def build() -> Media:
        if is_vector_model(model):
            return vector_build()
        x = viz.as_image_batch(inputs)
        mean, _ = encode_posteriors(model, inputs)
        recon = decode_images(model, mean)
        per = min(per_row, x.shape[0])
        xr, rr = rows_of(x, per), rows_of(recon, per)
        rows = torch.stack([xr, rr], dim=1).reshape(-1, *xr.shape[1:])
        labels = ["input", "reconstruction"] * xr.shape[0]
        picture = viz.image_grid(rows, row_labels=labels, scale=scale)
        return Media(f"{prefix}/reconstructions", "image", picture,
                     "inputs (odd rows) above their reconstructions, decoded at the posterior mean")

    item = attempt(f"{prefix}/reconstructions", failures, build)
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
    check_choice("resample", resample, ("posterior", "prior"))
    failures = [] if failures is None else failures
    d = int(model.latent_dim)
    anchors = sorted(int(a) for a in getattr(model, "anchor_indices", ()))
    others = [j for j in range(d) if j not in set(anchors)]
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(num_samples, d, generator=g)
    items: list[Media] = []

    def samples() -> Media:
        if is_vector_model(model):
            picture = vector_picture([(f"decoded prior samples z ~ N(0, I), seed {seed}", decode_vectors(model, z),
                                       [f"sample {i}" for i in range(len(z))])])
            return Media(f"{prefix}/samples", "image", picture, f"decoded prior samples z ~ N(0, I), seed {seed}")
        images = decode_images(model, z)
        picture = viz.image_grid(rows_of(images, min(per_row, num_samples)), scale=scale)
        return Media(f"{prefix}/samples", "image", picture, f"decoded prior samples z ~ N(0, I), seed {seed}")

    item = attempt(f"{prefix}/samples", failures, samples)
    if item is not None:
        items.append(item)
    if not anchors or not others or num_held < 1 or num_resampled < 1:
        return items

    def held_codes():
        decode = decode_vectors if is_vector_model(model) else decode_images
        if inputs is not None and len(inputs):
            held_inputs = inputs[:num_held]
            shown = held_inputs.reshape(len(held_inputs), -1).float().cpu() if is_vector_model(model) \
                else viz.as_image_batch(held_inputs)
            return encode_posteriors(model, held_inputs)[0], shown, "input"
        held = torch.randn(num_held, d, generator=g)
        return held, decode(model, held), "prior draw"

    got = attempt(f"{prefix}/anchor_samples_held", failures, held_codes)
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
        resampled = "others" if keep == anchors else "anchors"
        if is_vector_model(model):
            decoded = decode_vectors(model, codes.reshape(-1, d)).reshape(held.shape[0], count, -1)
            panels = [(f"{first_label} {r}: {what} held, {resampled} drawn from {source}",
                       torch.cat([first[r][None], decoded[r]]), [first_label] + [f"draw {c}" for c in range(count)])
                      for r in range(held.shape[0])]
            return Media(key, "image", vector_picture(panels),
                         f"vector data: a panel per {first_label}, its row first, then the {what} held at its code "
                         f"and the {resampled} drawn from {source} (the same draws in every panel)")
        decoded = decode_images(model, codes.reshape(-1, d))
        images = decoded.reshape(held.shape[0], count, *decoded.shape[1:])
        rows = torch.cat([first[:, None], images], dim=1)
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
        item = attempt(key, failures, held_grid, keep, key, what)
        if item is not None:
            items.append(item)
    return items
