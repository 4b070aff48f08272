"""``python -m tcx.cli`` runs the ``tcx`` command."""

from tcx.cli.command import main

main()
