"""Reading and assigning an optimizer's learning rates (one per base
optimizer: loss scaling, gradient tracking and ``MultiOptimizer`` are
unwrapped). Schedules that change the rate at every step do it on the
device instead (``_stepping``).
"""

import keras
import numpy as np

from kerasdl import _versions
from kerasdl._versions import KerasVersionError  # noqa: F401


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


def keras_feature(name, version=None):
    """``keras.optimizers.<name>``, or one clear ``KerasVersionError`` on
    a Keras older than the release that brought it (``version``: the
    Keras version to check, the installed one by default)."""
    _versions.require(name, version)
    return getattr(keras.optimizers, name)


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
