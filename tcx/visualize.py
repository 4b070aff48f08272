"""Pictures of a representation: latent traversals, image grids, GIF frames, information charts.

Plain torch, numpy, Pillow and matplotlib (no Lightning, no pyplot state): every function takes
tensors or arrays and returns an array, a list of frames, GIF bytes or a matplotlib ``Figure``.

- An *image batch* is a float tensor or array ``[N, C, H, W]`` with values in [0, 1]; vector
  data ``[N, n]`` is drawn as a heatmap of items by features instead (``vector_panels``,
  ``vector_strip``), readable at any number of features.
- A *picture* is a ``uint8`` array ``[height, width, 3]`` (RGB).
- The traversal of latent ``j`` replaces column ``j`` of a base code by each of ``K`` values and
  decodes (``traversal_codes``).

Details (the conventions in full): docs/running.md#tcxvisualizepy-pictures-of-a-representation
"""

from __future__ import annotations

import io
import math
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor
from tcx.errors import TcxError
from tcx.safe_io import atomic_save
from tcx.validation import check_int, check_length, check_real, check_shape, check_tensor

__all__ = [
    "ANCHOR_COLOR",
    "as_image_batch",
    "to_uint8",
    "image_grid",
    "grid_shape",
    "traversal_codes",
    "latent_traversal",
    "traversal_values",
    "information_order",
    "traversal_frames",
    "encode_gif",
    "information_chart",
    "mi_heatmap",
    "vector_panels",
    "vector_strip",
    "vector_traversal_frames",
    "information_history",
    "figure_to_array",
    "png_bytes",
    "save_png",
]

#: The colour that marks anchor latents in every picture (matplotlib's orange).
ANCHOR_COLOR = (255, 127, 14)
_TEXT = (20, 20, 20)
_BACKGROUND = (255, 255, 255)
_PAD_GREY = 0.5


# --------------------------------------------------------------------------------------------
# images


