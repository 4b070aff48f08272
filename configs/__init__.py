"""The packaged experiment configurations (``tcx.configs``): one LightningCLI YAML per experiment.

Installed with tcx, so ``tcx fit -c betavae_dsprites`` works from any directory; ``tcx configs``
lists them. See :mod:`tcx.cli.experiments` for how a name is resolved.
"""
