"""``python -m loader`` runs the command line."""

from .cli import console

console()
