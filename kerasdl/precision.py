"""Mixed precision: one call that picks the right Keras dtype policy."""

import keras

from kerasdl import _backend


def mixed_precision(enabled=True):
    """Sets the global Keras dtype policy for mixed-precision training.

    GPUs with bfloat16 units (NVIDIA compute capability 8.0 and newer: A100,
    H100, H200) and CPUs get ``"mixed_bfloat16"``; older GPUs get
    ``"mixed_float16"`` (Keras then scales the loss for you). Layers built
    after the call compute in the low precision and keep float32 weights.
    Call it before building the model.

    Example:

    >>> import kerasdl
    >>> kerasdl.mixed_precision() in ("mixed_bfloat16", "mixed_float16")
    True
    >>> kerasdl.mixed_precision(False)
    'float32'

    Args:
        enabled: bool. ``False`` restores the float32 policy.
            Defaults to ``True``.

    Returns:
        The name of the policy now in force.
    """
    if not isinstance(enabled, bool):
        raise TypeError(
            f"`enabled` must be True or False. Received: enabled={enabled!r}."
        )
    policy = policy_for_device() if enabled else "float32"
    keras.config.set_dtype_policy(policy)
    return policy


def policy_for_device(device=None):
    """Returns the mixed policy name suited to ``device``.

    Args:
        device: dict as returned by ``kerasdl._backend.accelerator()``.
            Defaults to the active backend's first accelerator.
    """
    device = device or _backend.accelerator()
    if device["kind"] != "gpu":
        return "mixed_bfloat16"
    cc = device.get("compute_capability")
    if cc is not None and tuple(cc) < (8, 0):
        return "mixed_float16"
    return "mixed_bfloat16"
