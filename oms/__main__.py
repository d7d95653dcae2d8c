"""``python -m oms`` runs the command line."""

from oms.cli import main

main()
