"""ScheduledSGD: the momentum read from its variable, each velocity paired
with its own variable."""

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