def as_image_batch(x) -> Tensor:
    """``x`` as a float32 CPU tensor ``[N, C, H, W]`` in [0, 1]
    (see docs/running.md#tcxvisualizepy-pictures-of-a-representation)."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x).detach()
    if t.dim() == 2:
        n, d = t.shape
        s = math.isqrt(d)
        t = t.reshape(n, 1, s, s) if s * s == d else t.reshape(n, 1, 1, d).expand(n, 1, 8, d)
    elif t.dim() == 3:
        t = t.unsqueeze(1)
    check_shape("images", t, ("N", "C", "H", "W"), hint="or [N, H, W], or vectors [N, n]")
    if t.shape[1] not in (1, 3):
        t = t[:, :1]
    t = t.float().cpu()
    return torch.nan_to_num(t, nan=0.0).clamp(0.0, 1.0)


def to_uint8(images) -> np.ndarray:
    """An image batch as ``uint8`` RGB arrays ``[N, H, W, 3]``."""
    # numpy, not torch: torch's strided uint8 copies are ~100x slower for these small batches
    a = as_image_batch(images).numpy()
    a = np.rint(a * 255.0).astype(np.uint8).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(np.broadcast_to(a, (*a.shape[:3], 3)))


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _text_width(font, text: str) -> int:
    left, _, right, _ = font.getbbox(text)
    return int(math.ceil(right - left))


def grid_shape(
    rows: int,
    cols: int,
    tile: tuple[int, int],
    *,
    padding: int = 2,
    groups: int = 1,
    group_gap: int = 8,
    label_width: int = 0,
    header_height: int = 0,
    scale: int = 1,
) -> tuple[int, int]:
    """``(height, width)`` in pixels of ``image_grid``'s picture.

    ``rows x cols`` tiles of ``tile = (h, w)`` pixels each, enlarged ``scale`` times, with
    ``padding`` pixels around every tile, the columns split into ``groups`` blocks separated
    by ``group_gap`` extra pixels, a left margin of ``label_width`` and a top margin of
    ``header_height`` pixels:

        height = header_height + rows * (scale * h + padding) + padding
        width  = label_width + cols * (scale * w + padding) + padding + (groups - 1) * group_gap
    """
    h, w = tile
    height = header_height + rows * (scale * h + padding) + padding
    width = label_width + cols * (scale * w + padding) + padding + (groups - 1) * group_gap
    return height, width


def image_grid(
    images,
    *,
    padding: int = 2,
    pad_value: float = _PAD_GREY,
    groups: int | Sequence[int] = 1,
    group_gap: int = 8,
    row_labels: Sequence[str] | None = None,
    row_marks: Sequence[bool] | None = None,
    group_labels: Sequence[str] | None = None,
    scale: int = 1,
    font_size: int = 11,
) -> np.ndarray:
    """A ``uint8`` RGB picture of a grid of images.

    ``images``: ``[R, K, C, H, W]`` (``R`` rows of ``K`` images; or an image batch ``[N, C, H, W]``
    shown as one row; or ``uint8`` RGB tiles ``[R, K, H, W, 3]`` as ``to_uint8`` makes them). The ``K`` columns may be split into blocks separated by ``group_gap`` pixels
    and titled by ``group_labels``: ``groups`` is a number of equal blocks (e.g. one block per input
    of a traversal) or the list of the blocks' widths in columns.
    ``row_labels`` are written in a left margin; rows with ``row_marks[r]`` true (the anchors) get
    their label in white on ``ANCHOR_COLOR`` and a coloured bar beside the row. Tiles are enlarged
    ``scale`` times (nearest neighbour). The size is ``grid_shape(...)`` with the margins the labels
    need (``header_height = font_size + 8`` when ``group_labels`` are given; ``label_width`` the
    widest label plus 12 pixels).
    """
    from PIL import Image, ImageDraw

    if isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 5 and images.shape[-1] == 3:
        rgb = images  # already tiles [R, K, H, W, 3]
    else:
        t = torch.as_tensor(images) if not isinstance(images, Tensor) else images
        if t.dim() == 4:
            t = t.unsqueeze(0)
        check_shape("images", t, ("rows", "cols", "C", "H", "W"), hint="or [N, C, H, W]")
        rgb = to_uint8(t.reshape(-1, *t.shape[2:])).reshape(t.shape[0], t.shape[1], *t.shape[3:], 3)
    rows, cols = int(rgb.shape[0]), int(rgb.shape[1])
    if rows == 0 or cols == 0:
        raise TcxError(f"image_grid needs at least one image, got {rows} rows of {cols}")
    if isinstance(groups, int):
        if groups < 1 or cols % groups:
            raise TcxError(f"groups={groups} must divide the number of columns ({cols})")
        sizes = [cols // groups] * groups
    else:
        sizes = [int(g) for g in groups]
        if not sizes or min(sizes) < 1 or sum(sizes) != cols:
            raise TcxError(f"groups={list(groups)} must be positive widths that add up to the {cols} columns")
    group_of = [g for g, size in enumerate(sizes) for _ in range(size)]
    starts = [sum(sizes[:g]) for g in range(len(sizes))]
    if row_labels is not None:
        check_length("row_labels", row_labels, rows, "rows")
    if row_marks is not None:
        check_length("row_marks", row_marks, rows, "rows")
    if group_labels is not None:
        check_length("group_labels", group_labels, len(sizes), "groups")
    scale = check_int("scale", scale, 1)
    padding = check_int("padding", padding, 0)
    group_gap = check_int("group_gap", group_gap, 0)

    tiles = rgb.reshape(rows * cols, *rgb.shape[2:])  # [R*K, h, w, 3]
    if scale > 1:
        tiles = tiles.repeat(scale, axis=1).repeat(scale, axis=2)
    th, tw = tiles.shape[1:3]
    font = _font(font_size)
    label_width = 0
    if row_labels is not None:
        label_width = max(_text_width(font, s) for s in row_labels) + 12
    header_height = font_size + 8 if group_labels is not None else 0
    height, width = grid_shape(
        rows, cols, (th, tw), padding=padding, groups=len(sizes), group_gap=group_gap,
        label_width=label_width, header_height=header_height,
    )
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = _BACKGROUND
    pad = int(round(255 * float(pad_value)))

    def col_x(c: int) -> int:
        return label_width + padding + c * (tw + padding) + group_of[c] * group_gap

    # grey frame behind each block of tiles (the padding between tiles)
    for g, size in enumerate(sizes):
        x0 = col_x(starts[g]) - padding
        x1 = col_x(starts[g] + size - 1) + tw + padding
        canvas[header_height:, x0:x1] = pad
    for r in range(rows):
        y = header_height + padding + r * (th + padding)
        for c in range(cols):
            x = col_x(c)
            canvas[y : y + th, x : x + tw] = tiles[r * cols + c]

    if row_labels is None and group_labels is None and row_marks is None:
        return canvas
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    for r in range(rows):
        y = header_height + padding + r * (th + padding)
        marked = bool(row_marks[r]) if row_marks is not None else False
        if marked:
            # a bar in the padding column beside the row, visible even without labels
            draw.rectangle([label_width, y, label_width + max(padding, 2) - 1, y + th - 1], fill=ANCHOR_COLOR)
        if row_labels is not None:
            text = row_labels[r]
            left, top, right, bottom = font.getbbox(text)
            ty = y + (th - (bottom - top)) // 2 - top
            if marked:
                draw.rectangle([2, ty + top - 2, 6 + right - left, ty + bottom + 2], fill=ANCHOR_COLOR)
            draw.text((4, ty), text, fill=(255, 255, 255) if marked else _TEXT, font=font)
    if group_labels is not None:
        for g, text in enumerate(group_labels):
            x0 = col_x(starts[g])
            draw.text((x0, 3), text, fill=_TEXT, font=font)
    return np.asarray(img)


def png_bytes(picture: np.ndarray) -> bytes:
    """A picture (``uint8`` ``[H, W, 3]``) encoded as a PNG file's bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(picture, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def save_png(picture: np.ndarray, path) -> None:
    """Write a picture (``uint8`` ``[H, W, 3]``) to a PNG file, through tcx's one atomic writer
    (``tcx/safe_io.py``, ``atomic_save``): never a half-written picture under its name."""
    atomic_save(lambda f: f.write(png_bytes(picture)), path, advice="write the pictures to a disk with room")


