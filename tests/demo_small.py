"""``voxdistill`` whose demo preset is test_pipeline's small corpus, so that a test can run the demo's
own command line in a subprocess in seconds: ``python -m tests.demo_small demo --out ...``."""

from __future__ import annotations

import sys

from tests.test_pipeline import SMALL, SMALL_REAL
from voxdistill.cli import main
from voxdistill.data.corpus import PRESETS
from voxdistill.pipeline import REAL_MIXES

if __name__ == "__main__":
    PRESETS["demo"], REAL_MIXES["demo"] = SMALL, SMALL_REAL
    sys.exit(main())
