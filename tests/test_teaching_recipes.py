"""The teaching recipes: each --check passes in a fresh process on this
backend (and writes its PNG completely), fails when the numbers disagree,
and answers a command-line mistake with one line and exit code 2."""

import importlib.util
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

RECIPES = pathlib.Path(__file__).resolve().parent.parent / "recipes"


def _run(name, *args, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, str(RECIPES / name), *args],
                          capture_output=True, text=True, env=env,
                          timeout=timeout)


def _load(name):
    spec = importlib.util.spec_from_file_location(
        name[:-3], RECIPES / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _assert_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == [path.name]


@pytest.mark.one_backend
def test_sgd_from_scratch_check_and_plot(tmp_path):
    png = tmp_path / "plots" / "sgd.png"
    png.parent.mkdir()
    result = _run("sgd_from_scratch.py", "--check", "--steps", "200",
                  "--plot", str(png))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "check passed" in result.stdout
    _assert_png(png)
    # The loss column falls from the first printed row to the last.
    rows = [line.split() for line in result.stdout.splitlines()
            if line[:5].strip().isdigit()]
    losses = [float(r[1]) for r in rows]
    assert losses[-1] < losses[0] / 100


def test_sgd_hand_gradient_against_finite_differences():
    sgd = _load("sgd_from_scratch.py")
    x, y = sgd.data()
    rng = np.random.default_rng(1)
    for a, b in rng.normal(size=(5, 2)) * 4:
        np.testing.assert_allclose(sgd.grad(a, b, x, y),
                                   sgd.finite_difference(a, b, x, y),
                                   rtol=1e-6)


def test_sgd_check_fails_on_a_wrong_gradient(monkeypatch, capsys):
    sgd = _load("sgd_from_scratch.py")
    right = sgd.grad
    monkeypatch.setattr(sgd, "grad", lambda a, b, x, y: tuple(
        1.01 * g for g in right(a, b, x, y)))
    assert sgd.main(["--check", "--steps", "3"]) == 1
    err = capsys.readouterr().err
    assert "hand gradient != finite differences" in err


@pytest.mark.one_backend
def test_optimizers_from_scratch_check_and_plot(tmp_path):
    png = tmp_path / "optimizers.png"
    result = _run("optimizers_from_scratch.py", "--check", "--no-fashion",
                  "--plot", str(png))
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("SGD", "momentum", "Adagrad", "RMSProp", "Adam", "Eve"):
        assert f"\n{name} " in result.stdout
    assert "check passed" in result.stdout
    _assert_png(png)


def test_numpy_eve_is_adam_until_a_loss_arrives():
    o = _load("optimizers_from_scratch.py")
    w = [np.array([1.0, -2.0])]
    eve, adam = o.Eve(0.1, eps=1e-7), o.Adam(0.1)
    for g in ([0.5, 1.0], [0.2, -0.3]):
        we = eve.step(w, [np.array(g)])
        wa = adam.step(w, [np.array(g)])
        # Keras' Adam puts epsilon outside the bias correction, Eve
        # inside: the same step up to epsilon.
        np.testing.assert_allclose(we[0], wa[0], rtol=1e-5)
    eve.step(w, [np.array([0.1, 0.1])], 1.0)
    eve.step(w, [np.array([0.1, 0.1])], 3.0)  # the loss tripled
    assert eve.d > 1.0
    assert eve.f_hat == pytest.approx(3.0)


@pytest.mark.one_backend
def test_convolution_by_hand_check_and_plot(tmp_path):
    png = tmp_path / "conv.png"
    result = _run("convolution_by_hand.py", "--check", "--index", "7",
                  "--plot", str(png))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "check passed" in result.stdout
    _assert_png(png)


def test_convolution_pieces():
    conv = _load("convolution_by_hand.py")
    image = np.zeros((6, 6))
    image[3:, :] = 1.0  # a horizontal edge
    kernels = conv.filters()
    out = conv.relu(conv.conv2d(image, kernels, np.zeros(8)))
    assert out.shape == (4, 4, 8)
    assert out[:, :, 0].max() == 3.0  # the "top" filter fires on it
    assert out[:, :, 1].max() == 0.0  # the "left" one does not
    pooled = conv.max_pool(np.arange(50.0).reshape(5, 5, 2))
    np.testing.assert_array_equal(pooled[..., 0], [[12, 16], [32, 36]])


def test_convolution_check_fails_without_relu(monkeypatch, capsys):
    conv = _load("convolution_by_hand.py")
    monkeypatch.setattr(conv, "relu", lambda x: x)
    assert conv.main(["--check"]) == 1
    assert "!= Conv2D" in capsys.readouterr().err


def test_collab_plain_model_equals_dot_bias():
    import keras

    collab = _load("collab_from_scratch.py")
    assert collab.one_hot_lookup_equals_embedding(7, 4) < 1e-6
    rng = np.random.default_rng(0)
    batch = {"user": rng.integers(0, 5, 32).astype("int32"),
             "item": rng.integers(0, 9, 32).astype("int32")}
    for wd in (0.0, 1e-3):
        keras.utils.set_random_seed(0)
        plain = collab.plain_dot_bias(5, 9, 4, wd)
        library = collab.library_dot_bias(plain, 5, 9, 4, wd)
        ours = keras.ops.convert_to_numpy(plain(batch))
        np.testing.assert_allclose(
            ours, keras.ops.convert_to_numpy(library(batch)), rtol=1e-6,
            atol=1e-7)
        assert ((ours > 0) & (ours < 5.5)).all()
        a, b = collab.penalty(plain, batch), collab.penalty(library, batch)
        assert a == pytest.approx(b, rel=1e-5)
        assert (a > 0) == (wd > 0)


# About 20 s of CPU a backend: the real data, four fits of one epoch.
@pytest.mark.large
def test_collab_from_scratch_check(shared_data):
    data = shared_data("ml-latest-small")
    result = _run("collab_from_scratch.py", "--data", str(data), "--check",
                  "--factors", "16", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "check passed" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines()
            if line.strip()[:1].isdigit() and len(line.split()) == 5]
    assert [float(r[0]) for r in rows] == [0.0, 1e-4]
    for row in rows:
        rmse = [float(v) for v in row[1:]]
        assert all(0.5 < v < 1.5 for v in rmse), row


@pytest.mark.one_backend
@pytest.mark.parametrize("name, args, words", [
    ("sgd_from_scratch.py", ["--steps", "0"], "--steps must be >= 1"),
    ("sgd_from_scratch.py", ["--steps", "many"], "invalid int value"),
    ("optimizers_from_scratch.py", ["--plot", "/nonexistent/x.png"],
     "no folder"),
    ("convolution_by_hand.py", ["--index", "5000"], "--index must be in"),
    ("collab_from_scratch.py", ["--wd", "0"], "--wd must be > 0"),
])
def test_command_line_mistakes(name, args, words):
    result = _run(name, *args, timeout=120)
    assert result.returncode == 2
    last = [line for line in result.stderr.splitlines() if line.strip()][-1]
    assert words in last and "Traceback" not in result.stderr
