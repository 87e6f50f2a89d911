"""``python -m l4plan`` runs the command line."""

from l4plan.cli import main

main()
