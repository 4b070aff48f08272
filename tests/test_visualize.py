"""tcx.visualize: traversal codes and values, grid and GIF geometry, charts."""

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from tcx import visualize as viz


def test_traversal_codes_change_only_the_traversed_latent():
    base = torch.randn(3, 5)
    values = torch.linspace(-2, 2, 7)
    for j in range(5):
        codes = viz.traversal_codes(base, j, values)
        assert codes.shape == (3, 7, 5)
        others = [i for i in range(5) if i != j]
        assert torch.equal(codes[:, :, others], base[:, None, others].expand(-1, 7, -1))
        assert torch.equal(codes[:, :, j], values[None].expand(3, -1))
    with pytest.raises(ValueError, match=r"latent must be an integer in \[0, 4\], got 5"):
        viz.traversal_codes(base, 5, values)


def test_latent_traversal_decodes_each_row_with_only_its_latent_moving():
    seen = []

    def decode(z):
        seen.append(z.clone())
        return z.repeat_interleave(4, dim=1)[:, None, None, :]  # a 1 x 4D "image" of the code

    base = torch.randn(2, 3)
    values = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-3.0, 0.0, 3.0]])
    out = viz.latent_traversal(decode, base, values, latents=[2, 0], batch_size=5)
    assert out.shape == (2, 2, 3, 1, 1, 12)
    codes = torch.cat(seen).reshape(2, 2, 3, 3)  # [L, B, K, D], in the order asked for
    for row, j in enumerate([2, 0]):
        others = [i for i in range(3) if i != j]
        assert torch.equal(codes[row][:, :, others], base[:, None, others].expand(-1, 3, -1))
        assert torch.equal(codes[row][:, :, j], values[j][None].expand(2, -1))
    assert all(len(z) <= 5 for z in seen)


def test_traversal_values_quantiles_prior_and_limit():
    samples = torch.stack([torch.arange(101.0), 10 * torch.arange(101.0)], dim=1)
    v = viz.traversal_values(samples, steps=3, quantile=0.1)
    assert torch.allclose(v, torch.tensor([[10.0, 50.0, 90.0], [100.0, 500.0, 900.0]]))
    prior = viz.traversal_values(None, steps=3, quantile=0.05, latent_dim=4)
    assert prior.shape == (4, 3)
    assert torch.allclose(prior[:, 0], torch.full((4,), -1.6449), atol=1e-3)
    assert torch.allclose(prior[:, 1], torch.zeros(4), atol=1e-6)
    fixed = viz.traversal_values(None, steps=5, limit=2.0, latent_dim=2)
    assert torch.equal(fixed, torch.linspace(-2, 2, 5).expand(2, -1))
    with pytest.raises(ValueError, match="steps must be an integer >= 2"):
        viz.traversal_values(samples, steps=1)


def test_information_order_puts_anchors_first_then_by_information():
    info = torch.tensor([0.1, 3.0, 0.5, 2.0, 0.5])
    assert viz.information_order(info, anchors=(0, 2)) == [2, 0, 1, 3, 4]
    assert viz.information_order(info) == [1, 3, 2, 4, 0]
    with pytest.raises(ValueError, match="out of range"):
        viz.information_order(info, anchors=(7,))


def test_image_grid_size_and_tile_placement():
    rows, cols, h, w = 3, 4, 5, 6
    levels = 20 * torch.arange(rows * cols).reshape(rows, cols)  # grey levels 0, 20, .., 220
    values = levels.float() / 255
    images = values[:, :, None, None, None].expand(rows, cols, 1, h, w)
    pic = viz.image_grid(images, padding=2, groups=2, group_gap=5)
    assert pic.dtype == np.uint8 and pic.shape == (*viz.grid_shape(rows, cols, (h, w), padding=2, groups=2, group_gap=5), 3)
    assert pic.shape == (3 * (5 + 2) + 2, 4 * (6 + 2) + 2 + 5, 3)
    for r in range(rows):
        for c in range(cols):
            y = 2 + r * (h + 2)
            x = 2 + c * (w + 2) + (5 if c >= 2 else 0)
            tile = pic[y : y + h, x : x + w]
            assert (tile == int(levels[r, c])).all(), (r, c)
    big = viz.image_grid(images, scale=3, padding=1)
    assert big.shape[:2] == viz.grid_shape(rows, cols, (h, w), padding=1, scale=3)


def test_image_grid_labels_add_margins_and_mark_anchors():
    images = torch.rand(2, 3, 1, 16, 16)
    plain = viz.image_grid(images)
    labelled = viz.image_grid(images, row_labels=["z0 A", "z1"], row_marks=[True, False], group_labels=["input 0"])
    assert labelled.shape[0] == plain.shape[0] + 11 + 8  # header: font size + 8
    assert labelled.shape[1] > plain.shape[1]  # the label margin
    orange = np.all(labelled == np.array(viz.ANCHOR_COLOR, dtype=np.uint8), axis=-1)
    header = 11 + 8
    anchor_rows = orange.any(axis=1).nonzero()[0]
    # only beside the first row (rows of 16 + 2 pixels below the header)
    assert anchor_rows.size and anchor_rows.min() >= header and anchor_rows.max() < header + 2 + 16 + 2, anchor_rows
    with pytest.raises(ValueError, match="row_labels has 1 entries for 2 rows"):
        viz.image_grid(images, row_labels=["z0"])
    with pytest.raises(ValueError, match="must divide"):
        viz.image_grid(images, groups=2)


