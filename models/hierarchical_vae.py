"""The hierarchical VAE read as hierarchical CorEx (Gao et al. 2019, section 4;
docs/math.md#hierarchical-corex).

Stochastic layers ``Z^1, ..., Z^L`` of configurable sizes: a bottom-up Markov encoder
``p(z^l|z^{l-1})`` and a top-down generative chain ``q(z^{l-1}|z^l)`` with the standard normal
prior on the top layer. Training maximizes the ELBO of this Markov hierarchical VAE, which plus
``sum_i H(X_i)`` is a lower bound on the sum of the layers' CorEx objectives; the bound's pieces
(per-layer informativeness and rates) come from :func:`tcx.hierarchical.hierarchical_bound`.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from tcx.validation import check_int, check_length, check_real, check_shape
from tcx.distributions import DiagonalGaussian, StandardNormal
from tcx.estimators import aggregate_information
from tcx.hierarchical import HierarchicalTerms, hierarchical_bound, mixture_information
from tcx.models.anchors import check_anchor_weights, resolve_anchors
from tcx.objective import as_weight_vector
from tcx.models.base import CorExVAE
from tcx.networks import MLPEncoder
from tcx.errors import TcxError

__all__ = ["HierarchicalVAE"]


class HierarchicalVAE(CorExVAE):
    """A Markov hierarchical VAE with ``L = len(layer_sizes)`` stochastic layers.

    Networks: the bottom layer's encoder ``p(z^1|x)`` and decoder ``q(x|z^1)`` are the base's
    (``network='conv'`` or ``'mlp'``, attributes ``encoder`` and ``decoder``, so that with
    ``L = 1`` the parameters and the loss are exactly :class:`tcx.models.VAE`'s). Between latent
    layers, MLPs with ``layer_hidden_dims`` ReLU layers: ``up[l-2]`` maps ``z^{l-1}`` to the mean
    and log-variance of ``p(z^l|z^{l-1})``, ``down[l-2]`` maps ``z^l`` to those of
    ``q(z^{l-1}|z^l)``, for ``l = 2..L``.

    Args:
        layer_sizes: units per layer, bottom first (e.g. ``[10, 10]``); ``L >= 1``.
        layer_hidden_dims: hidden sizes of the MLPs between latent layers.
        anchors: optional anchors per layer, one entry per layer (bottom first): a list of unit
            indices (``[]`` for none) or a count ``k`` (the first ``k`` units). ``None``: no anchors.
        anchor_beta: the weight on each anchor's rate, in [0, 1) (as AnchorVAE's).
        beta: the weight on every other unit's rate (>= 0; 1 gives the ELBO).
        encode_layer: the layer (from 1) that :meth:`encode`, :meth:`decode`, :attr:`latent_dim`
            and :attr:`anchor_indices` refer to, i.e. what the callbacks see; ``None`` for the top.
            It can be changed after construction (``model.encode_layer = 1``).
        information_samples: ``K``, the chains per input :meth:`layer_information` uses to
            estimate each layer's ``I(X;Z^l)`` (:func:`tcx.hierarchical.mixture_information`);
            0 turns the estimate off.
        **kwargs: the arguments of :class:`tcx.models.base.CorExVAE` except ``latent_dim`` (the
            sizes are ``layer_sizes``).

    The weighted bound, what is logged (``*/layer{l}/...``) and which Gaussian :meth:`encode`
    returns above layer 1: docs/models.md#modelshierarchical_vaepy-hierarchicalvae.
    """

    ARCHITECTURE = ("layer_sizes", "layer_hidden_dims", "anchors")

    def __init__(
        self,
        layer_sizes: Sequence[int] = (10, 10),
        layer_hidden_dims: Sequence[int] = (256,),
        anchors: Sequence[int | Sequence[int]] | None = None,
        anchor_beta: float = 0.2,
        beta: float = 1.0,
        encode_layer: int | None = None,
        information_samples: int = 8,
        **kwargs,
    ) -> None:
        if "latent_dim" in kwargs:
            raise TcxError(
                f"HierarchicalVAE takes layer_sizes (units per layer, bottom first), not latent_dim "
                f"(got latent_dim={kwargs['latent_dim']!r}): e.g. layer_sizes=[10, 10]"
            )
        if isinstance(layer_sizes, (str, bytes)) or not isinstance(layer_sizes, Sequence):
            raise TcxError(f"layer_sizes must be a list of positive ints, got {layer_sizes!r}")
        check_int("the number of layers (len(layer_sizes))", len(layer_sizes), 1)
        sizes = tuple(check_int(f"layer_sizes[{i}]", s, 1) for i, s in enumerate(layer_sizes))
        hidden = tuple(check_int(f"layer_hidden_dims[{i}]", h, 1) for i, h in enumerate(layer_hidden_dims))
        check_int("information_samples", information_samples, 0)
        self.layer_sizes = sizes
        self._anchors = self._resolve_layer_anchors(anchors, sizes)
        if any(self._anchors):
            check_anchor_weights(anchor_beta, beta)
        else:  # no anchors: anchor_beta weighs nothing, only its range is checked
            check_real("anchor_beta", anchor_beta, 0.0, 1.0, high_open=True)
            check_real("beta", beta, 0.0)
        self.anchor_beta = float(anchor_beta)
        self.beta = float(beta)
        self.information_samples = int(information_samples)
        self._encode_layer = len(sizes)
        self.encode_layer = encode_layer  # validated by the setter
        super().__init__(latent_dim=sizes[0], **kwargs)
        # latent_dim is derived from layer_sizes: keep it out of the saved hyperparameters so that
        # a checkpoint rebuilds the model from layer_sizes alone (`ignore` drops a hyperparameter
        # the base class saved, from both hparams and the hparams_initial the loggers record)
        self.save_hyperparameters(ignore=["latent_dim"])
        self.up = nn.ModuleList(MLPEncoder((sizes[i - 1],), sizes[i], hidden) for i in range(1, len(sizes)))
        self.down = nn.ModuleList(MLPEncoder((sizes[i],), sizes[i - 1], hidden) for i in range(1, len(sizes)))
        self.top_prior = StandardNormal(sizes[-1])
        # the weights of the bound, checked once here (not on every step) and kept on the
        # module's device; not saved: they follow from beta, anchor_beta and anchors
        for i, w in enumerate(self.layer_weights()):
            self.register_buffer(
                f"_weights_layer{i + 1}", as_weight_vector(w, w.numel(), f"weights for layer {i + 1}"), persistent=False
            )

    @staticmethod
    def _resolve_layer_anchors(anchors, sizes) -> tuple[tuple[int, ...], ...]:
        if anchors is None:
            return tuple(() for _ in sizes)
        anchors = list(anchors)
        check_length(
            "anchors", anchors, len(sizes), "layers",
            hint="give one per layer, bottom first, a list of unit indices ([] for none) or a count",
        )
        out = []
        for l, (a, size) in enumerate(zip(anchors, sizes), start=1):
            if not isinstance(a, int) and len(list(a)) == 0:
                out.append(())
                continue
            try:
                out.append(resolve_anchors(a, size))
            except ValueError as exc:
                raise TcxError(f"anchors of layer {l}: {exc}") from None
        return tuple(out)

    # ---------------------------------------------------------------- layer structure
    @property
    def num_layers(self) -> int:
        """The number ``L`` of stochastic layers."""
        return len(self.layer_sizes)

    @property
    def encode_layer(self) -> int:
        """The layer (from 1) the callback interface refers to."""
        return self._encode_layer

    @encode_layer.setter
    def encode_layer(self, value: int | None) -> None:
        self._encode_layer = self._check_layer(value)

    def _check_layer(self, layer: int | None) -> int:
        num = len(self.layer_sizes)
        if layer is None:
            return num
        return check_int("layer (this model's layers are numbered from the bottom)", layer, 1, num)

    @property
    def latent_dim(self) -> int:
        """Units of :attr:`encode_layer`."""
        return self.layer_sizes[self._encode_layer - 1]

    @property
    def anchor_indices(self) -> tuple[int, ...]:
        """Anchors of :attr:`encode_layer` (empty when it has none)."""
        return self._anchors[self._encode_layer - 1]

    @property
    def layer_anchor_indices(self) -> tuple[tuple[int, ...], ...]:
        """Anchors of every layer, bottom first."""
        return self._anchors

    def layer_weights(self) -> list[Tensor]:
        """Per layer, the ``[D_l]`` weights on the units' rates (``beta``; ``anchor_beta`` on anchors)."""
        out = []
        for size, anchors in zip(self.layer_sizes, self._anchors):
            w = torch.full((size,), self.beta)
            w[list(anchors)] = self.anchor_beta
            out.append(w)
        return out

    def latent_weights(self) -> Tensor:
        # the base's flat objective is the bottom layer's alone (it is the whole model when L = 1)
        return self.layer_weights()[0]

    # ------------------------------------------------------------ callback interface
    def encode(self, x: Tensor, layer: int | None = None) -> DiagonalGaussian:
        """The Gaussian of layer ``layer`` (default :attr:`encode_layer`) for a batch ``x``: exact
        ``p(z^1|x)`` for layer 1, ``p(z^l|z^{l-1})`` along the posterior means below for ``l >= 2``."""
        layer = self._encode_layer if layer is None else self._check_layer(layer)
        return self.encode_layers(x)[layer - 1]

    def encode_layers(self, x: Tensor) -> list[DiagonalGaussian]:
        """The Gaussians of every layer, bottom first, along the path of posterior means."""
        self._check_input(x)
        post = DiagonalGaussian(*self._network("encoder")(self._prepare(x)))
        out = [post]
        for up in self.up:
            post = DiagonalGaussian(*up(post.mean))
            out.append(post)
        return out

    def decode_params(self, z: Tensor, layer: int | None = None) -> Tensor:
        """The likelihood's parameters for codes ``z`` of layer ``layer`` (default
        :attr:`encode_layer`), going down the chain through the means of ``q(z^{l-1}|z^l)``."""
        layer = self._encode_layer if layer is None else self._check_layer(layer)
        size = self.layer_sizes[layer - 1]
        check_shape("z", z, ("batch", size), hint=f"layer {layer} has {size} units")
        for i in range(layer - 1, 0, -1):
            z = self.down[i - 1](z)[0]
        return self._network("decoder")(z)

    def decode(self, z: Tensor, layer: int | None = None) -> Tensor:
        """The decoder's mean ``E_q[x|z^1]`` for codes ``z`` of layer ``layer`` (default
        :attr:`encode_layer`), through the conditional means of the layers between."""
        return self.likelihood.mean(self.decode_params(z, layer))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Decoded means of ``n`` draws of the generative chain: ``z^L ~ r``, then
        ``z^{l-1} ~ q(z^{l-1}|z^l)`` down to ``z^1``."""
        z = self.top_prior.sample(n, device=self.device, generator=generator)
        for i in range(self.num_layers - 1, 0, -1):
            z = DiagonalGaussian(*self.down[i - 1](z)).rsample(generator)
        return self.likelihood.mean(self._network("decoder")(z))

    # ------------------------------------------------------------------- objective
    def _sample_chain(self, x: Tensor) -> tuple[list[DiagonalGaussian], list[Tensor]]:
        """One sample of the bottom-up chain: the posterior of every layer and its sample, bottom first."""
        self._check_input(x)
        post = DiagonalGaussian(*self._network("encoder")(self._prepare(x)))
        z = post.rsample()
        posteriors, samples = [post], [z]
        for up in self.up:
            post = DiagonalGaussian(*up(z))
            z = post.rsample()
            posteriors.append(post)
            samples.append(z)
        return posteriors, samples

    def bound(self, x: Tensor) -> tuple[DiagonalGaussian, Tensor, HierarchicalTerms]:
        """One sample of the bottom-up chain, the top-down conditionals at it, and the terms of
        :func:`tcx.hierarchical.hierarchical_bound`. Returns the posterior and sample of
        :attr:`encode_layer` with the terms."""
        posteriors, samples = self._sample_chain(x)
        params = self._network("decoder")(samples[0])
        conditionals = [DiagonalGaussian(*self.down[i](samples[i + 1])) for i in range(self.num_layers - 1)]
        entropy = None if self._input_entropy is None else self._input_entropy.to(x.device)
        terms = hierarchical_bound(
            x, params, self.likelihood, posteriors, samples, conditionals, self.top_prior,
            weights=[getattr(self, f"_weights_layer{i + 1}") for i in range(len(self.layer_sizes))],
            input_entropy=entropy,
            layer=self._encode_layer,
        )
        sel = self._encode_layer - 1
        return posteriors[sel], samples[sel], terms

    # ------------------------------------------------------------------- diagnostics
    @torch.no_grad()
    def layer_information(self, x: Tensor) -> list[Tensor]:
        """Estimates of ``I(X;Z^l)`` in nats for every layer, bottom first, on the batch ``x``
        (``M`` points, ``2 <= M <= dataset_size``) taken as a sample of the training set of
        :attr:`dataset_size` points (docs/math.md#layer-information).

        One sample of the chain per input and ``K = information_samples`` chains per input:
        minibatch stratified sampling for the Gaussian layer 1
        (:func:`tcx.estimators.aggregate_information`), the mixture estimate of
        :func:`tcx.hierarchical.mixture_information` above it. An empty list when
        ``information_samples`` is 0. Used by :class:`tcx.callbacks.InformationDiagnostics`.
        """
        if self.information_samples == 0:
            return []
        if self.dataset_size is None:
            raise TcxError(
                "HierarchicalVAE.layer_information needs the training set's size N: fit with a datamodule "
                "that declares `dataset_size`, or call `model.attach_data(dataset_size=N)`"
            )
        check_int(
            "HierarchicalVAE.layer_information's batch size", int(x.shape[0]), 2, self.dataset_size,
            hint="from 2 points to the training set's dataset_size",
        )
        posteriors, samples = self._sample_chain(x)
        return self._layer_information(posteriors, samples, self.dataset_size)

    def _layer_information(self, posteriors: list[DiagonalGaussian], samples: list[Tensor], dataset_size: int) -> list[Tensor]:
        # the estimate from one sample of the chain (posteriors, samples as _sample_chain draws them)
        info = [aggregate_information(posteriors[0].mean, posteriors[0].log_var, dataset_size, "mss", z=samples[0])["mutual_info"].float()]
        if self.num_layers == 1:
            return info
        k = max(1, self.information_samples)
        m = samples[0].shape[0]
        # K chains per input; chain 0 is the one sampled for the estimate, the others are fresh
        fresh = posteriors[0].mean.unsqueeze(1) + posteriors[0].std.unsqueeze(1) * torch.randn(
            m, k - 1, self.layer_sizes[0], device=samples[0].device
        )
        chains = torch.cat([samples[0].unsqueeze(1), fresh], dim=1)  # [M, K, D_1]
        for i, up in enumerate(self.up):
            d_prev = chains.shape[-1]
            mean, log_var = up(chains.reshape(m * k, d_prev))
            mean, log_var = mean.float().reshape(m, k, -1), log_var.float().reshape(m, k, -1)
            info.append(mixture_information(samples[i + 1], mean, log_var, dataset_size).float())
            step = DiagonalGaussian(mean[:, 1:], log_var[:, 1:]).rsample()
            chains = torch.cat([samples[i + 1].unsqueeze(1), step], dim=1)
        return info
