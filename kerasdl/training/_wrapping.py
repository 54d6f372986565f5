"""The pass-through half of an optimizer that wraps another.

``GradientSum`` and ``StepSchedule`` each wrap the model's optimizer and
add one thing to its step; everything else is the wrapped optimizer's:
its variables follow the wrapper's own, and its learning rate and step
counter are the ones read and set through the wrapper.

The step counter and learning rate that every Keras optimizer makes for
itself are never used by a wrapper, so they are left out of its
``variables``: that list is the optimizer state a backend such as JAX
carries through every step, and each entry costs host time per step.
"""

import keras


class WrappingOptimizer(keras.optimizers.Optimizer):
    """Base of the wrappers: ``inner_optimizer`` is the wrapped one.

    Subclasses set ``self.inner_optimizer`` in ``__init__``, write
    ``build`` (ending with ``super().build(var_list)``), ``apply`` and
    their config; ``model_variables()`` is the list they were built for.
    """

    _var_list = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._unused = frozenset(id(v) for v in super().variables)

    def build(self, var_list):
        self._var_list = _Untracked(var_list)
        super().build(var_list)

    def model_variables(self):
        """The variables the wrapper was built for (None before)."""
        return None if self._var_list is None else self._var_list.items

    @property
    def variables(self):
        own = [v for v in super().variables if id(v) not in self._unused]
        return own + self.inner_optimizer.variables

    def load_own_variables(self, store):
        # A file saved before the unused step counter and rate were left
        # out of `variables` holds them first: they are skipped (Keras
        # would otherwise drop the whole state with a warning).
        extra = len(store.keys()) - len(self.variables)
        if extra and extra == len(self._unused):
            store = {str(i): store[str(i + extra)]
                     for i in range(len(self.variables))}
        super().load_own_variables(store)

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self.inner_optimizer.learning_rate = value

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)


class _Untracked:
    """Holds a list out of sight of the optimizer's variable tracking
    (an attribute holding the model's variables would make them its
    own)."""

    def __init__(self, items):
        self.items = list(items)
