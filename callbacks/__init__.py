"""tcx.callbacks: Lightning callbacks that read a model through information and pictures.

- ``DisentanglementMetrics``: MIG, DCI, SAP, modularity/explicitness, IRS, unsupervised scores,
  FactorVAE and BetaVAE scores of the posterior means (``tcx.callbacks.metrics``).
- ``InformationDiagnostics``: rate and ``I(Z_j;X)`` per latent, ``TC(Z)``, ``I(Z;X)``, the
  latent-by-factor mutual information (``tcx.callbacks.diagnostics``).
- ``LatentTraversal``, ``Reconstructions``, ``Samples``: traversal grids and GIFs, inputs beside
  reconstructions, prior samples and anchor-held samples (``tcx.callbacks.media``).
- ``QualityMetrics``: sample quality in tcx's own classifier's features, linear probes, MI on
  posterior samples and means, intervention agreement, IWAE (``tcx.callbacks.quality``).
- ``PosteriorWriter``: ``tcx predict`` writes the posterior means and log-variances (and labels or
  factors) of the predicted split to ``predictions.npz`` (``tcx.callbacks.predictions``).
- ``ModelSummary``: Lightning's model summary without a FLOPs column of zeros
  (``tcx.callbacks.model_summary``).
- ``media_files(trainer)``: the latest picture file of every key, after fit.

One module per job: ``media_logging`` sends pictures to the loggers and files, ``encoding`` runs
the model on a fixed sample (and holds the encodings the callbacks share), ``pictures`` builds the
pictures (also for ``tcx traverse``, which makes them from a checkpoint), and ``media``,
``diagnostics``, ``metrics``, ``quality`` are the callbacks.
"""

from tcx.callbacks.diagnostics import InformationDiagnostics
from tcx.callbacks.metrics import DisentanglementMetrics
from tcx.callbacks.media import LatentTraversal, MediaCallback, Reconstructions, Samples, media_files
from tcx.callbacks.media_logging import log_media, media_dir, run_dir
from tcx.callbacks.model_summary import ModelSummary
from tcx.callbacks.predictions import PosteriorWriter
from tcx.callbacks.quality import QualityMetrics

__all__ = [
    "DisentanglementMetrics",
    "InformationDiagnostics",
    "LatentTraversal",
    "Reconstructions",
    "Samples",
    "QualityMetrics",
    "ModelSummary",
    "PosteriorWriter",
    "MediaCallback",
    "log_media",
    "media_dir",
    "run_dir",
    "media_files",
]
