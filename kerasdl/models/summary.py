"""Parameter counts as model.summary shows them."""

import math


def param_counts(model):
    """Returns ``(total, trainable, non_trainable)`` parameter counts.

    Counts as ``model.summary()`` does: BatchNormalization has 4 weights
    per channel, 2 of them (moving mean and variance) non-trainable.

    Example:

    >>> from kerasdl.models import linear_bn
    >>> param_counts(linear_bn((224, 224, 3), 10))
    (1505302, 1505296, 6)

    Args:
        model: keras.Model. A built model.

    Returns:
        A tuple of three ints.
    """
    if not getattr(model, "built", False):
        raise ValueError(
            f"Model {model.name!r} is not built yet, so it has no "
            f"parameters to count. Build it first (give it a keras.Input "
            f"or call model.build(input_shape))."
        )
    trainable = _count(model.trainable_weights)
    non_trainable = _count(model.non_trainable_weights)
    return trainable + non_trainable, trainable, non_trainable


def _count(weights):
    seen = set()
    total = 0
    for w in weights:
        if id(w) in seen:
            continue
        seen.add(id(w))
        total += math.prod(w.shape)
    return int(total)
