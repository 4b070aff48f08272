"""What a tcx model learns from its data besides ``input_shape``: one route, ``attach_data``.

:class:`DataAttachment` is the part of :class:`tcx.models.base.CorExVAE` that holds
``input_entropy`` (``H(X_i)`` per input in nats, which turns on the CorEx bound) and
``dataset_size`` (the ``N`` of the aggregate-posterior estimators), checks each where it comes
in, reads what a datamodule declares (``attach_datamodule``), and at ``setup`` fails early for a
family that needs what it lacks. :func:`attached_trainer` is the one "is a Trainer attached" test.

Details: docs/models.md#modelsdatapy-what-a-model-learns-from-its-data
"""

from __future__ import annotations

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from tcx.errors import TcxError
from tcx.validation import check_int

__all__ = ["DataAttachment", "attached_trainer"]


def attached_trainer(module):
    """``module.trainer``, or ``None`` when no Trainer is attached."""
    # LightningModule.trainer raises RuntimeError when no Trainer is attached; Lightning has no
    # public "is attached" property, so ask and catch
    try:
        return module.trainer
    except RuntimeError:
        return None


class DataAttachment:
    """``input_entropy`` and ``dataset_size`` of a model with ``input_shape``, ``objective``
    (its ``num_inputs``) and the hyperparameters ``likelihood`` and ``input_entropy_samples``."""

    #: whether the family cannot compute its loss without :attr:`dataset_size` (BetaTCVAE)
    requires_dataset_size: bool = False

    _input_entropy: Tensor | None = None
    _dataset_size: int | None = None
    _noted_no_entropy: bool = False

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

    def setup(self, stage: str) -> None:
        """Attach what the Trainer's datamodule declares (:meth:`attach_datamodule`), then check
        that the family has what it needs: a family with :attr:`requires_dataset_size` fails here,
        at the start of fit, validate or test, never at a later step; a fit without
        :attr:`input_entropy` says once that the CorEx bound is not reported."""
        trainer = attached_trainer(self)
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
