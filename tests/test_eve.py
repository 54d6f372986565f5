"""Eve against a numpy transcription of the paper's Algorithm 1, step by
step: in a loop of one's own (loss given to apply) and under model.fit
(loss given by LossFeedback, one batch later); saved and reloaded with
the model; its arguments checked."""

import keras
import numpy as np
import pytest

import kerasdl
from kerasdl.optimizers import Eve
from kerasdl.optimizers import LossFeedback


class NumpyEve:
    """Algorithm 1 of arXiv:1611.01505v1, in float64."""

    def __init__(self, lr, beta_1=0.9, beta_2=0.999, beta_3=0.999, k=0.1,
                 K=10.0, eps=1e-8):
        self.lr, self.b1, self.b2, self.b3 = lr, beta_1, beta_2, beta_3
        self.k, self.K, self.eps = k, K, eps
        self.t, self.m, self.v = 0, None, None
        self.f_hat, self.d = None, 1.0
        self.branches = set()

    def step(self, theta, g, f):
        """theta, g: lists of arrays; f: the loss or None (no feedback)."""
        if self.m is None:
            self.m = [np.zeros_like(p) for p in theta]
            self.v = [np.zeros_like(p) for p in theta]
        self.t += 1
        if f is not None:
            if self.f_hat is None:
                self.f_hat, self.d = f, 1.0
            else:
                if f >= self.f_hat:
                    lo, hi = self.k + 1, self.K + 1
                else:
                    lo, hi = 1 / (self.K + 1), 1 / (self.k + 1)
                c = min(max(lo, f / self.f_hat), hi)
                self.branches.add((f >= self.f_hat, c in (lo, hi)))
                new = c * self.f_hat
                r = abs(new - self.f_hat) / min(new, self.f_hat)
                self.f_hat = new
                self.d = self.b3 * self.d + (1 - self.b3) * r
        out = []
        for i, (p, gi) in enumerate(zip(theta, g)):
            self.m[i] = self.b1 * self.m[i] + (1 - self.b1) * gi
            self.v[i] = self.b2 * self.v[i] + (1 - self.b2) * gi ** 2
            m_hat = self.m[i] / (1 - self.b1 ** self.t)
            v_hat = self.v[i] / (1 - self.b2 ** self.t)
            out.append(p - self.lr * m_hat / (self.d * np.sqrt(v_hat)
                                              + self.eps))
        return out


def _linear_loss_and_grads(w, b, x, y):
    """MSE of x @ w + b against y, and its gradients."""
    err = x @ w + b - y
    loss = float(np.mean(err ** 2))
    g_w = 2 * x.T @ err / len(y)
    g_b = np.array([2 * np.mean(err)])
    return loss, [g_w, g_b]


