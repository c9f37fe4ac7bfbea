"""``python -m rlgan`` runs the command line (also under ``torchrun``)."""

import sys

from rlgan.cli import main

sys.exit(main())
