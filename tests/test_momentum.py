"""ScheduledSGD: the momentum read from its variable, each velocity paired
with its own variable."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from kerasdl.training.momentum import ScheduledSGD


def _run(opt, grads_seq):
    # Two variables of the same shape, so that swapped velocities would
    # give wrong numbers rather than an error.
    a = keras.Variable(np.ones((2, 3), "float32"), name="a")
    b = keras.Variable(np.full((2, 3), -2.0, "float32"), name="b")
    c = keras.Variable(np.zeros((3,), "float32"), name="c")
    variables = [a, b, c]
    opt.build(variables)
    for grads in grads_seq:
        opt.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)
    return [v.numpy() for v in variables]


@pytest.mark.parametrize("nesterov", [False, True])
def test_scheduled_sgd_matches_keras_sgd_variable_by_variable(nesterov):
    rng = np.random.default_rng(0)
    grads_seq = [[rng.normal(size=(2, 3)).astype("float32"),
                  rng.normal(size=(2, 3)).astype("float32") * 10,
                  rng.normal(size=(3,)).astype("float32")]
                 for _ in range(4)]
    ours = _run(ScheduledSGD(0.1, momentum=0.9, nesterov=nesterov),
                grads_seq)
    keras_sgd = _run(keras.optimizers.SGD(0.1, momentum=0.9,
                                          nesterov=nesterov), grads_seq)
    for mine, ref in zip(ours, keras_sgd):
        np.testing.assert_allclose(mine, ref, rtol=1e-6, atol=1e-6)


def test_scheduled_sgd_reads_the_momentum_from_its_variable():
    grads = [[np.ones((2, 3), "float32"), np.ones((2, 3), "float32"),
              np.ones((3,), "float32")]] * 2
    opt = ScheduledSGD(1.0, momentum=0.9)
    a = keras.Variable(np.zeros((2, 3), "float32"))
    b = keras.Variable(np.zeros((2, 3), "float32"))
    c = keras.Variable(np.zeros((3,), "float32"))
    opt.build([a, b, c])
    opt.momentum_value.assign(0.5)
    for g in grads:
        opt.apply([keras.ops.convert_to_tensor(x) for x in g], [a, b, c])
    # v1 = -1, w = -1; v2 = 0.5 * -1 - 1 = -1.5, w = -2.5
    np.testing.assert_allclose(b.numpy(), np.full((2, 3), -2.5), rtol=1e-6)
    assert opt.momentum == 0.9  # the configured number is what it saves


_MIRRORED = r"""
import sys
import kerasdl
import kerasdl.distribute
kerasdl.distribute.simulate_cpu_devices(2)
import keras
import numpy as np

rng = np.random.default_rng(0)
x = rng.normal(size=(64, 4)).astype("float32")
y = (x[:, 0] > 0).astype("int32")


def run(dp):
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8),
                          keras.layers.Dense(2, activation="softmax")])
    m.compile(keras.optimizers.SGD(0.1, momentum=0.9),
              "sparse_categorical_crossentropy")
    kerasdl.fit_one_cycle(m, (x, y), 2, 0.1, batch_size=16, shuffle=False,
                          verbose=0)
    return np.concatenate([w.ravel() for w in m.get_weights()])


one = run(None)
with kerasdl.data_parallel() as dp:
    assert dp.num_replicas == 2, dp.num_replicas
    two = run(dp)
print("max difference", float(np.max(np.abs(one - two))))
sys.exit(0 if np.allclose(one, two, atol=1e-5) else 1)
"""


def test_one_cycle_sgd_momentum_under_a_mirrored_strategy(backend, tmp_path):
    # Under tf.distribute the update is handed each replica's copy of the
    # variable; the velocity must still be the variable's own.
    if backend != "tensorflow":
        pytest.skip("tf.distribute is TensorFlow's")
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    done = subprocess.run([sys.executable, "-c", _MIRRORED], env=env,
                          cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "max difference" in done.stdout


def test_scheduled_class_takes_keras_classes_and_their_backend_variants():
    # Under PyTorch keras.optimizers.Adam(...) is Keras' own torch subclass;
    # a user's subclass may change the update, so it is never replaced.
    from kerasdl.training.momentum import ScheduledAdam
    from kerasdl.training.momentum import scheduled_class

    class MyAdam(keras.optimizers.Adam):
        pass

    assert scheduled_class(keras.optimizers.Adam(1e-3)) is ScheduledAdam
    assert scheduled_class(keras.optimizers.SGD(0.1, momentum=0.9)) \
        is ScheduledSGD
    assert scheduled_class(MyAdam(1e-3)) is None
    assert scheduled_class(keras.optimizers.RMSprop(1e-3)) is None