# --------------------------------------------------------------------------------------------
# traversals


def traversal_codes(base: Tensor, latent: int, values: Tensor) -> Tensor:
    """Codes ``[B, K, D]``: each base code ``[B, D]`` with latent ``latent`` set to each of the
    ``K`` ``values`` in turn; every other latent keeps its base value."""
    d = check_shape("base", base, ("B", "D"), hint="one row of codes per base point")[1]
    latent = check_int("latent", latent, 0, d - 1, hint=f"the codes have {d} latents")
    values = torch.as_tensor(values, dtype=base.dtype, device=base.device).reshape(-1)
    codes = base[:, None, :].repeat(1, values.numel(), 1)
    codes[:, :, int(latent)] = values[None, :]
    return codes


def latent_traversal(
    decode: Callable[[Tensor], Tensor],
    base: Tensor,
    values: Tensor,
    latents: Sequence[int] | None = None,
    batch_size: int = 512,
) -> Tensor:
    """Decoded traversals ``[L, B, K, *x_shape]`` (float32, CPU).

    ``decode`` maps codes ``[n, D]`` to images ``[n, ...]``; ``base`` is ``[B, D]`` (posterior
    means of fixed inputs, or the prior's mean 0); ``values`` is ``[D, K]`` (latent ``j`` takes
    ``values[j]``) or ``[K]`` (the same values for every latent); ``latents`` the ``L`` latents to
    traverse, in the order of the output (default all). The codes are decoded in batches of at
    most ``batch_size``.
    """
    d = base.shape[1]
    values = torch.as_tensor(values, dtype=base.dtype, device=base.device)
    if values.dim() == 1:
        values = values[None, :].expand(d, -1)
    check_shape("values", values, (d, "K"), hint=f"or [K]; the codes have D={d} latents")
    latents = list(range(d)) if latents is None else [int(j) for j in latents]
    codes = torch.stack([traversal_codes(base, j, values[j]) for j in latents])  # [L, B, K, D]
    flat = codes.reshape(-1, d)
    out = torch.cat([decode(chunk).float().cpu() for chunk in flat.split(batch_size)])
    return out.reshape(len(latents), base.shape[0], values.shape[1], *out.shape[1:])


