"""tcx.datamodules: LightningDataModules with ground-truth factors (DESIGN.md, "How data flows")."""

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

__all__ = [
    "DSprites",
    "DSpritesDataset",
    "EpochSubsetSampler",
    "RenderedBatch",
    "collate_rendered",
    "factor_values",
    "factors_to_index",
    "index_to_factors",
    "render_dsprites",
]
