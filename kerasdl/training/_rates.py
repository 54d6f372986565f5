"""Reading and assigning an optimizer's learning rates (one per base
optimizer: loss scaling, gradient tracking and ``MultiOptimizer`` are
unwrapped). Schedules that change the rate at every step do it on the
device instead (``_stepping``).
"""

import keras
import numpy as np


def base_optimizers(optimizer):
    """The optimizers that own learning rates: unwraps loss scaling,
    gradient tracking and ``MultiOptimizer`` (one per group)."""
    if optimizer is None:
        raise ValueError("The model has no optimizer: call model.compile("
                         "optimizer=..., loss=...) first.")
    inner = getattr(optimizer, "inner_optimizer", None)
    if inner is not None:
        return base_optimizers(inner)
    multi = getattr(keras.optimizers, "MultiOptimizer", None)
    if multi is not None and isinstance(optimizer, multi):
        return list(optimizer.optimizers)
    return [optimizer]


# Keras features newer than the oldest Keras kerasdl supports: the
# release that brought each one and what kerasdl needs it for.
NEWER_FEATURES = {
    "MultiOptimizer": ("3.15.0", "discriminative learning rates "
                       "(discriminative_optimizer, fine_tune)"),
}


def _version_tuple(text):
    parts = []
    for piece in str(text).split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts + [0] * (3 - len(parts)))


class KerasVersionError(RuntimeError):
    """A kerasdl feature needs a newer Keras than the one installed."""


def keras_feature(name, version=None):
    """``keras.optimizers.<name>``, or one clear error on a Keras older
    than the release that brought it (``version``: the Keras version to
    check, the installed one by default).

    Raises:
        KerasVersionError: a ``RuntimeError`` naming the Keras needed, the
            one found and the fix.
    """
    needed, purpose = NEWER_FEATURES[name]
    found = version or keras.__version__
    value = getattr(keras.optimizers, name, None)
    if _version_tuple(found) < _version_tuple(needed) or value is None:
        raise KerasVersionError(
            f"{purpose} need keras.optimizers.{name}, which arrived in "
            f"Keras {needed}; this is Keras {found}. Upgrade with "
            f"`pip install 'keras>={needed}'`, or train with one learning "
            f"rate for the whole model (fit_one_cycle).")
    return value


def _check_settable(opt):
    lr = opt.learning_rate
    if not isinstance(lr, keras.Variable):
        raise TypeError(
            f"Optimizer {opt.name!r} was compiled with a learning-rate "
            f"schedule ({_schedule_name(opt)}), so a callback "
            f"cannot assign its rate. Compile with a float learning_rate.")
    return lr


def _schedule_name(opt):
    config = opt.get_config().get("learning_rate")
    if isinstance(config, dict):
        return config.get("class_name", "a schedule")
    return type(config).__name__


def get_lrs(optimizer):
    """Current learning rate of each base optimizer, as floats."""
    return [float(np.asarray(_check_settable(o).numpy()))
            for o in base_optimizers(optimizer)]


def set_lrs(optimizer, values):
    """Assigns one rate per base optimizer (a float applies to all)."""
    opts = base_optimizers(optimizer)
    if np.ndim(values) == 0:
        values = [values] * len(opts)
    if len(values) != len(opts):
        raise ValueError(
            f"Expected {len(opts)} learning rates (one per optimizer "
            f"group), got {len(values)}.")
    for opt, value in zip(opts, values):
        _check_settable(opt).assign(float(value))


def check_steps_per_execution(model, who):
    """A callback that needs every step's loss needs one hook per step."""
    spe = int(getattr(model, "steps_per_execution", 1) or 1)
    if spe != 1:
        raise ValueError(
            f"{who} records the loss of every step, but the model was "
            f"compiled with steps_per_execution={spe}, which reports one "
            f"loss per {spe} steps. Compile with steps_per_execution=1 for "
            f"the sweep (schedules such as fit_one_cycle work with any "
            f"value).")
