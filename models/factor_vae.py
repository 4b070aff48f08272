"""FactorVAE (H. Kim, A. Mnih, "Disentangling by Factorising", ICML 2018, section 3).

The VAE's loss plus ``gamma`` times a density-ratio estimate of the total correlation
``TC(Z) = KL(q(z) || prod_j q(z_j))`` (docs/math.md#total-correlation):

    loss = -ELBO + gamma * E_q[ log D(z) / (1 - D(z)) ]

where the discriminator ``D`` tells codes ``z ~ q(z)`` from codes of the product of marginals
(each latent permuted independently across a batch, :func:`tcx.tc_penalties.permute_dims`). The
discriminator is trained alongside, with its own optimizer, to minimize its cross-entropy
(algorithm 2 of the paper); the model therefore uses Lightning's manual optimization.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from tcx.distributions import DiagonalGaussian
from tcx.models.base import CorExVAE
from tcx.models.guard import check_finite
from tcx.objective import CorExTerms
from tcx.tc_penalties import density_ratio_tc, discriminator_loss, permute_dims
from tcx.validation import check_int, check_length, check_real

__all__ = ["FactorVAE", "Discriminator"]


class Discriminator(nn.Module):
    """Kim and Mnih 2018's discriminator (appendix, table 2): fully connected layers with leaky
    ReLU (slope 0.2) from ``latent_dim`` codes to 2 logits (class 0: ``q(z)``, class 1: the
    product of its marginals)."""

    def __init__(self, latent_dim: int, hidden_dims: Sequence[int] = (1000,) * 6) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = int(latent_dim)
        for h in hidden_dims:
            layers += [nn.Linear(prev, int(h)), nn.LeakyReLU(0.2)]
            prev = int(h)
        layers.append(nn.Linear(prev, 2))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class FactorVAE(CorExVAE):
    """Kim and Mnih 2018's FactorVAE.

    Args:
        gamma: the weight on the total-correlation estimate (>= 0). 40 by default, inside the range
            disentanglement_lib sweeps for FactorVAE on dSprites (10, 20, 30, 40, 50, 100).
        discriminator_hidden_dims: the discriminator's hidden layer sizes (six layers of 1000, as in
            the paper).
        discriminator_lr: the discriminator's Adam learning rate (1e-4, as in the paper).
        discriminator_betas: the discriminator's Adam betas ((0.5, 0.9), as in the paper).
        **kwargs: the arguments of :class:`tcx.models.base.CorExVAE` (``lr`` and ``weight_decay``
            are the VAE's optimizer; all rate weights are 1).

    One training step (manual optimization; the base's :meth:`training_terms` computes, guards
    and logs the VAE's loss): the VAE's encoder and decoder take one step on
    ``-ELBO + gamma * TC`` with the discriminator frozen, then the discriminator takes one step
    on its cross-entropy between the codes of the first half of the batch (samples of ``q(z)``)
    and the permuted codes of the second half (samples of ``prod_j q(z_j)``), both detached: the
    two halves play the paper's two independent batches. Batches need at least 2 rows.

    Logged besides the base's terms: ``*/total_correlation`` (the discriminator's estimate of
    ``TC(Z)`` in nats), ``*/loss/total_correlation`` (``gamma`` times it, added to the loss),
    ``train/discriminator_loss`` (cross-entropy in nats) and ``train/discriminator_accuracy``.

    Note Lightning's rule for manual optimization: ``trainer.global_step`` counts the steps of both
    optimizers, so ``max_steps=N`` stops after ``N / 2`` training batches.
    """

    ARCHITECTURE = ("discriminator_hidden_dims",)

    def __init__(
        self,
        gamma: float = 40.0,
        discriminator_hidden_dims: Sequence[int] = (1000, 1000, 1000, 1000, 1000, 1000),
        discriminator_lr: float = 1e-4,
        discriminator_betas: Sequence[float] = (0.5, 0.9),
        **kwargs,
    ) -> None:
        check_real("gamma", gamma, 0)
        hidden = tuple(check_int(f"discriminator_hidden_dims[{i}]", h, 1) for i, h in enumerate(discriminator_hidden_dims))
        check_real("discriminator_lr", discriminator_lr, 0, low_open=True)
        check_length("discriminator_betas", tuple(discriminator_betas), 2, "Adam moments", hint="two numbers in [0, 1)")
        betas = tuple(check_real(f"discriminator_betas[{i}]", b, 0, 1, high_open=True)
                      for i, b in enumerate(discriminator_betas))
        self.gamma = float(gamma)
        self._discriminator_lr = float(discriminator_lr)
        self._discriminator_betas = betas
        super().__init__(**kwargs)
        self.discriminator = Discriminator(self.latent_dim, hidden)
        self.automatic_optimization = False

    def extra_loss(self, x: Tensor, posterior: DiagonalGaussian, z: Tensor, terms: CorExTerms) -> dict[str, Tensor]:
        tc = density_ratio_tc(self.discriminator(z))
        self.report("total_correlation", tc)
        return {"loss/total_correlation": self.gamma * tc}

    def training_step(self, batch, batch_idx: int) -> Tensor:
        opt_vae, opt_disc = self.optimizers()
        # Under DDP (find_unused_parameters=False, Lightning's default) the reducer expects a gradient
        # for every parameter in every backward pass: nothing is frozen there, and the
        # discriminator's step adds a zero term of every VAE parameter (the discriminator's
        # gradients from the VAE's step are discarded by opt_disc.zero_grad()). The updates are the
        # one-process ones.
        ddp = int(getattr(self.trainer, "world_size", 1) or 1) > 1
        # the VAE's step: the discriminator is frozen (requires_grad off), z carries the gradient
        if not ddp:
            self.toggle_optimizer(opt_vae)
        out = self.training_terms(batch)
        opt_vae.zero_grad()
        self.manual_backward(out.loss)
        opt_vae.step()
        if not ddp:
            self.untoggle_optimizer(opt_vae)

        # the discriminator's step, on codes that no longer carry the VAE's graph
        z = out.z.detach()
        check_int(
            "FactorVAE's batch size", int(z.shape[0]), 2,
            hint="the discriminator compares codes of one half with permuted codes of the other: raise the batch size",
        )
        half = z.shape[0] // 2
        if not ddp:
            self.toggle_optimizer(opt_disc)
        logits_joint = self.discriminator(z[:half])
        logits_perm = self.discriminator(permute_dims(z[half:]))
        d_loss = discriminator_loss(logits_joint, logits_perm)
        check_finite(self, d_loss, what="the discriminator's loss")
        opt_disc.zero_grad()
        if ddp:
            vae = [p for name, p in self.named_parameters() if not name.startswith("discriminator.") and p.requires_grad]
            self.manual_backward(d_loss + 0.0 * sum(p.sum() for p in vae))
        else:
            self.manual_backward(d_loss)
        opt_disc.step()
        if not ddp:
            self.untoggle_optimizer(opt_disc)

        if self._log_step:  # on the steps the loggers write, as the base's terms (models/step_logging.py)
            with torch.no_grad():
                correct = (logits_joint.argmax(1) == 0).float().sum() + (logits_perm.argmax(1) == 1).float().sum()
                accuracy = correct / z.shape[0]
            self.log_dict(
                {"train/discriminator_loss": d_loss.detach(), "train/discriminator_accuracy": accuracy},
                on_step=True, on_epoch=False, batch_size=z.shape[0],
            )
        return out.loss.detach()

    def configure_optimizers(self):
        # the VAE's optimizer (and its scheduler) as every family's: Adam(lr) or the `optimizer`
        # argument; the discriminator keeps the paper's Adam
        vae_params = [p for name, p in self.named_parameters() if not name.startswith("discriminator.")]
        opt_vae = self.make_optimizer(vae_params)
        opt_disc = torch.optim.Adam(
            self.discriminator.parameters(), lr=self._discriminator_lr, betas=self._discriminator_betas
        )
        configured = self.with_scheduler(opt_vae)
        if configured is opt_vae:
            return [opt_vae, opt_disc]
        return [opt_vae, opt_disc], [configured["lr_scheduler"]]

    def on_train_epoch_end(self) -> None:
        # manual optimization: Lightning leaves the scheduler to the model; stepped once an
        # epoch, as Lightning steps every other family's (its default interval)
        scheduler = self.lr_schedulers()
        if scheduler is None:
            return
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            monitor = getattr(scheduler, "monitor", None) or "val/elbo"
            value = self.trainer.callback_metrics.get(monitor)
            if value is not None:
                scheduler.step(value)
        else:
            scheduler.step()
