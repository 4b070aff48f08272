"""Encoder and decoder networks.

- :class:`ConvEncoder` / :class:`ConvDecoder`: the standard convolutional pair of Burgess et al.
  2018 ("Understanding disentangling in beta-VAE", appendix A.1) as used across the
  disentanglement literature: four 4x4 stride-2 convolutions with 32, 32, 64, 64 channels, a
  256-unit dense layer, and the mirrored transposed-convolution decoder. Built for 64x64 images;
  any square or rectangular size divisible by 16 (e.g. 32x32) works too.
- :class:`MLPEncoder` / :class:`MLPDecoder`: fully connected networks for vector data or small
  images.

Encoders return ``(mean, log_var)`` of the diagonal Gaussian posterior, each ``[B, latent_dim]``;
decoders return the likelihood's parameters (logits for Bernoulli, means for Gaussian) with the
shape of one input.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn
from tcx.errors import TcxError
from tcx.validation import check_choice, check_int

__all__ = ["ConvEncoder", "ConvDecoder", "MLPEncoder", "MLPDecoder", "build_networks", "NETWORKS", "choose_network"]

CONV_CHANNELS = (32, 32, 64, 64)
CONV_HIDDEN = 256


def _check_shape(input_shape: Sequence[int], name: str = "input_shape") -> tuple[int, ...]:
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        raise TcxError(f"{name} must be a sequence of ints, got {input_shape!r}")
    check_int(f"the number of dimensions of {name}", len(input_shape), 1)
    return tuple(check_int(f"{name}[{i}]", s, 1) for i, s in enumerate(input_shape))


def _check_conv_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = _check_shape(input_shape)
    if len(shape) != 3:
        raise TcxError(
            f"network='conv' needs images [C, H, W], got input_shape={shape}; "
            "use network='mlp' for vector data"
        )
    c, h, w = shape
    if h % 16 or w % 16:
        raise TcxError(
            f"network='conv' halves the image four times, so H and W must be multiples of 16; "
            f"got input_shape={shape}. Pad or resize the images (64x64 is the standard size, "
            "32x32 for padded MNIST) or use network='mlp'"
        )
    return c, h, w


class ConvEncoder(nn.Module):
    """Burgess et al. 2018 convolutional encoder: ``x [B, C, H, W] -> (mean, log_var) [B, D]``."""

    def __init__(self, input_shape: Sequence[int], latent_dim: int) -> None:
        super().__init__()
        c, h, w = _check_conv_shape(input_shape)
        layers: list[nn.Module] = []
        prev = c
        for ch in CONV_CHANNELS:
            layers += [nn.Conv2d(prev, ch, kernel_size=4, stride=2, padding=1), nn.ReLU(inplace=True)]
            prev = ch
        self.features = nn.Sequential(*layers)
        self.feature_shape = (prev, h // 16, w // 16)
        flat = prev * (h // 16) * (w // 16)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, CONV_HIDDEN),
            nn.ReLU(inplace=True),
            nn.Linear(CONV_HIDDEN, 2 * latent_dim),
        )
        self.latent_dim = int(latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = self.head(self.features(x))
        mean, log_var = out.chunk(2, dim=1)
        return mean, log_var


class ConvDecoder(nn.Module):
    """The mirror of :class:`ConvEncoder`: ``z [B, D] -> params [B, C, H, W]``."""

    def __init__(self, input_shape: Sequence[int], latent_dim: int) -> None:
        super().__init__()
        c, h, w = _check_conv_shape(input_shape)
        self.feature_shape = (CONV_CHANNELS[-1], h // 16, w // 16)
        flat = CONV_CHANNELS[-1] * (h // 16) * (w // 16)
        self.head = nn.Sequential(
            nn.Linear(latent_dim, CONV_HIDDEN),
            nn.ReLU(inplace=True),
            nn.Linear(CONV_HIDDEN, flat),
            nn.ReLU(inplace=True),
        )
        chans = list(reversed(CONV_CHANNELS)) + [c]  # 64, 64, 32, 32, C
        layers: list[nn.Module] = []
        for i in range(4):
            layers.append(nn.ConvTranspose2d(chans[i], chans[i + 1], kernel_size=4, stride=2, padding=1))
            if i < 3:
                layers.append(nn.ReLU(inplace=True))
        self.features = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        h = self.head(z).view(z.shape[0], *self.feature_shape)
        return self.features(h)


class MLPEncoder(nn.Module):
    """Fully connected encoder: flattens ``x`` and maps it through ``hidden_dims`` ReLU layers."""

    def __init__(self, input_shape: Sequence[int], latent_dim: int, hidden_dims: Sequence[int] = (512, 256)) -> None:
        super().__init__()
        shape = _check_shape(input_shape)
        n = 1
        for s in shape:
            n *= s
        layers: list[nn.Module] = [nn.Flatten()]
        prev = n
        for hdim in hidden_dims:
            layers += [nn.Linear(prev, int(hdim)), nn.ReLU(inplace=True)]
            prev = int(hdim)
        layers.append(nn.Linear(prev, 2 * latent_dim))
        self.net = nn.Sequential(*layers)
        self.latent_dim = int(latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_var = self.net(x).chunk(2, dim=1)
        return mean, log_var


class MLPDecoder(nn.Module):
    """Fully connected decoder: ``z [B, D] -> params [B, *input_shape]``."""

    def __init__(self, input_shape: Sequence[int], latent_dim: int, hidden_dims: Sequence[int] = (256, 512)) -> None:
        super().__init__()
        self.input_shape = _check_shape(input_shape)
        n = 1
        for s in self.input_shape:
            n *= s
        layers: list[nn.Module] = []
        prev = int(latent_dim)
        for hdim in hidden_dims:
            layers += [nn.Linear(prev, int(hdim)), nn.ReLU(inplace=True)]
            prev = int(hdim)
        layers.append(nn.Linear(prev, n))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.input_shape)


NETWORKS = ("auto", "conv", "mlp")


def choose_network(input_shape: Sequence[int]) -> str:
    """``'conv'`` for images ``(C, H, W)`` with H and W multiples of 16, ``'mlp'`` for anything else."""
    shape = tuple(int(s) for s in input_shape)
    return "conv" if len(shape) == 3 and shape[1] % 16 == 0 and shape[2] % 16 == 0 else "mlp"


def build_networks(
    network: str,
    input_shape: Sequence[int],
    latent_dim: int,
    hidden_dims: Sequence[int] | None = None,
) -> tuple[nn.Module, nn.Module]:
    """The ``(encoder, decoder)`` pair called ``network`` (``'conv'``, ``'mlp'``, or ``'auto'``:
    ``choose_network(input_shape)``, or ``'mlp'`` when ``hidden_dims`` is given).

    ``hidden_dims`` sets the MLP's hidden layer sizes (encoder order; the decoder mirrors them);
    the conv pair has the fixed architecture of Burgess et al. 2018.
    """
    # latent_dim is checked where it enters: the model (models/base.py)
    key = check_choice("network", network, NETWORKS, ignore_case=True)
    if key == "auto":  # hidden sizes given are the MLP's
        key = "mlp" if hidden_dims is not None else choose_network(input_shape)
    if key == "conv":
        if hidden_dims is not None:
            raise TcxError("hidden_dims applies to network='mlp' only; the conv pair is fixed")
        return ConvEncoder(input_shape, latent_dim), ConvDecoder(input_shape, latent_dim)
    hidden = tuple(hidden_dims) if hidden_dims is not None else (512, 256)
    for i, h in enumerate(hidden):
        check_int(f"hidden_dims[{i}]", h, 1)
    return (
        MLPEncoder(input_shape, latent_dim, hidden),
        MLPDecoder(input_shape, latent_dim, tuple(reversed(hidden))),
    )
