"""dot / dot_bias / collab_nn: the lesson's parameter counts, y_range,
regularisation, serialisation and argument checks."""

import keras
import numpy as np
import pytest

from kerasdl.models.collab import ScaledSigmoid
from kerasdl.models.collab import collab_nn
from kerasdl.models.collab import dot
from kerasdl.models.collab import dot_bias


def test_lesson_parameter_counts_on_ml_latest_small_sizes():
    # 671 users, 9,066 movies, 50 factors (REFERENCE.md)
    assert dot(671, 9066, 50).count_params() == 486_850
    assert dot_bias(671, 9066, 50).count_params() == 496_587
    # + Dense(70) on 100 inputs and Dense(1) on 70
    assert collab_nn(671, 9066, 50).count_params() == 486_850 + 7_070 + 71


def test_lesson_counts_from_the_real_data(shared_data):
    from kerasdl.collab.recipes import make_encoders
    from kerasdl.data.ratings import read_movielens

    data = read_movielens(shared_data("ml-latest-small"))
    users, items = make_encoders(data.ratings)
    assert dot(len(users), len(items)).count_params() == 486_850
    assert dot_bias(len(users), len(items)).count_params() == 496_587


def _x(users, items):
    return {"user": np.asarray(users, "int32"),
            "item": np.asarray(items, "int32")}


def test_dot_bias_computes_dot_plus_biases():
    model = dot_bias(2, 3, 2)
    model.get_layer("user_factors").set_weights([np.array([[1., 2.],
                                                           [0., 1.]])])
    model.get_layer("item_factors").set_weights([np.array(
        [[1., 1.], [2., 0.], [0., 3.]])])
    model.get_layer("user_bias").set_weights([np.array([[0.5], [-1.]])])
    model.get_layer("item_bias").set_weights([np.array([[0.], [1.], [2.]])])
    out = model.predict(_x([0, 1, 0], [0, 2, 1]), verbose=0).ravel()
    np.testing.assert_allclose(out, [3.5, 4.0, 3.5], rtol=1e-6)
    plain = dot(2, 3, 2)
    assert plain.output_shape == (None, 1)


def test_y_range_bounds_the_output():
    model = dot_bias(2, 2, 3, y_range=(0.0, 5.5))
    model.get_layer("item_bias").set_weights([np.array([[100.], [-100.]])])
    out = model.predict(_x([0, 0], [0, 1]), verbose=0).ravel()
    assert 5.4 < out[0] <= 5.5 and 0.0 <= out[1] < 0.1
    layer = ScaledSigmoid(1.0, 5.0)
    mid = keras.ops.convert_to_numpy(layer(np.zeros((1, 1), "float32")))
    assert mid[0, 0] == pytest.approx(3.0)


def test_save_and_load_safe_mode(tmp_path):
    model = collab_nn(5, 7, 3, y_range=(0.5, 5.5))
    path = str(tmp_path / "nn.keras")
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    x = _x([0, 4], [6, 1])
    np.testing.assert_allclose(again.predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6)
    assert again.get_layer("y_range").high == 5.5


def test_l2_per_rating_on_an_older_keras_is_one_clear_error():
    from kerasdl import _versions

    with pytest.raises(_versions.KerasVersionError,
                       match=r"l2_per_rating.*Keras 3\.14\.0; this is "
                             r"Keras 3\.13\.1"):
        _versions.require("batch_mean_activity_penalty", version="3.13.1")
    _versions.require("batch_mean_activity_penalty", version="3.14.0")


def test_l2_per_rating_is_a_batch_mean_penalty():
    model = dot_bias(2, 2, 2, l2=None, l2_per_rating=0.1)
    model.get_layer("user_factors").set_weights([np.full((2, 2), 2.0)])
    model.get_layer("item_factors").set_weights([np.zeros((2, 2))])
    model(_x([0, 1, 0, 1], [0, 0, 1, 1]))
    penalty = sum(float(keras.ops.convert_to_numpy(v)) for v in model.losses)
    # user factors: mean over the batch of 0.1 * (2^2 + 2^2) = 0.8
    assert penalty == pytest.approx(0.8, rel=1e-5)
    table = dot_bias(2, 2, 2, l2=0.5)
    table.get_layer("user_factors").set_weights([np.full((2, 2), 1.0)])
    table.get_layer("item_factors").set_weights([np.zeros((2, 2))])
    total = sum(float(keras.ops.convert_to_numpy(v)) for v in table.losses)
    assert total == pytest.approx(0.5 * 4.0, rel=1e-5)


