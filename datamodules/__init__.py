"""tcx.datamodules: LightningDataModules with ground-truth factors (docs/design.md#the-datamodule-protocol).

What a datamodule must declare to work with tcx, and ``check_datamodule`` that says what one
lacks: ``tcx.datamodules.protocol``.
"""

from tcx.datamodules.arrays import Arrays
from tcx.datamodules.celeba import CelebA
from tcx.datamodules.checkpoints import load_datamodule, tcx_datamodules
from tcx.datamodules.dsprites import (
    DSprites,
    DSpritesDataset,
    EpochSubsetSampler,
    RenderedBatch,
    collate_rendered,
    factor_values,
    factors_to_index,
    index_to_factors,
    render_dsprites,
)
from tcx.datamodules.dsprites_file import DSpritesFile
from tcx.datamodules.mnist import MNIST
from tcx.datamodules.protocol import DataModuleError, DataModuleReport, check_datamodule
from tcx.datamodules.shapes3d import Shapes3D
from tcx.datamodules.synthetic import SyntheticCorEx

__all__ = [
    "Arrays",
    "CelebA",
    "DSprites",
    "DSpritesDataset",
    "DSpritesFile",
    "DataModuleError",
    "DataModuleReport",
    "EpochSubsetSampler",
    "MNIST",
    "RenderedBatch",
    "Shapes3D",
    "SyntheticCorEx",
    "check_datamodule",
    "collate_rendered",
    "factor_values",
    "factors_to_index",
    "index_to_factors",
    "load_datamodule",
    "render_dsprites",
    "tcx_datamodules",
]
