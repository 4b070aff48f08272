"""LightningModules, one file per model family, all on :class:`tcx.models.base.CorExVAE`."""

from tcx.models.anchor_vae import AnchorVAE
from tcx.models.annealed_vae import AnnealedVAE
from tcx.models.base import CorExVAE
from tcx.models.beta_tcvae import BetaTCVAE
from tcx.models.beta_vae import BetaVAE
from tcx.models.checkpoints import load_model, tcx_families
from tcx.models.dip_vae import DIPVAE
from tcx.models.factor_vae import FactorVAE
from tcx.models.hierarchical_vae import HierarchicalVAE
from tcx.models.vae import VAE

__all__ = [
    "load_model",
    "tcx_families",
    "CorExVAE",
    "VAE",
    "BetaVAE",
    "AnchorVAE",
    "HierarchicalVAE",
    "BetaTCVAE",
    "FactorVAE",
    "DIPVAE",
    "AnnealedVAE",
]
