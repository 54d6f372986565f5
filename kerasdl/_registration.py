"""Registers every serialisable kerasdl class with Keras as soon as both
kerasdl and keras are imported, in either order.

``import kerasdl`` stays light (it imports no framework), yet a model
saved with a kerasdl layer must load in a fresh script that does only
``import kerasdl`` and ``keras.saving.load_model(path, safe_mode=True)``.
Keras finds such classes in its registry of custom objects, which is
filled when the defining module runs. So:

- if keras is already imported when kerasdl is, the modules below are
  imported at once;
- otherwise a one-shot import hook waits for ``import keras`` to finish
  and imports them right after, before the user's ``import keras``
  returns.

``MODULES`` must name every module that registers a class; a test scans
the package and fails when one is missing.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

# Every module that defines a class with
# keras.saving.register_keras_serializable(package="kerasdl").
MODULES = (
    "kerasdl.models.vgg",
    "kerasdl.models.collab",
    "kerasdl.models.autorec",
    "kerasdl.models.labels",
    "kerasdl.metrics",
    "kerasdl.data.augment",
    "kerasdl.training.schedules",
    "kerasdl.training.annealing",
    "kerasdl.training.momentum",
    "kerasdl.training._stepping",
    "kerasdl.optimizers",
)

_done = False


def register_all():
    """Imports every module of ``MODULES`` (which registers its classes).

    Safe to call many times; only the first call does work.
    """
    global _done
    if _done:
        return
    _done = True
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception as e:  # never break the user's `import keras`
            warnings.warn(
                f"kerasdl could not register the classes of {name} "
                f"({type(e).__name__}: {e}); models holding them will not "
                f"load until `import {name}` succeeds.", stacklevel=2)


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Finds ``keras`` through the other finders and runs ``register_all``
    right after the package has executed."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        _uninstall()
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        execute = loader.exec_module

        def exec_module(module):
            execute(module)
            register_all()

        loader.exec_module = exec_module
        return spec


_hook = _AfterKerasImport()


def _uninstall():
    while _hook in sys.meta_path:
        sys.meta_path.remove(_hook)


def install():
    """Registers now if keras is loaded, else once it is imported."""
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "saving"):
        register_all()
    elif keras is None and _hook not in sys.meta_path:
        sys.meta_path.insert(0, _hook)