def traversal_values(
    samples: Tensor | None,
    steps: int,
    quantile: float = 0.05,
    limit: float | None = None,
    latent_dim: int | None = None,
) -> Tensor:
    """The ``[D, K]`` values a traversal sweeps, ``K = steps``, ascending.

    - ``limit`` given: ``linspace(-limit, limit, K)`` for every latent.
    - ``samples`` ``[N, D]`` given: for latent ``j`` the quantiles of ``samples[:, j]`` at
      probabilities ``linspace(quantile, 1 - quantile, K)``: with draws of the aggregate posterior
      ``q(z_j)`` (one ``z ~ p(z|x)`` per data point) this sweeps the range the decoder saw in
      training, whatever the latent's scale.
    - neither: the same quantiles of the standard normal prior (``latent_dim`` latents).
    """
    check_int("steps", steps, 2)
    if limit is not None:
        limit = check_real("limit", limit, 0, low_open=True)
        d = samples.shape[1] if samples is not None else latent_dim
        if d is None:
            raise TcxError("give samples or latent_dim")
        return torch.linspace(-limit, limit, steps).expand(d, -1).clone()
    quantile = check_real("quantile", quantile, 0, 0.5, high_open=True)
    probs = torch.linspace(quantile, 1.0 - quantile, steps, dtype=torch.float64)
    if samples is None:
        if latent_dim is None:
            raise TcxError("give samples or latent_dim")
        clipped = probs.clamp(1e-6, 1 - 1e-6)
        return torch.special.ndtri(clipped).float().expand(latent_dim, -1).clone()
    s = torch.as_tensor(samples).double().cpu()
    check_tensor("samples", s, ndim=2, nonempty=True, hint="[N >= 1, D]")
    return torch.quantile(s, probs, dim=0).T.float().contiguous()


def information_order(information, anchors: Sequence[int] = ()) -> list[int]:
    """Latent indices for display: the anchors first, then the others, each group by decreasing
    ``information`` (``[D]``, e.g. the rate per latent in nats); ties keep index order."""
    info = [float(v) for v in torch.as_tensor(information).reshape(-1)]
    anchor_set = {int(a) for a in anchors}
    bad = sorted(a for a in anchor_set if not 0 <= a < len(info))
    if bad:
        raise TcxError(f"anchors {bad} are out of range for {len(info)} latents")
    key = lambda j: (j not in anchor_set, -info[j], j)  # noqa: E731
    return sorted(range(len(info)), key=key)


def traversal_frames(
    images,
    *,
    padding: int = 2,
    pad_value: float = _PAD_GREY,
    scale: int = 1,
    pingpong: bool = True,
    progress: bool = True,
) -> list[np.ndarray]:
    """Frames of an animated traversal of one latent.

    ``images``: ``[B, K, C, H, W]``, ``B`` bases (fixed inputs and the prior) at ``K`` values. Frame
    ``k`` is the row of the ``B`` images at value ``k`` (``image_grid`` of one row), with, when
    ``progress``, a 4-pixel bar under it whose filled length shows ``k / (K - 1)`` (white on dark
    grey for grey images, so that the GIF stays grey and exact; orange otherwise). ``pingpong``
    plays the values forward then back (``2K - 2`` frames), otherwise forward (``K`` frames). Each
    frame is ``uint8`` ``[height + 4 * progress, width, 3]`` with ``(height, width) =
    grid_shape(1, B, (scale * H, scale * W), padding=padding)``.
    """
    t = torch.as_tensor(images) if not isinstance(images, Tensor) else images
    check_shape("images", t, ("B", "K", "C", "H", "W"))
    num_b, k_steps = int(t.shape[0]), int(t.shape[1])
    grey = t.shape[2] == 1
    rgb = to_uint8(t.reshape(-1, *t.shape[2:])).reshape(num_b, k_steps, *t.shape[3:], 3)
    order = list(range(k_steps))
    if pingpong and k_steps > 2:
        order += list(range(k_steps - 2, 0, -1))
    frames = []
    for k in order:
        row = image_grid(rgb[:, k][None], padding=padding, pad_value=pad_value, scale=scale)
        if progress:
            bar = np.empty((4, row.shape[1], 3), dtype=np.uint8)
            bar[:] = 64 if grey else (220, 220, 220)
            filled = int(round(row.shape[1] * k / max(k_steps - 1, 1)))
            bar[:, : max(filled, 2)] = 255 if grey else ANCHOR_COLOR
            row = np.concatenate([row, bar], axis=0)
        frames.append(row)
    return frames


