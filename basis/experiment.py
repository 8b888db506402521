"""Old home of the image separation experiments: now :mod:`experiments.image_separation`.

The experiments layer sits above ``basis`` (docs: DESIGN layout), so this
module is only an alias kept for callers of the old path: it *is*
``experiments.image_separation`` (same module object, so attribute patches
reach the code). The pieces it held are ``experiments.mixtures`` (the mixture
draw), ``experiments.resume`` (the resume cache), ``experiments.progress``,
``experiments.batches`` (the batch runner) and ``experiments.outputs``.
"""

import sys

from experiments import image_separation

sys.modules[__name__] = image_separation
