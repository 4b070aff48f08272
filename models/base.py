"""The base LightningModule of every tcx model family.

It does what all the families share: encode ``x`` to the diagonal Gaussian posterior, draw one
reparameterized ``z``, decode, hand posterior, prior and likelihood to
:class:`tcx.objective.CorExObjective`, log the terms the objective returns (in nats), and build the
optimizer. A family changes the objective through hooks, not by rewriting the step:
:meth:`CorExVAE.latent_weights`, :meth:`CorExVAE.extra_loss` (and :meth:`CorExVAE.report`),
:meth:`CorExVAE.bound`. Every stage shares :meth:`CorExVAE.step_terms`; what a model learns from
its data goes through :meth:`CorExVAE.attach_data`.

The interface the callbacks use (docs/design.md#the-model-interface): :meth:`encode`,
:meth:`decode`, :meth:`sample`, :attr:`latent_dim`, :attr:`anchor_indices`.

Details: docs/models.md#modelsbasepy-corexvae
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Sequence

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor

from tcx.batches import split_batch
from tcx.distributions import DiagonalGaussian, StandardNormal, make_likelihood
from tcx.networks import build_networks
from tcx.errors import DivergedError, TcxError
from tcx.objective import CorExObjective, CorExTerms
from tcx.validation import check_int, check_real, check_shape

__all__ = ["CorExVAE", "StepOutput", "load_model", "CLASS_KEY", "DATAMODULE_CLASS_KEY", "PRECISION_KEY"]

#: the fewest optimizer steps at which ``compile="auto"`` compiles on a CUDA device: the compile
#: warm-up (tens of seconds) is then a small part of the run
COMPILE_AUTO_MIN_STEPS = 2000

CLASS_KEY = "tcx_model_class"
DATAMODULE_CLASS_KEY = "tcx_datamodule_class"
#: the Trainer precision the checkpoint's run trained in (a resumed run keeps it unless told otherwise)
PRECISION_KEY = "tcx_precision"


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


class CorExVAE(pl.LightningModule):
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

    #: whether the family cannot compute its loss without :attr:`dataset_size` (BetaTCVAE)
    requires_dataset_size: bool = False
    #: the arguments that shape the weights: a ``--ckpt_path`` run refuses a change to them
    #: (tcx/checkpoint_run.py); each family adds its own, the union over the MRO counts
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
        # the compiled networks (torch.compile wrappers sharing the weights) live outside the
        # module tree, so the state dict and checkpoints are the same with and without compile
        self._compiled: dict[str, torch.nn.Module] = {}
        self._input_entropy: Tensor | None = None
        self._dataset_size: int | None = None
        self._noted_no_entropy = False
        self._checked_data = False
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

    # ------------------------------------------------------------------- compile
    def _network(self, name: str):
        """The network ``name`` to call: its compiled form in a training step when compiled, else
        the module itself. The first compiled call that fails switches compile off, with one line."""
        compiled = self._compiled.get(name)
        if compiled is None or not (self.training and torch.is_grad_enabled()):
            return getattr(self, name)
        return functools.partial(self._call_compiled, name, compiled)

    def _call_compiled(self, name: str, compiled, *args):
        try:
            return compiled(*args)
        except Exception as exc:  # torch.compile's failures are of many types (no C++ compiler, dynamo)
            self._compiled.clear()
            first_line = (str(exc).splitlines() or [""])[0][:160]
            rank_zero_warn(f"tcx: torch.compile of the {name} failed ({type(exc).__name__}: {first_line}); "
                           "training goes on without compile")
            return getattr(self, name)(*args)

    def compile_choice(self, trainer) -> tuple[bool, str]:
        """Whether ``compile`` turns on for a fit on ``trainer``, and why (the rule of ``compile``)."""
        setting = self.hparams.compile
        if setting is True or setting is False:
            return setting, f"compile={str(setting).lower()} was asked for"
        device = trainer.strategy.root_device
        if device.type != "cuda":
            return False, (f"auto: off on {device.type} (measured not to pay on CPUs, "
                           "benchmarks/results/train_throughput.md)")
        steps = trainer.estimated_stepping_batches
        if steps < COMPILE_AUTO_MIN_STEPS:
            return False, (f"auto: off for {steps} steps on {device.type} (< {COMPILE_AUTO_MIN_STEPS}, the "
                           "warm-up would not pay)")
        return True, f"auto: on, {device.type} and {steps} steps"

    @property
    def compiled(self) -> bool:
        """Whether the training steps run the compiled networks now."""
        return bool(self._compiled)

    def compile_networks(self, on: bool = True) -> None:
        """Train with ``torch.compile``d encoder and decoder (``on``) or the plain ones. A fit
        calls it at its start by the rule of ``compile``; a loop of your own may call it."""
        self._compiled = {}
        if on:
            self._compiled = {name: torch.compile(getattr(self, name)) for name in ("encoder", "decoder")}

    def on_fit_start(self) -> None:
        on, why = self.compile_choice(self.trainer)
        self.compile_networks(on)
        if on:  # off is the quiet default on the CPU; compile_choice says why
            rank_zero_info(f"tcx: torch.compile on ({why})")

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

    # ------------------------------------------------------------- data the model needs
    @property
    def input_entropy(self) -> Tensor | None:
        """``H(X_i)`` per input, ``[*input_shape]`` in nats, or ``None``: the constant that turns the
        ELBO into the CorEx bound (docs/math.md#pixel-entropy). Set by :meth:`attach_data`."""
        return self._input_entropy

    @property
    def dataset_size(self) -> int | None:
        """The number ``N`` of training examples, or ``None``: the dataset the aggregate-posterior
        estimators weight a batch against. Set by :meth:`attach_data`."""
        return self._dataset_size

    @dataset_size.setter
    def dataset_size(self, value: int | None) -> None:
        # `model.dataset_size = N` was the documented route before attach_data; same checks
        if value is None:
            self._dataset_size = None
        else:
            self.attach_data(dataset_size=value)

    def attach_data(self, *, input_entropy=None, dataset_size: int | None = None) -> None:
        """Give the model what it learns from its data besides ``input_shape``.

        The one route for it: :meth:`setup` calls it through :meth:`attach_datamodule` when the
        model is fitted with a datamodule; with plain dataloaders call it before ``trainer.fit``.
        An argument left ``None`` keeps what the model has.

        Args:
            input_entropy: ``H(X_i)`` of each input in nats, a tensor or array with one entry per
                input (``prod(input_shape)`` entries, e.g. ``[*input_shape]``), finite. With it the
                model logs ``*/corex_bound`` and ``*/weighted_corex_bound``
                (docs/math.md#pixel-entropy; ``tcx.estimators.binary_pixel_entropy(x)`` computes
                it from binary data).
            dataset_size: the number ``N`` of training examples (an integer >= 1), for the
                aggregate-posterior estimators (BetaTCVAE's loss, the hierarchical VAE's
                per-layer information).
        """
        if input_entropy is not None:
            h = torch.as_tensor(input_entropy).detach().to("cpu", torch.float32)
            if h.numel() != self.objective.num_inputs:
                raise TcxError(
                    f"input_entropy has {h.numel()} entries (shape {tuple(h.shape)}), the model's input has "
                    f"{self.objective.num_inputs} (input_shape={self.input_shape}): give H(X_i) per input, in nats"
                )
            if not torch.isfinite(h).all():
                raise TcxError(
                    f"input_entropy holds {int((~torch.isfinite(h)).sum())} NaN or inf entries: give a "
                    "finite H(X_i) per input, in nats"
                )
            self._input_entropy = h.reshape(self.input_shape)
        if dataset_size is not None:
            self._dataset_size = check_int("dataset_size (the number of training examples)", dataset_size, 1)

    def attach_datamodule(self, datamodule) -> None:
        """Read what ``datamodule`` declares (docs/design.md#the-datamodule-protocol) and hand it
        to :meth:`attach_data`: its ``dataset_size``, and, for the Bernoulli likelihood, its
        ``pixel_entropy(num_samples=input_entropy_samples)`` unless the model already has an
        :attr:`input_entropy` or ``input_entropy_samples`` is 0. Called by :meth:`setup`."""
        name = type(datamodule).__name__
        size = getattr(datamodule, "dataset_size", None)
        if size is not None:
            try:
                self.attach_data(dataset_size=size)
            except ValueError as exc:
                raise TcxError(f"the dataset_size declared by {name}: {exc}") from None
        samples = int(self.hparams.input_entropy_samples)
        entropy_fn = getattr(datamodule, "pixel_entropy", None)
        if self._input_entropy is None and samples > 0 and callable(entropy_fn) and self.hparams.likelihood == "bernoulli":
            try:
                self.attach_data(input_entropy=entropy_fn(num_samples=samples))
            except ValueError as exc:
                raise TcxError(f"{name}.pixel_entropy(num_samples={samples}): {exc}") from None

    def _attached_trainer(self) -> "pl.Trainer | None":
        # LightningModule.trainer raises RuntimeError when no Trainer is attached; Lightning has
        # no public "is attached" property, so ask and catch
        try:
            return self.trainer
        except RuntimeError:
            return None

    def setup(self, stage: str) -> None:
        """Attach what the Trainer's datamodule declares (:meth:`attach_datamodule`), then check
        that the family has what it needs: a family with :attr:`requires_dataset_size` fails here,
        at the start of fit, validate or test, never at a later step; a fit without
        :attr:`input_entropy` says once that the CorEx bound is not reported."""
        trainer = self._attached_trainer()
        datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
        if datamodule is not None:
            self.attach_datamodule(datamodule)
        if self.requires_dataset_size and self._dataset_size is None and stage != "predict":
            source = f"the datamodule ({type(datamodule).__name__}) does not declare it" if datamodule is not None \
                else "there is no datamodule to declare it"
            raise TcxError(
                f"{type(self).__name__} needs the number of training examples N (dataset_size) for its "
                f"aggregate-posterior estimators, and {source}: give the datamodule an attribute or property "
                "`dataset_size` (the size of its training set, as tcx.datamodules.DSprites does) and fit with "
                "`trainer.fit(model, datamodule=...)`, or call `model.attach_data(dataset_size=N)` before "
                "fitting with plain dataloaders"
            )
        if stage == "fit" and self._input_entropy is None and not self._noted_no_entropy:
            self._noted_no_entropy = True
            reason, how = "", "call model.attach_data(input_entropy=H) with H(X_i) per input in nats"
            if int(self.hparams.input_entropy_samples) == 0:
                reason = " (input_entropy_samples=0: the datamodule is not asked)"
            elif self.hparams.likelihood == "bernoulli":
                how = "fit with a datamodule that declares pixel_entropy(num_samples=..., seed=...), or " + how
            rank_zero_info(f"tcx: {type(self).__name__} has no input entropy H(X_i), so the CorEx bound "
                           f"(*/corex_bound) is not reported{reason}; to report it, {how}")

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

    def _log_terms(
        self,
        stage: str,
        terms: CorExTerms,
        extra: dict[str, Tensor],
        loss: Tensor,
        batch_size: int,
        reported: dict[str, Tensor] | None = None,
    ) -> None:
        on_step = stage == "train"
        if on_step and not self._logging_step():
            # the loggers only write every log_every_n_steps; building and handing Lightning
            # ~20 values per step costs a few percent of a CPU step for nothing in between
            self.log("train_elbo", terms.elbo.detach(), on_step=True, prog_bar=True, logger=False,
                     batch_size=batch_size)
            return
        logged = {f"{stage}/{k}": v.detach() for k, v in terms.scalars().items()}
        logged[f"{stage}/loss"] = loss.detach()
        for k, v in extra.items():
            logged[f"{stage}/{k}"] = v.detach()
        for k, v in (reported or {}).items():
            logged[f"{stage}/{k}"] = v.detach()
        rates = terms.rate_per_latent.detach()
        for j in range(rates.numel()):
            logged[f"{stage}/rate/z{j}"] = rates[j]
        anchors = self.anchor_indices
        if anchors:
            mask = torch.zeros(rates.numel(), dtype=torch.bool, device=rates.device)
            mask[list(anchors)] = True
            logged[f"{stage}/rate_anchors"] = rates[mask].sum()
            logged[f"{stage}/rate_others"] = rates[~mask].sum()
        self.log_dict(
            logged,
            on_step=on_step,
            on_epoch=not on_step,
            prog_bar=False,
            batch_size=batch_size,
            sync_dist=not on_step,
        )
        self.log(f"{stage}_elbo", terms.elbo.detach(), on_step=on_step, on_epoch=not on_step,
                 prog_bar=True, logger=False, batch_size=batch_size, sync_dist=not on_step)

    def _logging_step(self) -> bool:
        """Whether this training step's terms are logged: the steps the Trainer's loggers write
        (every ``log_every_n_steps``), and the last step of each epoch and of the run."""
        trainer = self._attached_trainer()
        if trainer is None:
            return True
        every = int(trainer.log_every_n_steps)
        if every == 0:
            return False
        if int(getattr(trainer, "accumulate_grad_batches", 1)) > 1:
            # the Trainer then counts optimizer steps, not batches, and no public attribute says
            # which batch it writes: build the terms on every batch (exact, a few % slower)
            return True
        # the Trainer's own rule: batch k (from 0, across epochs) is written when (k + 1) % every == 0;
        # a loader without a length gives no k: log every step
        k = getattr(self, "_batch_number", None)
        if k is None or (k + 1) % every == 0 or trainer.should_stop:
            return True
        # and the last step of every epoch and of the run, so the final values are always there
        last_of_run = 0 < trainer.max_steps <= self.global_step + 1
        return bool(trainer.is_last_batch) or last_of_run

    def check_finite(self, value: Tensor, terms: CorExTerms | None = None, what: str = "the loss",
                     x: Tensor | None = None) -> None:
        """Stop training with a clear error when ``value`` is not finite, before any update.

        The check itself costs one reduction per step; only when it fails is the batch ``x``
        looked at, so NaN or inf in the data, on any batch, is reported as the data's fault. The
        advice for a diverged loss depends on the precision in use."""
        if torch.isfinite(value).all():
            return
        if x is not None and not torch.isfinite(x).all():
            bad = int((~torch.isfinite(x)).sum())
            raise DivergedError(
                f"{type(self).__name__}: the data batch at global step {self.global_step} holds {bad} NaN or "
                f"inf values (x of shape {tuple(x.shape)}), so {what} is {value.item()}: the data, not the "
                "optimizer, is at fault. Fix or filter the datamodule's data (tcx.datamodules.check_datamodule "
                "checks a datamodule); no weights were updated."
            )
        detail = ""
        if terms is not None:
            detail = f" (reconstruction={terms.reconstruction.item():.4g}, rate={terms.rate.item():.4g} nats)"
        trainer = self._attached_trainer()
        precision = str(trainer.precision) if trainer is not None else "32-true"
        if "16" in precision:
            advice = (f"Lower the learning rate (--model.lr, now {self.hparams.lr:g}) or train in "
                      f"precision='32-true' (now {precision!r}).")
        else:
            advice = (f"Lower the learning rate (--model.lr, now {self.hparams.lr:g}) or clip the gradients "
                      f"(--trainer.gradient_clip_val 1.0); the precision ({precision!r}) is already full.")
        raise DivergedError(
            f"{type(self).__name__}: {what} is {value.item()} at global step {self.global_step}{detail}. "
            "Training stopped before the weights were updated; checkpoints already written are "
            f"intact. {advice}"
        )

    def training_terms(self, batch) -> StepOutput:
        """One training step up to the loss: check the data, :meth:`step_terms`, stop on a
        non-finite loss (before any update), log ``train/*``. ``training_step`` returns its loss; a
        family with manual optimization (FactorVAE) calls it and then steps its own optimizers."""
        x = self._unpack(batch)
        out = self.step_terms(x)
        self.check_finite(out.loss, out.terms, x=x)
        self._log_terms("train", out.terms, out.extra, out.loss, x.shape[0], out.reported)
        return out

    def training_step(self, batch, batch_idx: int) -> Tensor:
        return self.training_terms(batch).loss

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # this batch's index across epochs (from 0), for the Trainer's logging cadence
        per_epoch = self.trainer.num_training_batches
        self._batch_number = (self.current_epoch * int(per_epoch) + batch_idx) if math.isfinite(per_epoch) else None
        # the learning rate this step uses (the first optimizer's), so a scheduler is seen at work
        optimizers = self.trainer.optimizers
        if optimizers:
            self.log("train/lr", float(optimizers[0].param_groups[0]["lr"]), on_step=True, on_epoch=False)

    def _evaluation_terms(self, stage: str, batch) -> Tensor:
        # validation and test: the same step_terms, logged as epoch means under `stage`
        x = self._unpack(batch)
        out = self.step_terms(x)
        self._log_terms(stage, out.terms, out.extra, out.loss, x.shape[0], out.reported)
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

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # the family and the datamodule's class travel with the weights, so that
        # tcx.models.load_model (and `tcx traverse`) can rebuild any checkpoint on its own
        checkpoint[CLASS_KEY] = f"{type(self).__module__}.{type(self).__qualname__}"
        trainer = self._attached_trainer()
        dm = getattr(trainer, "datamodule", None) if trainer is not None else None
        if dm is not None:
            checkpoint[DATAMODULE_CLASS_KEY] = f"{type(dm).__module__}.{type(dm).__qualname__}"
        if trainer is not None:
            checkpoint[PRECISION_KEY] = str(trainer.precision)

    def make_optimizer(self, params):
        """The model's optimizer over ``params``: the ``optimizer`` argument's class, or
        ``Adam(lr, weight_decay)``."""
        spec = self.hparams.get("optimizer")
        if spec:
            from lightning.pytorch.cli import instantiate_class

            return instantiate_class(params, _class_spec(spec, "optimizer"))
        return torch.optim.Adam(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)

    def with_scheduler(self, optimizer):
        """``optimizer`` with the ``lr_scheduler`` argument's scheduler, in the form Lightning's
        ``configure_optimizers`` returns (the optimizer alone when there is none)."""
        spec = self.hparams.get("lr_scheduler")
        if not spec:
            return optimizer
        from lightning.pytorch.cli import instantiate_class

        scheduler = instantiate_class(optimizer, _class_spec(spec, "lr_scheduler"))
        config = {"scheduler": scheduler}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            config["monitor"] = getattr(scheduler, "monitor", None) or "val/elbo"
        return {"optimizer": optimizer, "lr_scheduler": config}

    def configure_optimizers(self):
        return self.with_scheduler(self.make_optimizer(self.parameters()))


def tcx_families() -> list[type]:
    """CorExVAE and every family defined in tcx's own model modules (``tcx.models.*``): the
    classes a checkpoint may name without ``trust``. Found from the class tree, so that this
    module never imports its own package (importing it has imported every family)."""
    found, todo = [CorExVAE], list(CorExVAE.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith("tcx.models.") and cls not in found:
            found.append(cls)
    return found


def _class_spec(spec, what: str) -> dict:
    """``spec`` as ``{"class_path", "init_args"}`` (a bare class path is accepted), or a one-line
    error naming the argument."""
    if isinstance(spec, str):
        spec = {"class_path": spec}
    if hasattr(spec, "as_dict"):
        spec = spec.as_dict()
    if not isinstance(spec, dict) or not isinstance(spec.get("class_path"), str):
        raise TcxError(f"{what} must be {{'class_path': 'torch.optim.X', 'init_args': {{...}}}}, got {spec!r}")
    return {"class_path": spec["class_path"], "init_args": dict(spec.get("init_args") or {})}


def load_model(path, map_location="cpu", trust: bool = False) -> CorExVAE:
    """Load a tcx checkpoint of any model family, in eval mode.

    The file is read as data (``torch.load(weights_only=True)``, :func:`tcx.safe_io.load_checkpoint`):
    a checkpoint holding pickled code is refused, never run. The family is read from the checkpoint
    (written by :meth:`CorExVAE.on_save_checkpoint`) and must be one of ``tcx.models``' families;
    ``trust=True`` also accepts any importable :class:`CorExVAE` subclass (a user's own family).
    A missing, truncated or foreign file gets an error that says which and what to do.
    """
    from pathlib import Path

    from tcx.safe_io import load_checkpoint, resolve_class

    p = Path(path)
    checkpoint = load_checkpoint(p, map_location=map_location)
    if "state_dict" not in checkpoint:
        raise TcxError(f"{str(p)!r} is not a Lightning checkpoint (no 'state_dict')")
    class_path = checkpoint.get(CLASS_KEY)
    if not class_path:
        raise TcxError(
            f"{str(p)!r} does not name its tcx model family ({CLASS_KEY!r} is missing): it was not "
            "written by a tcx model; load it with YourModel.load_from_checkpoint instead"
        )
    known = tcx_families()
    cls = resolve_class(class_path, known, CorExVAE, what="model family", source=f"checkpoint {str(p)!r}",
                        trust=trust)
    del checkpoint
    model = cls.load_from_checkpoint(p, map_location=map_location, weights_only=True)
    model.eval()
    return model