def encode_gif(frames: Sequence[np.ndarray], fps: float = 4.0) -> bytes:
    """An endlessly looping animated GIF of ``frames`` (``uint8`` ``[H, W, 3]`` each, one size).

    Pillow merges consecutive identical frames into one longer frame, so a latent that changes
    nothing gives a GIF of one frame.
    """
    from PIL import Image

    if not frames:
        raise TcxError("encode_gif needs at least one frame")
    fps = check_real("fps", fps, 0, low_open=True)
    shapes = {np.asarray(f).shape for f in frames}
    if len(shapes) != 1:
        raise TcxError(f"all frames must have one shape, got {sorted(shapes)}")
    arrays = [np.asarray(f, dtype=np.uint8) for f in frames]
    if all((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all() for a in arrays):
        # grey frames as 8-bit grey: exact, and no colour quantization (the slow part)
        pics = [Image.fromarray(np.ascontiguousarray(a[..., 0]), mode="L") for a in arrays]
    else:
        pics = [Image.fromarray(a) for a in arrays]
    buf = io.BytesIO()
    pics[0].save(
        buf, format="GIF", save_all=True, append_images=pics[1:],
        duration=int(round(1000.0 / fps)), loop=0, optimize=False, disposal=1,
    )
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# charts


def _latent_labels(d: int, names: Sequence[str] | None) -> list[str]:
    if names is None:
        return [f"z{j}" for j in range(d)]
    check_length("latent_names", names, d, "latents")
    return [str(n) for n in names]


def information_chart(
    rate,
    estimate=None,
    anchors: Sequence[int] = (),
    latent_names: Sequence[str] | None = None,
    title: str | None = None,
):
    """A bar chart (matplotlib ``Figure``) of the information each latent carries, in nats.

    ``rate`` ``[D]``: ``E_x KL(p(z_j|x) || r_j)``, the upper bound on ``I(Z_j;X)`` used in training;
    ``estimate`` ``[D]`` (optional): an estimate of ``I(Z_j;X)`` itself (e.g. the aggregate-posterior
    estimate of ``tcx.estimators.aggregate_information_full``), drawn beside it. The anchors' bars
    are orange and hatched, and their tick labels orange and bold.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rate = np.asarray(torch.as_tensor(rate, dtype=torch.float64).cpu()).reshape(-1)
    d = rate.size
    labels = _latent_labels(d, latent_names)
    anchor_set = {int(a) for a in anchors}
    # fixed margins in inches (constrained layout would double the drawing time)
    width = max(5.0, 0.55 * d + 1.6)
    fig = Figure(figsize=(width, 3.6), dpi=100)
    ax = fig.add_axes((0.9 / width, 0.55 / 3.6, 1 - 1.1 / width, 1 - 1.05 / 3.6))
    x = np.arange(d)
    bar_width = 0.4 if estimate is not None else 0.7
    base_colors = ["#f6b26b" if j in anchor_set else "#9fc5e8" for j in range(d)]
    hatches = ["//" if j in anchor_set else "" for j in range(d)]
    off = -bar_width / 2 if estimate is not None else 0.0
    bars = ax.bar(x + off, rate, bar_width, color=base_colors, edgecolor="#444444", linewidth=0.6)
    for bar, h in zip(bars, hatches):
        bar.set_hatch(h)
    handles = [Patch(facecolor="#9fc5e8", edgecolor="#444444", label="rate E KL_j (upper bound)")]
    if estimate is not None:
        est = np.asarray(torch.as_tensor(estimate, dtype=torch.float64).cpu()).reshape(-1)
        check_length("estimate", est, d, "latents of the rate")
        colors = ["#e06c00" if j in anchor_set else "#3d85c6" for j in range(d)]
        bars = ax.bar(x + bar_width / 2, est, bar_width, color=colors, edgecolor="#444444", linewidth=0.6)
        for bar, h in zip(bars, hatches):
            bar.set_hatch(h)
        handles.append(Patch(facecolor="#3d85c6", edgecolor="#444444", label="I(Z_j;X) estimate"))
    if anchor_set:
        handles.append(Patch(facecolor="#f6b26b", edgecolor="#444444", hatch="//", label="anchor"))
    ax.set_xticks(x, labels)
    for j, tick in enumerate(ax.get_xticklabels()):
        if j in anchor_set:
            tick.set_color("#e06c00")
            tick.set_fontweight("bold")
    top = max(float(np.max(rate)) if rate.size else 0.0, float(np.max(est)) if estimate is not None and est.size else 0.0)
    ax.set_ylim(top=max(top, 1e-3) * 1.4)  # headroom for the legend
    ax.set_ylabel("nats")
    ax.set_xlabel("latent")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(handles=handles, fontsize=8, loc="upper right", framealpha=0.8)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def mi_heatmap(
    matrix,
    factor_names: Sequence[str],
    anchors: Sequence[int] = (),
    latent_names: Sequence[str] | None = None,
    title: str | None = None,
    annotate: bool = True,
    rates=None,
):
    """A heatmap (matplotlib ``Figure``) of the ``[D, K]`` mutual information between each latent
    (row) and each factor (column), in nats, with the values written in the cells and the anchors'
    labels orange and bold. ``rates`` ``[D]`` (nats) are written beside the rows (``z3  rate
    0.22``), so a value can be read against what the latent carries. The title is wrapped to the
    figure's width."""
    import textwrap

    from matplotlib.figure import Figure

    m = np.asarray(torch.as_tensor(matrix, dtype=torch.float64).cpu())
    d, k = check_shape("matrix", m, ("D", "K"))
    check_length("factor_names", factor_names, k, "columns")
    labels = _latent_labels(d, latent_names)
    if rates is not None:
        r = np.asarray(torch.as_tensor(rates, dtype=torch.float64).cpu()).reshape(-1)
        check_length("rates", r, d, "latents")
        labels = [f"{name}  rate {float(v):.2f}" for name, v in zip(labels, r)]
    anchor_set = {int(a) for a in anchors}
    label_in = 0.15 + 0.075 * max(len(str(n)) for n in (labels + [""]))
    width = 0.8 * k + label_in + 1.9
    chars = max(int(0.9 * width * 100 / 7.0), 12)  # 9-point text: at most about 7 pixels a character
    lines = textwrap.wrap(title, chars) if title else []
    top = 0.45 + 0.16 * len(lines)
    height = 0.34 * d + 1.05 + top
    fig = Figure(figsize=(width, height), dpi=100)
    ax = fig.add_axes(((label_in + 0.45) / width, 1.05 / height, 0.8 * k / width, 0.34 * d / height))
    vmax = max(float(m.max()) if m.size else 0.0, 1e-6)
    im = ax.imshow(m, cmap="viridis", vmin=0.0, vmax=vmax, aspect="auto")
    ax.set_xticks(np.arange(k), [str(n) for n in factor_names], rotation=30, ha="right")
    ax.set_yticks(np.arange(d), labels)
    for j, tick in enumerate(ax.get_yticklabels()):
        if j in anchor_set:
            tick.set_color("#e06c00")
            tick.set_fontweight("bold")
    if annotate and d * k <= 400:
        for i in range(d):
            for c in range(k):
                v = m[i, c]
                ax.text(c, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if v > 0.6 * vmax else "white")
    cax = fig.add_axes(((label_in + 0.45 + 0.8 * k + 0.15) / width, 1.05 / height, 0.15 / width, 0.34 * d / height))
    fig.colorbar(im, cax=cax, label="nats")
    ax.set_xlabel("factor")
    ax.set_ylabel("latent")
    if lines:
        fig.suptitle("\n".join(lines), fontsize=9, x=0.5, y=1 - 0.12 / height, va="top")
    return fig


def information_history(steps, rate, information, anchors: Sequence[int] = (), title: str | None = None):
    """Each latent's information over training (matplotlib ``Figure``): two panels against the
    global ``steps`` ``[T]``, the rate ``E_x KL_j`` ``[T, D]`` (left) and the estimate of ``I(Z_j;X)``
    ``[T, D]`` (right), in nats, a line per latent in its own colour (the same in both panels),
    anchors drawn thick with square markers and named "z{j} anchor" in the legend."""
    from matplotlib.figure import Figure

    x = np.asarray(steps, dtype=np.float64).reshape(-1)
    r = np.asarray(torch.as_tensor(rate, dtype=torch.float64).cpu()).reshape(len(x), -1)
    info = np.asarray(torch.as_tensor(information, dtype=torch.float64).cpu()).reshape(len(x), -1)
    d = r.shape[1]
    check_length("information", info.T, d, "latents of the rate")
    anchor_set = {int(a) for a in anchors}
    legend_cols = 1 if d <= 12 else 2
    width = 9.0 + 0.9 * legend_cols
    fig = Figure(figsize=(width, 3.8), dpi=100)
    cmap = __import__("matplotlib").colormaps["tab20" if d > 10 else "tab10"]
    axes = [fig.add_axes((0.6 / width, 0.55 / 3.8, 3.7 / width, 2.75 / 3.8)),
            fig.add_axes((4.95 / width, 0.55 / 3.8, 3.7 / width, 2.75 / 3.8))]
    for ax, values, name in zip(axes, (r, info), ("rate E_x KL_j", "I(Z_j;X) estimate")):
        for j in range(d):
            anchor = j in anchor_set
            ax.plot(x, values[:, j], color=cmap(j % cmap.N), linewidth=2.6 if anchor else 1.2,
                    marker="s" if anchor else "o", markersize=4 if anchor else 2.5,
                    label=f"z{j} anchor" if anchor else f"z{j}")
        ax.set_title(f"{name}, nats", fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), ncol=legend_cols, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9, y=0.99)
    return fig