def test_vector_data_is_shown_as_images():
    assert viz.as_image_batch(torch.rand(2, 49)).shape == (2, 1, 7, 7)
    assert viz.as_image_batch(torch.rand(2, 10)).shape == (2, 1, 8, 10)
    x = viz.as_image_batch(torch.tensor([[[[-1.0, 2.0], [float("nan"), 0.5]]]]))
    assert x.flatten().tolist() == [0.0, 1.0, 0.0, 0.5]


def _gif_frames(data: bytes) -> list[np.ndarray]:
    img = Image.open(io.BytesIO(data))
    assert img.info.get("loop") == 0
    return [np.asarray(f.convert("L")) for f in ImageSequence.Iterator(img)]


def test_traversal_frames_and_gif_sizes():
    b, k, h, w = 3, 5, 6, 7
    images = torch.linspace(0, 1, k)[None, :, None, None, None].expand(b, k, 1, h, w).clone()
    frames = viz.traversal_frames(images)
    assert len(frames) == 2 * k - 2  # forward then back
    height, width = viz.grid_shape(1, b, (h, w))
    assert all(f.shape == (height + 4, width, 3) for f in frames)
    assert len(viz.traversal_frames(images, pingpong=False)) == k
    assert viz.traversal_frames(images, progress=False, scale=2)[0].shape == (*viz.grid_shape(1, b, (2 * h, 2 * w)), 3)

    decoded = _gif_frames(viz.encode_gif(frames, fps=5))
    assert len(decoded) == len(frames)
    assert all(f.shape == (height + 4, width) for f in decoded)
    # grey frames are stored exactly: the first tile of frame i has the value of step i
    for i, step in enumerate(list(range(k)) + list(range(k - 2, 0, -1))):
        assert (decoded[i][2 : 2 + h, 2 : 2 + w] == round(255 * step / (k - 1))).all()
    # the progress bar under the last forward frame is full
    assert (decoded[k - 1][-4:] == 255).all() and not (decoded[0][-4:, -5:] == 255).any()


def test_encode_gif_checks_its_input():
    with pytest.raises(ValueError, match="at least one frame"):
        viz.encode_gif([])
    with pytest.raises(ValueError, match="one shape"):
        viz.encode_gif([np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)])


def test_information_chart_and_heatmap_render_with_anchor_colours():
    rate = torch.tensor([2.0, 0.5, 1.0, 0.0])
    est = torch.tensor([1.5, 0.4, 0.9, 0.0])
    pic = viz.figure_to_array(viz.information_chart(rate, est, anchors=(0,), title="I(Z;X) = 1 nats"))
    assert pic.dtype == np.uint8 and pic.ndim == 3 and pic.shape[2] == 3 and pic.shape[0] > 200
    anchor_bar = np.all(pic == np.array([0xF6, 0xB2, 0x6B], np.uint8), axis=-1).sum()
    other_bar = np.all(pic == np.array([0x9F, 0xC5, 0xE8], np.uint8), axis=-1).sum()
    assert anchor_bar > 100 and other_bar > 100
    no_anchor = viz.figure_to_array(viz.information_chart(rate))
    assert not np.all(no_anchor == np.array([0xF6, 0xB2, 0x6B], np.uint8), axis=-1).any()

    heat = viz.figure_to_array(viz.mi_heatmap(torch.rand(4, 3), ["shape", "scale", "posX"], anchors=(1,)))
    assert heat.dtype == np.uint8 and heat.shape[2] == 3
    with pytest.raises(ValueError, match="factor_names has 2 entries for 3 columns"):
        viz.mi_heatmap(torch.rand(4, 3), ["a", "b"])
    with pytest.raises(ValueError, match="estimate has 3 entries for 4 latents of the rate"):
        viz.information_chart(rate, est[:3])


def test_save_png_round_trip_and_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    pic = viz.image_grid(torch.rand(2, 2, 3, 4, 4))
    viz.save_png(pic, tmp_path / "g.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "g.png").convert("RGB")), pic)
    # a full disk mid-write: one clear error, the earlier file whole, no temporary beside it
    import errno

    from tcx.safe_io import DiskFullError

    def full_disk(_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(viz, "png_bytes", full_disk)
    with pytest.raises(DiskFullError, match="g.png was not written .the previous g.png is intact"):
        viz.save_png(pic, tmp_path / "g.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "g.png").convert("RGB")), pic)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png"]