@pytest.mark.parametrize("build,kwargs,error,needle", [
    (dot, dict(n_users=0, n_items=3), ValueError, "n_users"),
    (dot_bias, dict(n_users=2, n_items=3, y_range=(5, 1)), ValueError,
     "high > low"),
    (dot_bias, dict(n_users=2, n_items=3, y_range=5), TypeError, "pair"),
    (dot, dict(n_users=2, n_items=3, l2=-1), ValueError, "non-negative"),
    (collab_nn, dict(n_users=2, n_items=3, dropout=(0.3, 1.5)), ValueError,
     "dropout"),
])
def test_argument_checks(build, kwargs, error, needle):
    with pytest.raises(error, match=needle):
        build(**kwargs)


def test_autorec_rows_and_pairs_agree_and_save(tmp_path):
    from kerasdl.models.autorec import autorec
    from kerasdl.models.autorec import masked_squared_error
    from kerasdl.models.autorec import row_model
    from kerasdl.models.autorec import set_rating_table

    model = autorec(4, 3, hidden=5, dropout=0.0, leave_one_out=False)
    table = set_rating_table(model, [0, 1, 3], [2, 2, 0], [5.0, 3.0, 1.0])
    assert table.tolist()[2] == [5.0, 3.0, 0.0, 0.0]
    rows = row_model(model).predict(table, verbose=0)
    pairs = model.predict(_x([0, 3, 1], [2, 0, 1]), verbose=0).ravel()
    np.testing.assert_allclose(pairs, [rows[2, 0], rows[0, 3], rows[1, 1]],
                               rtol=1e-5)
    loss = masked_squared_error(np.array([[5.0, 0.0, 2.0]], "float32"),
                                np.array([[4.0, 9.0, 2.5]], "float32"))
    assert float(keras.ops.convert_to_numpy(loss)[0]) == pytest.approx(1.25)
    path = str(tmp_path / "ar.keras")
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        again.predict(_x([0, 3], [2, 0]), verbose=0).ravel(), pairs[:2],
        rtol=1e-5)


def test_leave_one_out_hides_the_target():
    from kerasdl.models.autorec import LeaveOneOut

    out = LeaveOneOut()([np.ones((2, 3), "float32"), np.array([1, 0])])
    assert keras.ops.convert_to_numpy(out).tolist() == [[1, 0, 1], [0, 1, 1]]


def test_fit_on_device_trains_every_row(backend):
    from kerasdl.collab.on_device import fit_on_device

    rng = np.random.default_rng(0)
    n = 203  # not a multiple of the batch: the last 11 rows are trained too
    x = _x(rng.integers(0, 6, n), rng.integers(0, 5, n))
    y = (1 + x["user"] % 5).astype("float32")
    keras.utils.set_random_seed(0)
    model = dot_bias(6, 5, 3, l2=None)
    model.compile(keras.optimizers.Adam(0.1), "mse")
    if backend != "jax":
        with pytest.raises(ValueError, match="needs KERAS_BACKEND=jax"):
            fit_on_device(model, x, y, batch_size=32, epochs=1)
        assert int(keras.ops.convert_to_numpy(
            model.optimizer.iterations)) == 0
        return
    losses = fit_on_device(model, x, y, batch_size=32, epochs=20, seed=1)
    assert len(losses) == 20 and losses[-1] < 0.1 * losses[0]
    # 6 full batches of 32 and one of 11 per epoch
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 140
    pred = model.predict(x, verbose=0).ravel()
    assert np.sqrt(np.mean((pred - y) ** 2)) < 0.8


def test_fit_on_device_reuses_its_compiled_epoch(backend):
    if backend != "jax":
        pytest.skip("fit_on_device is JAX only (other backends raise)")
    from kerasdl.collab import on_device

    x = _x(np.arange(40) % 4, np.arange(40) % 3)
    y = np.ones(40, "float32")
    model = dot_bias(4, 3, 2, l2=None)
    model.compile(keras.optimizers.Adam(0.01), "mse")
    for _ in range(3):
        on_device.fit_on_device(model, x, y, batch_size=16, epochs=1)
    (epoch,) = on_device._EPOCH_FUNCTIONS[model].values()
    assert epoch.compiled._cache_size() == 1  # traced once for three calls
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 9
