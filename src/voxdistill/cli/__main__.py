"""``python -m voxdistill.cli``, as ``accelerate launch -m voxdistill.cli`` and torchrun run it."""

import sys

from voxdistill.cli import main

sys.exit(main())
