"""beta-TCVAE (R. T. Q. Chen, X. Li, R. Grosse, D. Duvenaud, "Isolating Sources of Disentanglement
in Variational Autoencoders", NeurIPS 2018, section 3, eq. 2 and section 4).

The rate splits, in expectation over the data, into index-code MI ``I(Z;X)``, total correlation
``TC(Z)`` and dimension-wise KL, and beta-TCVAE weights them separately:

    loss = -E log q(x|z) + alpha * I(Z;X) + beta * TC(Z) + gamma * sum_j KL(q(z_j) || r_j)

Each term is a Monte-Carlo estimate on the batch, with the aggregate posterior estimated by
:func:`tcx.estimators.aggregate_information`; with ``alpha = beta = gamma = 1`` the loss is the
negative ELBO (with a sampled KL). The mathematics: docs/math.md#beta-tcvae.

Details: docs/models.md#modelsbeta_tcvaepy-betatcvae
"""

from __future__ import annotations


from torch import Tensor

from tcx.validation import check_choice, check_real
from tcx.distributions import DiagonalGaussian
from tcx.estimators import aggregate_information
from tcx.models.base import CorExVAE
from tcx.objective import CorExTerms

__all__ = ["BetaTCVAE", "ESTIMATORS"]

ESTIMATORS = ("mss", "mws")


class BetaTCVAE(CorExVAE):
    """Chen et al. 2018's beta-TCVAE: a weight on each term of the rate's decomposition.

    Args:
        alpha: weight on the index-code mutual information ``I(Z;X)`` (1 in the paper).
        beta: weight on the total correlation ``TC(Z)`` (6 in the paper's dSprites experiments).
        gamma: weight on the dimension-wise KL ``sum_j KL(q(z_j) || r_j)`` (1 in the paper).
        estimator: how ``log q(z)`` and ``log q(z_j)`` are estimated from the batch: ``'mss'``
            (default; minibatch stratified sampling, consistent: the logged terms are in nats) or
            ``'mws'`` (minibatch weighted sampling, the paper's; a biased lower bound whose logged
            terms are offset by up to ``log N`` each: docs/math.md#beta-tcvae).
        **kwargs: the arguments of ``CorExVAE`` (``models/base.py``).

    Needs the number ``N`` of training examples (``dataset_size``: from the datamodule at
    ``setup``, or ``model.attach_data(dataset_size=N)``); without it a run fails at ``setup``. The
    CorEx rate weights are 0: the rate enters through the three weighted terms, logged as
    ``*/mutual_info``, ``*/total_correlation``, ``*/dimension_wise_kl`` (unweighted) and
    ``*/loss/<term>`` (weighted), in nats.
    """

    requires_dataset_size = True

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 6.0,
        gamma: float = 1.0,
        estimator: str = "mss",
        **kwargs,
    ) -> None:
        for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
            check_real(name, value, 0.0)
        key = check_choice(
            "estimator", estimator, ESTIMATORS, ignore_case=True,
            hint="'mss' is minibatch stratified sampling, 'mws' minibatch weighted sampling",
        )
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.gamma = float(gamma)
        self.estimator = key
        super().__init__(**kwargs)

    def latent_weights(self) -> float:
        return 0.0

    def extra_loss(self, x: Tensor, posterior: DiagonalGaussian, z: Tensor, terms: CorExTerms) -> dict[str, Tensor]:
        if self.dataset_size is None:
            raise RuntimeError(
                "BetaTCVAE.dataset_size is not set: fit the model with a datamodule that declares "
                "`dataset_size`, or call `model.attach_data(dataset_size=N)` (N the number of training "
                "examples) before computing the loss"
            )
        info = aggregate_information(posterior.mean, posterior.log_var, self.dataset_size, method=self.estimator, z=z)
        mutual_info = info["mutual_info"].float()
        total_correlation = info["total_correlation"].float()
        dimension_wise_kl = info["dimension_wise_kl"].sum().float()
        self.report("mutual_info", mutual_info)
        self.report("total_correlation", total_correlation)
        self.report("dimension_wise_kl", dimension_wise_kl)
        return {
            "loss/mutual_info": self.alpha * mutual_info,
            "loss/total_correlation": self.beta * total_correlation,
            "loss/dimension_wise_kl": self.gamma * dimension_wise_kl,
        }
