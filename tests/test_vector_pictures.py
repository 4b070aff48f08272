"""Pictures of vector data (issue 29 item 3): inputs, reconstructions, samples and traversals of a
model whose input_shape is (n,) are heatmaps of items by features, not image tiles, and readable
at 5, 64 or 2,000 features."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from tcx import visualize as viz
from tcx.callbacks import pictures
from tcx.callbacks.encoding import Encoded, encode_posteriors
from tcx.models import AnchorVAE

pytestmark = pytest.mark.usefixtures("one_thread")


def vector_model(n: int) -> AnchorVAE:
    torch.manual_seed(0)
    return AnchorVAE(input_shape=(n,), latent_dim=3, anchors=1, hidden_dims=[8], input_entropy_samples=0).eval()


@pytest.mark.parametrize("n", [5, 64, 2000])
def test_reconstructions_of_vectors_are_a_heatmap_of_the_inputs_and_their_reconstructions(n, monkeypatch):
    model = vector_model(n)
    x = (torch.rand(6, n, generator=torch.Generator().manual_seed(n)) < 0.3).float()
    drawn = []
    real = viz.vector_panels
    monkeypatch.setattr(viz, "vector_panels", lambda panels, **kw: drawn.append(panels) or real(panels, **kw))
    with torch.no_grad():
        (item,) = pictures.reconstruction_media(model, x)
        expected = model.decode(model.encode(x).mean)
    (panels,) = drawn
    assert [p[0] for p in panels] == ["inputs", "reconstructions (decoded posterior means)"]
    assert torch.equal(panels[0][1], x) and torch.allclose(panels[1][1], expected.reshape(6, -1))
    height, width = item.data.shape[:2]
    assert 590 <= width <= 1300 and 300 <= height <= 1000, item.data.shape  # tiles were ~60 x 15 pixels


def test_the_heatmap_holds_the_values_and_labels_features_only_while_they_fit():
    few = torch.tensor([[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]])
    fig = viz.vector_panels([("inputs", few, ["a", "b"])], feature_names=["f0", "f1", "f2"])
    ax = fig.axes[0]
    assert np.allclose(np.asarray(ax.images[0].get_array()), few.numpy())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["f0", "f1", "f2"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    wide = viz.vector_panels([("inputs", torch.rand(2, 2000), None)])
    viz.figure_to_array(wide)
    assert len(wide.axes[0].get_xticks()) < 20 and wide.get_size_inches()[0] <= 12.5


def test_samples_traversals_and_gifs_of_vectors():
    model = vector_model(64)
    x = (torch.rand(40, 64, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    with torch.no_grad():
        mean, log_var = encode_posteriors(model, x)
        items = pictures.sample_media(model, x[:2], Encoded(mean, log_var, None), num_samples=4, num_held=2,
                                      num_resampled=3)
        items += pictures.traversal_media(model, x[:1], Encoded(mean, log_var, None), steps=3)
    by_key = {item.key: item for item in items}
    for key in ("media/samples", "media/anchor_samples_held", "media/others_held", "media/traversal"):
        assert by_key[key].data.shape[1] >= 590, key
    frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(Image.open(io.BytesIO(by_key["media/traversal_z0"].data)))]
    # 2 bases (the input and the prior) of 64 features 8 pixels wide, 12 pixels high, a gap, the bar
    assert frames[0].shape == (12 + 2 + 12 + 4, 512, 3)


def test_a_vector_strip_colours_each_feature_by_its_value():
    strip = viz.vector_strip(torch.tensor([[0.0, 1.0]]), width=8, row_height=2)
    assert strip.shape == (2, 8, 3)
    assert (strip[:, :4] == strip[0, 0]).all() and (strip[:, 4:] == strip[0, 4]).all()
    assert strip[0, 0].tolist() != strip[0, 4].tolist()
    wide = viz.vector_strip(torch.cat([torch.zeros(1, 1000), torch.ones(1, 1000)], 1), width=10, row_height=1)
    assert wide.shape == (1, 10, 3) and (wide[0, :5] == strip[0, 0]).all() and (wide[0, 5:] == strip[0, 4]).all()
