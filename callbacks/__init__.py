"""tcx.callbacks: Lightning callbacks that read a model through information and pictures.

- ``DisentanglementMetrics`` (``metrics``): disentanglement scores of the posterior means.
- ``InputExplanation`` (``explanation``): which inputs each latent explains, ``input_information.csv``.
- ``InformationDiagnostics`` (``diagnostics``): rate and ``I(Z_j;X)`` per latent, ``TC(Z)``, ``I(Z;X)``.
- ``LatentTraversal``, ``Reconstructions``, ``Samples`` (``media``): traversals, reconstructions, samples.
- ``QualityMetrics`` (``quality``): information, interpretability, sample quality, likelihood.
- ``PosteriorWriter`` (``predictions``): ``tcx predict`` writes the posteriors to ``predictions.npz``.
- ``ModelSummary`` (``model_summary``): Lightning's model summary without FLOPs zeros.
- ``RunGuard``, ``DiskFullMessageIO``, ``guard_trainer`` (``run_guard``): nothing lost, exact resume.
- ``RunSummary`` (``run_summary``): the end-of-run table and ``summary.json``; ``media_files(trainer)``.

``media_logging``, ``encoding``, ``pictures`` and ``wandb_runs`` (bounded W&B starts) serve them.

Details: docs/callbacks.md#callbacks__init__py-the-tcxcallbacks-package
"""

from tcx.callbacks.diagnostics import InformationDiagnostics
from tcx.callbacks.explanation import InputExplanation
from tcx.callbacks.metrics import DisentanglementMetrics
from tcx.callbacks.media import LatentTraversal, MediaCallback, Reconstructions, Samples, media_files
from tcx.callbacks.media_logging import log_media, media_dir, run_dir
from tcx.callbacks.wandb_runs import settle_wandb_mode, start_wandb_runs, wandb_loggers
from tcx.callbacks.model_summary import ModelSummary
from tcx.callbacks.predictions import PosteriorWriter
from tcx.callbacks.quality import QualityMetrics
from tcx.callbacks.run_guard import DiskFullMessageIO, RunGuard, guard_trainer
from tcx.callbacks.run_summary import RunSummary

__all__ = [
    "DisentanglementMetrics",
    "InformationDiagnostics",
    "InputExplanation",
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
    "wandb_loggers",
    "RunGuard",
    "DiskFullMessageIO",
    "guard_trainer",
    "RunSummary",
    "start_wandb_runs",
    "settle_wandb_mode",
]
