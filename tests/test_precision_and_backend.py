"""mixed_precision and the backend helper, on whichever backend runs."""

import keras
import numpy as np
import pytest

import kerasdl
from kerasdl import _backend
from kerasdl.precision import policy_for_device


def test_accelerator_describes_this_machine(backend):
    device = _backend.accelerator()
    assert device["kind"] in ("cpu", "gpu")
    assert _backend.name() == backend


def test_policy_for_devices():
    assert policy_for_device({"kind": "cpu"}) == "mixed_bfloat16"
    h100 = {"kind": "gpu", "compute_capability": (9, 0)}
    t4 = {"kind": "gpu", "compute_capability": (7, 5)}
    assert policy_for_device(h100) == "mixed_bfloat16"
    assert policy_for_device(t4) == "mixed_float16"


def test_mixed_precision_sets_and_restores_policy():
    policy = kerasdl.mixed_precision()
    assert keras.config.dtype_policy().name == policy
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    assert layer.compute_dtype in ("bfloat16", "float16")
    assert layer.variable_dtype == "float32"
    assert kerasdl.mixed_precision(False) == "float32"
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(TypeError, match="enabled"):
        kerasdl.mixed_precision("yes")


def test_synchronize_returns_its_input():
    x = keras.ops.ones((2, 2))
    assert _backend.synchronize(x) is x
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(x), 1)


def test_copies_are_equal_values_that_share_no_buffer(backend):
    a = keras.Variable(np.arange(6, dtype="float32").reshape(2, 3))
    b = keras.Variable(7, dtype="int32", trainable=False)
    got = _backend.copies([a.value, b.value])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(got[0]),
                                  a.numpy())
    assert int(keras.ops.convert_to_numpy(got[1])) == 7
    assert _backend.copies([]) == []
    if backend == "jax":
        # a train step donates its state: two variables must not share
        assert got[0].unsafe_buffer_pointer() != \
            a.value.unsafe_buffer_pointer()
