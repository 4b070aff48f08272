"""``python -m tcx.cli`` runs the ``tcx`` command."""

from tcx.cli.launch import main

main()
