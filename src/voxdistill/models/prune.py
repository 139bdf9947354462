"""Moved to `voxdistill.distill.prune`: pruning measures neurons along the labels training uses."""

from voxdistill.distill.prune import prune_student  # re-exported for the CLI until it imports from voxdistill.distill.prune
