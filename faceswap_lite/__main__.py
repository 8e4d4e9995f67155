"""``python -m faceswap_lite`` runs the CLI (what torchrun's ``-m`` uses)."""

from .cli import main

main(prog_name="faceswap-lite")
