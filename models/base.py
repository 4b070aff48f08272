"""The base LightningModule of every tcx model family: the step and the hooks families override.

It does what all the families share: encode ``x`` to the diagonal Gaussian posterior, draw one
reparameterized ``z``, decode, hand posterior, prior and likelihood to
:class:`tcx.objective.CorExObjective`, and log the terms the objective returns (in nats). A family
changes the objective through hooks, not by rewriting the step: :meth:`CorExVAE.latent_weights`,
:meth:`CorExVAE.extra_loss` (and :meth:`CorExVAE.report`), :meth:`CorExVAE.bound`. Every stage
shares :meth:`CorExVAE.step_terms`. The other jobs live beside it, each in its module under
``models/``: the compile policy (``compile.py``), data attachment (``data.py``), the optimizers
(``optimizers.py``), what a checkpoint records (``checkpoint_keys.py``) and ``load_model``
(``checkpoints.py``), the non-finite guard (``guard.py``), what is logged when
(``step_logging.py``).

Details: docs/models.md#modelsbasepy-corexvae
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import lightning.pytorch as pl
import torch
from torch import Tensor

from tcx.batches import split_batch
from tcx.distributions import DiagonalGaussian, StandardNormal, make_likelihood
from tcx.errors import TcxError
from tcx.models.checkpoint_keys import CLASS_KEY, DATAMODULE_CLASS_KEY, PRECISION_KEY, RecordsClasses
from tcx.models.compile import Compilable
from tcx.models.data import DataAttachment
from tcx.models.guard import check_finite
from tcx.models.optimizers import Optimizers
from tcx.models.step_logging import batch_number, logs_this_step, term_values
from tcx.networks import build_networks
from tcx.objective import CorExObjective, CorExTerms
from tcx.validation import check_int, check_real, check_shape

# the checkpoint keys are re-exported for the modules that import them from here
__all__ = ["CorExVAE", "StepOutput", "CLASS_KEY", "DATAMODULE_CLASS_KEY", "PRECISION_KEY"]


@dataclass
class StepOutput:
    """What one forward step computed (:meth:`CorExVAE.step_terms`), all in nats.

    - ``posterior``, ``z``: the posterior the family's bound encoded and the reparameterized sample
      it decoded (for the hierarchical VAE, the layer that ``encode`` returns);
    - ``terms``: the bound's :class:`tcx.objective.CorExTerms`;
    - ``extra``: the family's extra loss terms (``extra_loss``), each added to the loss;
    - ``reported``: diagnostics the family recorded with :meth:`CorExVAE.report`, logged only;
    - ``loss``: ``terms.loss + sum(extra.values())``, what training minimizes.
    """

    posterior: DiagonalGaussian
    z: Tensor
    terms: CorExTerms
    extra: dict[str, Tensor]
    loss: Tensor
    reported: dict[str, Tensor] = field(default_factory=dict)


class CorExVAE(Compilable, DataAttachment, Optimizers, RecordsClasses, pl.LightningModule):
    """A VAE trained on the weighted CorEx bound (docs/math.md#weighted-bounds).

    Args:
        latent_dim: number of latents ``D``.
        input_shape: shape of one input, ``[C, H, W]`` for images or ``[n]`` for vectors. With the
            ``tcx`` CLI it is taken from the datamodule's ``input_shape``.
        network: ``'conv'`` (Burgess et al. 2018, for images with H and W multiples of 16),
            ``'mlp'``, or ``'auto'`` (the default): conv for such images, mlp for anything else.
        hidden_dims: hidden sizes of the MLP (``network='mlp'`` only).
        likelihood: the decoder's ``q(x_i|z)``: ``'bernoulli'`` (x in [0, 1]) or ``'gaussian'``.
        likelihood_scale: the fixed standard deviation of the Gaussian likelihood.
        lr: Adam's learning rate. weight_decay: Adam's weight decay.
        channels_last: keep conv activations in channels-last memory layout (faster on CPUs with
            oneDNN and on GPUs with tensor cores; the numbers are the same).
        compile: ``torch.compile`` the encoder and decoder for training steps: ``True``, ``False``
            or ``"auto"`` (the default): compile where it pays, i.e. on a CUDA device for a run of
            at least ``COMPILE_AUTO_MIN_STEPS`` optimizer steps, never on the CPU (measured in
            benchmarks/results/train_throughput.md). Where compiling fails, one line says so and
            training goes on uncompiled. Evaluation and the callbacks always run the uncompiled
            networks (the same weights), so they never trigger a recompile.
        input_entropy_samples: how many data points the datamodule's ``pixel_entropy`` may use
            to estimate ``H(X_i)`` for the CorEx bound (0: the datamodule is not asked).
        optimizer, lr_scheduler: ``{"class_path", "init_args"}`` of a torch optimizer (instead of
            ``Adam(lr, weight_decay)``) and of a learning-rate scheduler for it; the ``tcx`` CLI's
            ``--optimizer`` and ``--lr_scheduler`` set them. The lr is logged as ``train/lr``.

    What the model learns from its data besides ``input_shape`` (:meth:`attach_data`):
    :attr:`input_entropy`, ``H(X_i)`` per input in nats, which turns on ``*/corex_bound``, and
    :attr:`dataset_size`, the number ``N`` of training examples, which the aggregate-posterior
    estimators need (:class:`tcx.models.BetaTCVAE` requires it; ``HierarchicalVAE.layer_information``
    uses it). Fitting with a datamodule fills both from what it declares (:meth:`attach_datamodule`).
    """

    #: the arguments that shape the weights: a ``--ckpt_path`` run refuses a change to them
    #: (tcx/cli/checkpoint_run.py); each family adds its own, the union over the MRO counts
    ARCHITECTURE: tuple[str, ...] = ("latent_dim", "input_shape", "network", "hidden_dims")

    def __init__(
        self,
        latent_dim: int = 10,
        input_shape: Sequence[int] = (1, 64, 64),
        network: str = "auto",
        hidden_dims: Sequence[int] | None = None,
        likelihood: str = "bernoulli",
        likelihood_scale: float = 0.1,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        channels_last: bool = True,
        compile: bool | str = "auto",
        input_entropy_samples: int = 20000,
        optimizer: dict | None = None,
        lr_scheduler: dict | None = None,
    ) -> None:
        super().__init__()
        # the model is where latent_dim enters: the networks, objective and prior built below
        # receive it checked
        check_int("latent_dim", latent_dim, 1)
        check_real("lr", lr, 0, low_open=True)
        check_real("weight_decay", weight_decay, 0)
        check_int("input_entropy_samples", input_entropy_samples, 0)
        self.save_hyperparameters()
        self._latent_dim = int(latent_dim)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.encoder, self.decoder = build_networks(network, self.input_shape, self._latent_dim, hidden_dims)
        self.likelihood = make_likelihood(likelihood, likelihood_scale)
        self.prior = StandardNormal(self._latent_dim)
        self.objective = CorExObjective(self._latent_dim, self.input_shape, beta=self.latent_weights())
        self._channels_last = bool(channels_last) and len(self.input_shape) == 3
        if self._channels_last:
            self.to(memory_format=torch.channels_last)
        if compile not in (True, False, "auto"):
            raise TcxError(f"compile must be true, false or 'auto', got {compile!r}")
        self._checked_data = False
        self._log_step = True
        self._reported: dict[str, Tensor] = {}

    # ----------------------------------------------------------------- family hooks
    def latent_weights(self) -> float | Tensor:
        """``beta_j`` for each latent (a number or a ``[D]`` tensor); the VAE's is 1."""
        return 1.0

    def extra_loss(self, x: Tensor, posterior: DiagonalGaussian, z: Tensor, terms: CorExTerms) -> dict[str, Tensor]:
        """Further named loss terms (nats) a family adds to the objective's loss; none here.

        Each is added to the loss and logged as ``{stage}/{name}``. A diagnostic that is not a loss
        term (an unweighted estimate, a schedule's value) goes through :meth:`report` instead.
        """
        return {}

    def report(self, name: str, value: Tensor | float) -> None:
        """Record a named diagnostic of the current step, logged as ``{stage}/{name}`` beside the
        bound's terms but not added to the loss (e.g. BetaTCVAE's unweighted ``total_correlation``
        in nats). Call it from :meth:`extra_loss` or :meth:`bound`; the record is cleared at the
        start of every :meth:`step_terms`."""
        value = torch.as_tensor(value, device=self.device)
        self._reported[str(name)] = value.detach().float()

    @property
    def reported(self) -> dict[str, Tensor]:
        """The diagnostics recorded by :meth:`report` since the start of the last
        :meth:`step_terms` (or since the last direct :meth:`extra_loss` call), by name."""
        return dict(self._reported)

    def bound(self, x: Tensor) -> tuple[DiagonalGaussian, Tensor, CorExTerms]:
        """Encode ``x``, draw one reparameterized ``z``, decode, and evaluate the weighted CorEx
        bound: returns ``(posterior, z, terms)``. A family with another generative model (the
        hierarchical VAE) overrides this and returns its own :class:`CorExTerms`."""
        posterior = self.encode(x)
        z = posterior.rsample()
        params = self.decode_params(z)
        entropy = None if self._input_entropy is None else self._input_entropy.to(x.device)
        terms = self.objective(posterior, self.prior, self.likelihood, x, params, input_entropy=entropy)
        return posterior, z, terms

    # ------------------------------------------------------------ callback interface
    @property
    def latent_dim(self) -> int:
        """Number of latents ``D``."""
        return self._latent_dim

    @property
    def anchor_indices(self) -> tuple[int, ...]:
        """Indices of the anchor latents (empty for families without anchors)."""
        return ()

    def _prepare(self, x: Tensor) -> Tensor:
        if self._channels_last and x.ndim == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def _check_input(self, x: Tensor) -> None:
        check_shape(
            f"{type(self).__name__}.encode's x", x, ("batch", *self.input_shape),
            hint=f"input_shape={self.input_shape}",
        )

    def encode(self, x: Tensor) -> DiagonalGaussian:
        """The posterior ``p(z|x)`` for a batch ``x`` of shape ``[B, *input_shape]``."""
        self._check_input(x)
        mean, log_var = self._network("encoder")(self._prepare(x))
        return DiagonalGaussian(mean, log_var)

    def decode_params(self, z: Tensor) -> Tensor:
        """The likelihood's parameters (Bernoulli logits or Gaussian means) for latents ``z``."""
        return self._network("decoder")(z)


    def decode(self, z: Tensor) -> Tensor:
        """The decoder's mean ``E_q[x|z]`` (an image in [0, 1] for Bernoulli) for latents ``z``."""
        return self.likelihood.mean(self.decode_params(z))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, density=None) -> Tensor:
        """Decoded means of ``n`` draws from the prior; with ``density`` (a fitted
        ``tcx.aggregate_density.AggregateDensity``) its latents are drawn from it instead and the
        others from the prior (the prior draws come first from ``generator``, so they are the same
        draws with and without it)."""
        z = self.prior.sample(n, device=self.device, generator=generator)
        if density is not None:
            z[:, list(density.indices)] = density.sample(n, generator=generator).to(z.device, z.dtype)
        return self.decode(z)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Decoded means at the posterior means of ``x``."""
        return self.decode(self.encode(x).mean)

    def forward(self, x: Tensor) -> Tensor:
        """Posterior means of ``x`` (the codes the metrics use)."""
        return self.encode(x).mean

    def step_terms(self, x: Tensor) -> StepOutput:
        """The bound's terms, the family's extra terms and the loss on ``x``: the one computation
        that training (automatic or manual optimization), validation and testing share."""
        self._reported = {}
        posterior, z, terms = self.bound(x)
        extra = self.extra_loss(x, posterior, z, terms)
        loss = terms.loss
        for value in extra.values():
            loss = loss + value
        return StepOutput(posterior, z, terms, extra, loss, dict(self._reported))

    def _unpack(self, batch) -> Tensor:
        x, _ = split_batch(batch)
        if not self._checked_data:
            if tuple(x.shape[1:]) != self.input_shape:
                raise TcxError(
                    f"the data's x has shape {tuple(x.shape)} but {type(self).__name__} was built for "
                    f"input_shape={self.input_shape}; set model input_shape to {tuple(x.shape[1:])}"
                )
            self.likelihood.check_data(x)
            self._checked_data = True
        return x

    def _log_terms(self, stage: str, out: StepOutput, batch_size: int) -> None:
        # validation and test: epoch means, synced; training: the steps the loggers write
        # (step_logging.logs_this_step), the progress bar's ELBO on every step
        on_step = stage == "train"
        if not on_step or self._log_step:
            self.log_dict(term_values(stage, out, self.anchor_indices), on_step=on_step, on_epoch=not on_step,
                          batch_size=batch_size, sync_dist=not on_step)
        self.log(f"{stage}_elbo", out.terms.elbo.detach(), on_step=on_step, on_epoch=not on_step,
                 prog_bar=True, logger=False, batch_size=batch_size, sync_dist=not on_step)

    def training_terms(self, batch) -> StepOutput:
        """One training step up to the loss: check the data, :meth:`step_terms`, stop on a
        non-finite loss (before any update, :func:`tcx.models.guard.check_finite`), log ``train/*``.
        ``training_step`` returns its loss; a family with manual optimization (FactorVAE) calls it
        and then steps its own optimizers."""
        x = self._unpack(batch)
        out = self.step_terms(x)
        check_finite(self, out.loss, out.terms, x=x)
        self._log_terms("train", out, x.shape[0])
        return out

    def training_step(self, batch, batch_idx: int) -> Tensor:
        return self.training_terms(batch).loss

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # whether this step's terms are built and logged (the loggers' cadence), and then the
        # learning rate it uses (the first optimizer's), so that a scheduler is seen at work
        self._log_step = logs_this_step(self.trainer, batch_number(self.trainer, batch_idx))
        optimizers = self.trainer.optimizers
        if optimizers and self._log_step:
            self.log("train/lr", float(optimizers[0].param_groups[0]["lr"]), on_step=True, on_epoch=False)

    def on_train_end(self) -> None:
        self._log_step = True  # a step outside fit (a direct training_terms call) logs everything

    def _evaluation_terms(self, stage: str, batch) -> Tensor:
        # validation and test: the same step_terms, logged as epoch means under `stage`
        x = self._unpack(batch)
        out = self.step_terms(x)
        self._log_terms(stage, out, x.shape[0])
        return out.loss

    def validation_step(self, batch, batch_idx: int) -> Tensor:
        return self._evaluation_terms("val", batch)

    def test_step(self, batch, batch_idx: int) -> Tensor:
        return self._evaluation_terms("test", batch)

    def predict_step(self, batch, batch_idx: int) -> dict[str, Tensor]:
        """The posterior (``mean``, ``log_var``) of each input, and its labels or factors if any."""
        x, y = split_batch(batch)
        posterior = self.encode(x)
        out = {"mean": posterior.mean, "log_var": posterior.log_var}
        if y is not None:
            out["y"] = y
        return out