def _problem(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = x @ np.array([1.5, -2.0, 0.5]) + 0.3 + 0.5 * rng.normal(size=n)
    return x, y


def test_apply_with_the_loss_follows_the_paper_step_by_step():
    x, y = _problem()
    # beta_3 small so that d moves a lot; a large rate so the loss both
    # rises and falls, and some ratios hit the clip.
    opt = Eve(learning_rate=0.3, beta_3=0.5)
    ref = NumpyEve(0.3, beta_3=0.5)
    w = keras.Variable(np.zeros((3,)), dtype="float32", name="w")
    b = keras.Variable(np.zeros((1,)), dtype="float32", name="b")
    theta = [np.zeros(3), np.zeros(1)]
    for step in range(30):
        rows = slice(8 * (step % 3), 8 * (step % 3) + 8)  # three batches
        kw, kb = (np.asarray(v.numpy(), "float64") for v in (w, b))
        np.testing.assert_allclose(kw, theta[0], rtol=2e-4, atol=2e-5,
                                   err_msg=f"step {step}")
        np.testing.assert_allclose(kb, theta[1], rtol=2e-4, atol=2e-5)
        loss, grads = _linear_loss_and_grads(kw, kb, x[rows], y[rows])
        opt.apply([keras.ops.convert_to_tensor(g, "float32") for g in grads],
                  [w, b], loss=loss)
        theta = ref.step(theta, grads, loss)
        np.testing.assert_allclose(float(opt.d.numpy()), ref.d, rtol=1e-5)
        np.testing.assert_allclose(float(opt.f_hat.numpy()), ref.f_hat,
                                   rtol=1e-5)
    # Both sides of the test, clipped and not, were exercised.
    assert {rising for rising, _ in ref.branches} == {True, False}
    assert {clipped for _, clipped in ref.branches} == {True, False}
    assert ref.d != 1.0
    assert int(opt.feedbacks.numpy()) == 30


def test_without_a_loss_eve_leaves_d_alone():
    w = keras.Variable(np.ones((2,)), dtype="float32")
    opt = Eve(learning_rate=0.1)
    ref = NumpyEve(0.1)
    theta = [np.ones(2)]
    for _ in range(3):
        opt.apply([keras.ops.ones((2,))], [w])
        theta = ref.step(theta, [np.ones(2)], None)
    np.testing.assert_allclose(w.numpy(), theta[0], rtol=1e-5)
    assert float(opt.d.numpy()) == 1.0
    assert int(opt.feedbacks.numpy()) == 0


class _Count(keras.layers.Layer):
    """Identity that counts how often its call is traced (or run)."""

    calls = 0

    def call(self, x):
        type(self).calls += 1
        return x


class _Weights(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        layer = self.model.get_layer("dense")
        self.seen.append([np.asarray(layer.kernel.numpy(), "float64")[:, 0],
                          np.asarray(layer.bias.numpy(), "float64")])


def _fit_model(optimizer, count=True):
    model = keras.Sequential([keras.Input((3,))] + (
        [_Count()] if count else []) + [
        keras.layers.Dense(1, kernel_initializer="zeros", name="dense")])
    model.compile(optimizer, "mse")
    return model


def test_fit_with_loss_feedback_is_the_paper_one_batch_later(backend):
    x, y = _problem()
    counts, models = [], []
    for epochs in (1, 3):
        _Count.calls = 0
        model = _fit_model(Eve(learning_rate=0.3, beta_3=0.5))
        spy = _Weights()
        model.fit(x.astype("float32"), y.astype("float32"), batch_size=8,
                  epochs=epochs, shuffle=False, verbose=0,
                  callbacks=[LossFeedback(), spy])
        counts.append(_Count.calls)
        models.append(model)
    if backend != "torch":  # compiled once, however many steps
        assert counts[0] == counts[1], counts
    ref = NumpyEve(0.3, beta_3=0.5)
    theta, previous = [np.zeros(3), np.zeros(1)], None
    for step in range(9):
        rows = slice(8 * (step % 3), 8 * (step % 3) + 8)
        loss, grads = _linear_loss_and_grads(*theta, x[rows], y[rows])
        theta = ref.step(theta, grads, previous)
        previous = loss  # LossFeedback hands it over after the step
        np.testing.assert_allclose(spy.seen[step][0], theta[0], rtol=2e-4,
                                   atol=2e-5, err_msg=f"step {step}")
        np.testing.assert_allclose(spy.seen[step][1], theta[1], rtol=2e-4,
                                   atol=2e-5, err_msg=f"step {step}")
    opt = models[1].optimizer
    assert ref.d != 1.0
    np.testing.assert_allclose(float(opt.d.numpy()), ref.d, rtol=1e-4)
    np.testing.assert_allclose(float(opt.feedback_loss.numpy()), previous,
                               rtol=1e-4)  # the last loss, still pending


def test_saved_with_the_model_and_training_resumes_the_same(tmp_path):
    x, y = (a.astype("float32") for a in _problem())
    model = _fit_model(Eve(learning_rate=0.05, beta_3=0.9, k=0.2, K=5.0),
                       count=False)
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
              callbacks=[LossFeedback()])
    path = tmp_path / "eve.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.optimizer, Eve)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    for name in ("d", "f_hat", "feedbacks", "feedback_loss"):
        np.testing.assert_allclose(
            getattr(loaded.optimizer, name).numpy(),
            getattr(model.optimizer, name).numpy(), err_msg=name)
    for m in (model, loaded):
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0,
              callbacks=[LossFeedback()])
    np.testing.assert_allclose(loaded.predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6)
    assert keras.saving.get_registered_name(Eve) == "kerasdl>Eve"


def test_top_level_names():
    assert kerasdl.Eve is Eve
    assert kerasdl.LossFeedback is LossFeedback
    assert kerasdl.optimizers.Eve is Eve
    config = Eve(learning_rate=0.01, K=20.0).get_config()
    assert Eve.from_config(config).get_config() == config


@pytest.mark.parametrize("kwargs, error, words", [
    ({"beta_1": 1.0}, ValueError, "`beta_1` must be a finite number >= 0"),
    ({"beta_3": -0.1}, ValueError, "`beta_3`"),
    ({"k": 0}, ValueError, "`k` must be a finite number > 0"),
    ({"k": 2.0, "K": 1.0}, ValueError, "It must exceed k=2"),
    ({"K": "10"}, TypeError, "`K` must be a finite number"),
    ({"epsilon": -1e-8}, ValueError, "`epsilon`"),
    ({"gradient_accumulation_steps": 2}, ValueError, "a larger batch"),
])
def test_arguments_are_checked(kwargs, error, words):
    with pytest.raises(error, match=words):
        Eve(**kwargs)


def test_loss_feedback_needs_eve():
    model = _fit_model(keras.optimizers.Adam())
    with pytest.raises(TypeError, match="compile with optimizer=kerasdl.Eve"):
        model.fit(np.ones((4, 3)), np.ones(4), verbose=0,
                  callbacks=[LossFeedback()])


def test_docstring_examples():
    import doctest

    import kerasdl.optimizers

    result = doctest.testmod(kerasdl.optimizers)
    assert result.attempted > 0 and result.failed == 0
