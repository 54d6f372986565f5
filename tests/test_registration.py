"""A model holding any kerasdl class loads with safe_mode=True in a fresh
process that only did `import kerasdl` (before or after `import keras`)."""

import ast
import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import kerasdl
from kerasdl import _registration

PKG = pathlib.Path(kerasdl.__file__).parent


def _registered_modules():
    """Modules whose source registers a class with package='kerasdl'."""
    found = set()
    for path in PKG.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                    "register_keras_serializable" in ast.unparse(d)
                    for d in node.decorator_list):
                rel = path.relative_to(PKG.parent).with_suffix("")
                found.add(".".join(rel.parts))
    return found


def test_every_registering_module_is_listed():
    assert _registered_modules() <= set(_registration.MODULES)


def _models():
    """name -> (model, input) for one model per registered class."""
    from kerasdl.data.augment import ChannelShift
    from kerasdl.data.augment import RandomAffine
    from kerasdl.models.autorec import LeaveOneOut
    from kerasdl.models.autorec import TakeColumn
    from kerasdl.models.collab import ScaledSigmoid
    from kerasdl.models.vgg import VGGPreprocess

    img = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3))
    img = img.astype("float32")
    out = {}
    for name, layer in (("VGGPreprocess", VGGPreprocess()),
                        ("RandomAffine", RandomAffine(rotation=10, seed=1)),
                        ("ChannelShift", ChannelShift(20, seed=1))):
        inp = keras.Input((8, 8, 3))
        out[name] = (keras.Model(inp, layer(inp)), img)
    inp = keras.Input((3,))
    out["ScaledSigmoid"] = (keras.Model(inp, ScaledSigmoid(0, 5.5)(inp)),
                            np.ones((2, 3), "float32"))
    rows, idx = keras.Input((3,)), keras.Input((), dtype="int32")
    y = TakeColumn()([LeaveOneOut()([rows, idx]), idx])
    out["LeaveOneOut+TakeColumn"] = (
        keras.Model([rows, idx], y),
        [np.arange(6, dtype="float32").reshape(2, 3), np.array([0, 2])])
    named = kerasdl.with_class_names(kerasdl.linear_bn((8, 8, 3), 2),
                                     ["cat", "dog"])
    out["ClassNames"] = (named, img)
    # Schedules and the GradientSum wrapper travel inside the optimizer.
    sched = kerasdl.linear_bn((8, 8, 3), 2)
    sched.compile(keras.optimizers.SGD(
        kerasdl.OneCycleSchedule(1e-2, 100)), "mse")
    out["OneCycleSchedule"] = (sched, img)
    sgdr = kerasdl.linear_bn((8, 8, 3), 2)
    sgdr.compile(keras.optimizers.Adam(
        kerasdl.CosineRestartsSchedule(1e-2, 10)), "mse")
    out["CosineRestartsSchedule"] = (sgdr, img)
    summed = kerasdl.linear_bn((8, 8, 3), 2)
    summed.compile(kerasdl.GradientSum(keras.optimizers.Adam(1e-3)), "mse")
    out["GradientSum"] = (summed, img)
    return out


# Only `import kerasdl` then `import keras` needs a fresh process: this test
# process itself imported keras first (conftest), and the in-process test
# below loads every model after that order.
@pytest.mark.parametrize("keras_first", [False])
def test_saved_models_load_in_a_fresh_process(tmp_path, keras_first):
    expected = {}
    for name, (model, x) in _models().items():
        path = tmp_path / f"{name}.keras"
        model.save(path)
        np.save(tmp_path / f"{name}.npy", np.asarray(
            model.predict(x, verbose=0) if name not in (
                "RandomAffine", "ChannelShift") else x[:0]))
        expected[name] = path
    imports = "import keras\nimport kerasdl" if keras_first else \
        "import kerasdl\nimport keras"
    full = not keras_first  # the other order loads two of the models
    code = textwrap.dedent(f"""
        import sys, numpy as np
        {imports.splitlines()[0]}
        {imports.splitlines()[1]}
        assert "kerasdl.models.vgg" in sys.modules
        paths = sys.argv[1:] if {full!r} else [
            p for p in sys.argv[1:] if p.endswith(("ClassNames.keras",
                                                   "VGGPreprocess.keras"))]
        for path in paths:
            model = keras.saving.load_model(path, safe_mode=True)
            print(path, type(model).__name__, flush=True)
        named = keras.saving.load_model(
            [p for p in sys.argv[1:] if p.endswith("ClassNames.keras")][0],
            safe_mode=True)
        print("names", kerasdl.class_names(named))
    """)
    env = dict(os.environ)
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, expected.values())],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count(".keras") == (2 if keras_first
                                             else len(expected))
    assert "names ['cat', 'dog']" in result.stdout


def test_loaded_model_predicts_the_same(tmp_path):
    for name, (model, x) in _models().items():
        if name in ("RandomAffine", "ChannelShift"):
            continue  # random at training time, identity at inference
        path = tmp_path / f"{name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        np.testing.assert_allclose(loaded.predict(x, verbose=0),
                                   model.predict(x, verbose=0), rtol=1e-6,
                                   err_msg=name)


def test_import_kerasdl_alone_still_imports_no_framework():
    code = ("import sys, kerasdl; print(sorted(m for m in ('keras', "
            "'tensorflow', 'jax', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


def test_with_class_names_checks_and_replaces():
    model = kerasdl.linear_bn((8, 8, 3), 3)
    with pytest.raises(ValueError, match="one name per output unit"):
        kerasdl.with_class_names(model, ["a", "b"])
    with pytest.raises(TypeError, match="list of strings"):
        kerasdl.with_class_names(model, "abc")
    model = kerasdl.with_class_names(model, ["a", "b", "c"])
    model = kerasdl.with_class_names(model, ["x", "y", "z"])
    assert kerasdl.class_names(model) == ["x", "y", "z"]
    assert sum(isinstance(layer, kerasdl.ClassNames)
               for layer in model.layers) == 1
    assert kerasdl.param_counts(model) == kerasdl.param_counts(
        kerasdl.linear_bn((8, 8, 3), 3))
    assert kerasdl.class_names(kerasdl.linear_bn((8, 8, 3), 3)) is None
    inp = keras.Input((4,))
    functional = keras.Model(inp, keras.layers.Dense(2)(inp))
    wrapped = kerasdl.with_class_names(functional, ["no", "yes"])
    assert kerasdl.class_names(wrapped) == ["no", "yes"]


def test_with_class_names_keeps_one_input_a_plain_tensor(tmp_path):
    # A one-element list of inputs made Keras warn on every predict of the
    # reloaded model.
    import warnings

    inputs = keras.Input((3,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(
        inputs))
    named = kerasdl.with_class_names(model, ["a", "b"])
    named.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        loaded.predict(np.zeros((2, 3)), verbose=0)
        loaded(np.zeros((2, 3), "float32"))
        named(np.zeros((2, 3), "float32"))
    assert [str(w.message) for w in seen
            if "structure of `inputs`" in str(w.message)] == []
    assert kerasdl.class_names(loaded) == ["a", "b"]