def _value_range(arrays) -> tuple[float, float]:
    lo = min([0.0] + [float(np.nanmin(a)) for a in arrays if a.size])
    hi = max([1.0] + [float(np.nanmax(a)) for a in arrays if a.size])
    return lo, hi


def vector_panels(
    panels: Sequence[tuple[str, object, Sequence[str] | None]],
    *,
    title: str | None = None,
    feature_names: Sequence[str] | None = None,
    row_marks: Sequence[bool] | None = None,
):
    """Vectors as heatmaps (matplotlib ``Figure``): one panel per ``(title, values [rows, n],
    row_labels or None)``, stacked, a row per item and a column per feature, on one colour scale
    (``[0, 1]``, widened to the values' range) with its colourbar.

    Readable at any ``n``: the plot is 4 to 10 inches wide whatever ``n`` (a cell per feature at
    small ``n``, resampled with antialiasing at large ``n``); every feature is labelled (by
    ``feature_names`` or index) up to 40 features, above that the axis has numbered ticks. Row
    labels are written up to 40 rows a panel; the rows' height shrinks with their number so the
    figure stays under about 14 inches. ``row_marks[p]`` colours panel ``p``'s title (anchors)."""
    import textwrap

    from matplotlib.figure import Figure

    arrays = [np.asarray(torch.as_tensor(v, dtype=torch.float32).cpu()).reshape(len(v), -1) for _, v, _ in panels]
    if not arrays:
        raise TcxError("vector_panels needs at least one panel")
    n = arrays[0].shape[1]
    if any(a.shape[1] != n for a in arrays):
        raise TcxError(f"every panel needs the same number of features, got {[a.shape[1] for a in arrays]}")
    if feature_names is not None:
        check_length("feature_names", feature_names, n, "features")
    lo, hi = _value_range(arrays)
    labels = [lab for _, _, labs in panels for lab in (labs or [])]
    label_w = 0.3 + 0.065 * max([len(str(s)) for s in labels] + [4])
    plot_w = min(max(0.28 * n, 4.0), 10.0)
    width = label_w + plot_w + 1.2
    total_rows = sum(a.shape[0] for a in arrays)
    row_h = min(0.25, max(0.04, 9.0 / max(total_rows, 1)))
    head, gap = 0.3, 0.1
    tick_h = 0.75 if n <= 40 else 0.45
    lines = textwrap.wrap(title, max(int(0.9 * width * 100 / 7.0), 12)) if title else []
    top = 0.1 + 0.17 * len(lines)
    heights = [max(a.shape[0] * row_h, 0.25) for a in arrays]
    height = top + sum(heights) + len(arrays) * (head + gap) + tick_h
    fig = Figure(figsize=(width, height), dpi=100)
    y = height - top
    im = None
    axes = []
    for p, ((name, _, row_labels), a, h) in enumerate(zip(panels, arrays, heights)):
        y -= head + h
        ax = fig.add_axes((label_w / width, y / height, plot_w / width, h / height))
        axes.append(ax)
        interpolation = "nearest" if n <= plot_w * 100 and a.shape[0] <= h * 100 else "antialiased"
        im = ax.imshow(a, cmap="viridis", vmin=lo, vmax=hi, aspect="auto", interpolation=interpolation)
        marked = bool(row_marks[p]) if row_marks is not None else False
        ax.set_title(name, fontsize=8, loc="left", color="#e06c00" if marked else "black",
                     fontweight="bold" if marked else "normal")
        if row_labels is not None and a.shape[0] <= 40:
            check_length("row_labels", row_labels, a.shape[0], "rows")
            ax.set_yticks(np.arange(a.shape[0]), [str(s) for s in row_labels], fontsize=7 if a.shape[0] <= 20 else 5)
        else:
            ax.set_yticks([])
        if n <= 40:
            names = feature_names if feature_names is not None else [str(i) for i in range(n)]
            ax.set_xticks(np.arange(n), [str(s) for s in names], fontsize=6, rotation=90)
        else:
            ax.tick_params(axis="x", labelsize=7)
        if p < len(arrays) - 1:
            ax.tick_params(axis="x", labelbottom=False)
        y -= gap
    axes[-1].set_xlabel(f"feature ({n})", fontsize=8)
    cax = fig.add_axes(((label_w + plot_w + 0.15) / width, (height - top - head - heights[0]) / height,
                        0.12 / width, heights[0] / height))
    fig.colorbar(im, cax=cax).ax.tick_params(labelsize=7)
    if lines:
        fig.suptitle("\n".join(lines), fontsize=9, y=1 - 0.05 / height, va="top")
    return fig


