"""Shims that let imgaug 0.4.0 run on numpy 1.26 / scikit-image 0.26. Import before imgaug.

imgaug 0.4.0 (2020) still uses aliases that numpy 1.24 removed:
- ``np.bool``    (augmenters/meta.py SomeOf, augmentables/polys.py)
- ``np.complex`` (parameters.py: Power with negative bases, FrequencyNoise)
and the deprecated ``np.float``/``np.int``/``np.object`` in a few older code paths. We put the
builtins back under those names; ``np.sctypes`` (used at import time) still exists in 1.26.
Nothing here changes numeric results: the aliases always were the builtins.
"""
import warnings

import numpy as np

for _name, _value in (("bool", bool), ("complex", complex), ("float", float),
                      ("int", int), ("object", object), ("str", str)):
    if _name not in np.__dict__:
        setattr(np, _name, _value)

# imgaug triggers a few harmless deprecation warnings on import/use with current libraries
# (imageio v2 API, skimage transform estimate); keep bench/generator output readable.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"imgaug(\.|$)")
warnings.filterwarnings("ignore", category=FutureWarning, module=r"imgaug(\.|$)")
