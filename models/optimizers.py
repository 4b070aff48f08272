"""The optimizer and learning-rate scheduler of tcx's models, from their ``optimizer`` and
``lr_scheduler`` arguments.

:class:`Optimizers` is the part of :class:`tcx.models.base.CorExVAE` that builds them: the
``optimizer`` argument's class (``{"class_path", "init_args"}``, what the ``tcx`` CLI's
``--optimizer`` sets) or ``Adam(lr, weight_decay)``, and the ``lr_scheduler`` argument's scheduler
in the form Lightning's ``configure_optimizers`` returns. A family with several optimizers
(FactorVAE) calls :meth:`Optimizers.make_optimizer` and :meth:`Optimizers.with_scheduler` itself.
"""

from __future__ import annotations

import torch

from tcx.errors import TcxError

__all__ = ["Optimizers", "class_spec"]


def class_spec(spec, what: str) -> dict:
    """``spec`` as ``{"class_path", "init_args"}`` (a bare class path is accepted), or a one-line
    error naming the argument ``what``."""
    if isinstance(spec, str):
        spec = {"class_path": spec}
    if hasattr(spec, "as_dict"):
        spec = spec.as_dict()
    if not isinstance(spec, dict) or not isinstance(spec.get("class_path"), str):
        raise TcxError(f"{what} must be {{'class_path': 'torch.optim.X', 'init_args': {{...}}}}, got {spec!r}")
    return {"class_path": spec["class_path"], "init_args": dict(spec.get("init_args") or {})}


class Optimizers:
    """``configure_optimizers`` from the hyperparameters ``optimizer``, ``lr_scheduler``, ``lr``
    and ``weight_decay``."""

    def make_optimizer(self, params):
        """The model's optimizer over ``params``: the ``optimizer`` argument's class, or
        ``Adam(lr, weight_decay)``."""
        spec = self.hparams.get("optimizer")
        if spec:
            from lightning.pytorch.cli import instantiate_class

            return instantiate_class(params, class_spec(spec, "optimizer"))
        return torch.optim.Adam(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)

    def with_scheduler(self, optimizer):
        """``optimizer`` with the ``lr_scheduler`` argument's scheduler, in the form Lightning's
        ``configure_optimizers`` returns (the optimizer alone when there is none)."""
        spec = self.hparams.get("lr_scheduler")
        if not spec:
            return optimizer
        from lightning.pytorch.cli import instantiate_class

        scheduler = instantiate_class(optimizer, class_spec(spec, "lr_scheduler"))
        config = {"scheduler": scheduler}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            config["monitor"] = getattr(scheduler, "monitor", None) or "val/elbo"
        return {"optimizer": optimizer, "lr_scheduler": config}

    def configure_optimizers(self):
        return self.with_scheduler(self.make_optimizer(self.parameters()))