def vector_strip(values, *, width: int = 512, row_height: int = 12, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Rows of vectors ``[R, n]`` as a ``uint8`` RGB picture ``[R * row_height, W, 3]`` in the viridis
    colours of ``value_range``: each feature ``width // n`` pixels wide when ``n <= width``
    (``W = n * (width // n)``), else the features averaged in ``width`` equal bins (``W = width``)."""
    from matplotlib import colormaps

    a = np.asarray(torch.as_tensor(values, dtype=torch.float32).cpu())
    a = a.reshape(-1, a.shape[-1]) if a.ndim else a.reshape(1, 1)
    r, n = a.shape
    width = check_int("width", width, 1)
    if n <= width:
        a = a.repeat(width // n, axis=1)
    else:
        edges = np.linspace(0, n, width + 1).round().astype(int)
        a = np.add.reduceat(a, edges[:-1], axis=1) / np.diff(edges)[None, :]
    lo, hi = value_range
    scaled = np.clip((a - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    rgb = (colormaps["viridis"](scaled)[..., :3] * 255).round().astype(np.uint8)
    return np.ascontiguousarray(rgb.repeat(row_height, axis=0))


def vector_traversal_frames(values, *, width: int = 512, row_height: int = 12, pingpong: bool = True) -> list[np.ndarray]:
    """Frames of an animated traversal of one latent on vector data: ``values`` ``[B, K, n]`` (``B``
    bases at ``K`` values); frame ``k`` is ``vector_strip`` of the ``B`` vectors at value ``k``, one
    colour scale over all frames, separated by 2 white pixels, with a 4-pixel progress bar under
    it (orange, ``k / (K - 1)`` filled). Order as ``traversal_frames``."""
    t = np.asarray(torch.as_tensor(values, dtype=torch.float32).cpu())
    num_b, k_steps = t.shape[:2]
    rng = _value_range([t])
    order = list(range(k_steps))
    if pingpong and k_steps > 2:
        order += list(range(k_steps - 2, 0, -1))
    frames = []
    for k in order:
        strips = [vector_strip(t[b, k][None], width=width, row_height=row_height, value_range=rng) for b in range(num_b)]
        white = np.full((2, strips[0].shape[1], 3), 255, dtype=np.uint8)
        parts = [p for s in strips for p in (s, white)][:-1]
        bar = np.full((4, strips[0].shape[1], 3), 220, dtype=np.uint8)
        bar[:, : max(int(round(bar.shape[1] * k / max(k_steps - 1, 1))), 2)] = ANCHOR_COLOR
        frames.append(np.concatenate(parts + [bar], axis=0))
    return frames


def figure_to_array(fig) -> np.ndarray:
    """Render a matplotlib ``Figure`` (Agg, off screen) to a ``uint8`` RGB picture."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()
