"""Keras features newer than the oldest Keras kerasdl supports.

setup.cfg allows an older Keras than some features need; such a feature
raises one clear error there (``require``) instead of raising the floor
for everything. ``make test-floor`` runs the suite under the floor.
"""

import keras

# feature -> (the Keras release that brought it, what kerasdl needs it for)
NEWER_FEATURES = {
    "MultiOptimizer": (
        "3.15.0", "discriminative learning rates (discriminative_optimizer, "
        "fine_tune) need keras.optimizers.MultiOptimizer"),
    "batch_mean_activity_penalty": (
        "3.14.0", "`l2_per_rating` (a penalty averaged over the batch) "
        "needs activity regularization divided by the batch size"),
}


class KerasVersionError(RuntimeError):
    """A kerasdl feature needs a newer Keras than the one installed."""


def version_tuple(text):
    """``"3.15.1"`` -> ``(3, 15, 1)`` (suffixes such as ``rc1`` ignored).

    Example:

    >>> version_tuple("3.7.0"), version_tuple("3.15.0rc1")
    ((3, 7, 0), (3, 15, 0))
    """
    parts = []
    for piece in str(text).split(".")[:3]:
        digits = ""
        for c in piece:
            if not c.isdigit():
                break
            digits += c
        parts.append(int(digits or 0))
    return tuple(parts + [0] * (3 - len(parts)))


def require(feature, version=None):
    """Raises unless Keras ``version`` (the installed one by default) has
    ``feature`` (a key of ``NEWER_FEATURES``).

    Example:

    >>> require("MultiOptimizer", version="3.7.0")
    Traceback (most recent call last):
    ...
    kerasdl._versions.KerasVersionError: discriminative learning rates \
(discriminative_optimizer, fine_tune) need keras.optimizers.MultiOptimizer, \
which arrived in Keras 3.15.0; this is Keras 3.7.0. Upgrade with \
`pip install 'keras>=3.15.0'`.

    Raises:
        KerasVersionError: a ``RuntimeError`` naming the Keras needed, the
            one found and the fix.
    """
    needed, purpose = NEWER_FEATURES[feature]
    found = version or keras.__version__
    if version_tuple(found) < version_tuple(needed):
        raise KerasVersionError(
            f"{purpose}, which arrived in Keras {needed}; this is Keras "
            f"{found}. Upgrade with `pip install 'keras>={needed}'`.")
