"""LightningModules, one file per model family, all on :class:`tcx.models.base.CorExVAE`."""

from tcx.models.anchor_vae import AnchorVAE
from tcx.models.base import CorExVAE, load_model
from tcx.models.beta_vae import BetaVAE
from tcx.models.vae import VAE

__all__ = ["load_model", "CorExVAE", "VAE", "BetaVAE", "AnchorVAE"]
