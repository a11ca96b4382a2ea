"""``python -m helpers.training``: fine-tune from the command line (also under torchrun, accelerate)."""

from helpers.training.trainer import main

main()
