"""Reading and assigning an optimizer's learning rate and momentum.

Callbacks change hyper-parameters by assigning variables that the
compiled train step reads, so nothing is retraced per step. Keras keeps
the learning rate in a variable; momentum (SGD ``momentum``, Adam's
``beta_1``) is a Python float baked into the traced step, so
``MomentumHandle`` swaps in a variable for the duration of a fit.
"""

import warnings

import keras
import numpy as np

_MOMENTUM_ATTRS = ("beta_1", "momentum")


def base_optimizers(optimizer):
    """The optimizers that own learning rates: unwraps loss scaling,
    gradient tracking and ``MultiOptimizer`` (one per group)."""
    if optimizer is None:
        raise ValueError("The model has no optimizer: call model.compile("
                         "optimizer=..., loss=...) first.")
    inner = getattr(optimizer, "inner_optimizer", None)
    if inner is not None:
        return base_optimizers(inner)
    if isinstance(optimizer, keras.optimizers.MultiOptimizer):
        return list(optimizer.optimizers)
    return [optimizer]


def _check_settable(opt):
    lr = opt.learning_rate
    if not isinstance(lr, keras.Variable):
        raise TypeError(
            f"Optimizer {opt.name!r} was compiled with a learning-rate "
            f"schedule ({type(opt._learning_rate).__name__}), so a callback "
            f"cannot assign its rate. Compile with a float learning_rate.")
    return lr


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
    """Per-step hyper-parameters need one batch hook per step."""
    spe = int(getattr(model, "steps_per_execution", 1) or 1)
    if spe != 1:
        raise ValueError(
            f"{who} sets a value before every step, but the model was "
            f"compiled with steps_per_execution={spe}, which runs {spe} "
            f"steps per batch hook. Compile with steps_per_execution=1, "
            f"or use a LearningRateSchedule (e.g. kerasdl.OneCycleSchedule)"
            f", which the optimizer evaluates on the device every step.")


class _MomentumVariable(keras.Variable):
    """A momentum variable that SGD's Python-side test ``momentum != 0``
    (which decides whether it keeps a velocity) reads as non-zero; it is
    installed only in place of a non-zero momentum."""

    def __eq__(self, other):
        if isinstance(other, (int, float)) and other == 0:
            return False
        return super().__eq__(other)

    def __ne__(self, other):
        if isinstance(other, (int, float)) and other == 0:
            return True
        return super().__ne__(other)

    __hash__ = keras.Variable.__hash__


class MomentumHandle:
    """Makes the momentum of every base optimizer an assignable variable.

    ``install()`` replaces the float attribute (``beta_1`` or
    ``momentum``; never ``beta_2``) by a variable tracked by the
    optimizer; ``uninstall()`` puts the last value back as a float and
    untracks the variable, so the optimizer saves as before. A train
    function traced before the variable existed is rebuilt once.
    """

    def __init__(self, model, who):
        self.model = model
        self.entries = []
        missing = []
        for opt in base_optimizers(model.optimizer):
            attr = next((a for a in _MOMENTUM_ATTRS if hasattr(opt, a)),
                        None)
            value = getattr(opt, attr, None) if attr else None
            if attr is None or (attr == "momentum" and not value):
                missing.append(f"{opt.name} ({type(opt).__name__})")
            else:
                self.entries.append((opt, attr))
        if missing:
            warnings.warn(
                f"{who}: optimizer {', '.join(missing)} has neither "
                f"`beta_1` nor a non-zero SGD `momentum`; momentum is not "
                f"cycled. Use Adam-family or SGD(momentum=0.9) to cycle it.",
                stacklevel=3)

    def install(self):
        if not self.entries:
            return
        for opt, attr in self.entries:
            current = getattr(opt, attr)
            var = getattr(opt, "_kerasdl_momentum", None)
            if var is None:
                with keras.name_scope(opt.name):
                    var = _MomentumVariable(float(current), dtype="float32",
                                            trainable=False, name=attr)
                opt._kerasdl_momentum = var
            else:
                var.assign(float(current))
            setattr(opt, attr, var)  # tracked: now in opt.variables
        # A step traced earlier read the float as a constant: retrace once.
        model = self.model
        if getattr(model, "_kerasdl_momentum_fn", None) is not \
                model.train_function and model.train_function is not None:
            model.make_train_function(force=True)
            model._kerasdl_momentum_fn = model.train_function

    def assign(self, value):
        for opt, _ in self.entries:
            opt._kerasdl_momentum.assign(float(value))

    def uninstall(self):
        for opt, attr in self.entries:
            var = opt._kerasdl_momentum
            setattr(opt, attr, float(np.asarray(var.numpy())))
            opt._tracker.untrack(var)
