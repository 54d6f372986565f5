"""Features computed once, stored, and read back: one package that owns
its on-disk format.

- ``compute``: ``precompute(model, data, path)``, the model cut at its
  feature layer and run over every image (and augmented passes).
- ``store``: the folder's format, the only code that writes it (the
  manifest, the ``.partial`` work folder, the commit order).
- ``reader``: ``FeatureSet`` / ``load_features`` (memory-mapped, checked)
  and ``FeatureBatches`` (shuffled batches read in blocks).
"""

from kerasdl.features.compute import precompute
from kerasdl.features.reader import FeatureBatches
from kerasdl.features.reader import FeatureSet
from kerasdl.features.reader import load_features

__all__ = ["FeatureBatches", "FeatureSet", "load_features", "precompute"]
