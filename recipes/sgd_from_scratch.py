"""SGD from scratch: fit y = a*x + b by hand (the course's sgd-intro).

Thirty points on the line a=3, b=8 (x uniform in [0, 1)); start from the
guess a=-1, b=1 and take steps of learning rate 0.01 down the gradient of
the mean squared error, computed by hand:

    loss = mean((a*x + b - y)^2)
    dloss/db = mean(2 (a*x + b - y))        dloss/da = mean(2 x (a*x + b - y))

The hand gradient is checked against central finite differences and
against Keras' own differentiation (one step of keras.optimizers.SGD with
rate 1 moves the weights by exactly minus the gradient), and the whole
path against keras.optimizers.SGD(0.01) under model.fit.

    python recipes/sgd_from_scratch.py [--steps 400] [--plot sgd.png]
    python recipes/sgd_from_scratch.py --check     # exit 1 on a mismatch
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

A, B, N = 3.0, 8.0, 30
A0, B0, LR = -1.0, 1.0, 0.01


def data(seed=42):
    x = np.random.default_rng(seed).random(N)
    return x, A * x + B


def loss(a, b, x, y):
    return float(np.mean((a * x + b - y) ** 2))


def grad(a, b, x, y):
    """The gradient of the mean squared error, by hand: (d/da, d/db)."""
    dy = 2 * (a * x + b - y)
    return float(np.mean(x * dy)), float(np.mean(dy))


def finite_difference(a, b, x, y, h=1e-6):
    return ((loss(a + h, b, x, y) - loss(a - h, b, x, y)) / (2 * h),
            (loss(a, b + h, x, y) - loss(a, b - h, x, y)) / (2 * h))


def sgd(x, y, steps, lr=LR):
    """The hand-written loop; returns the (a, b, loss) before each step
    and after the last."""
    a, b, path = A0, B0, []
    for _ in range(steps):
        path.append((a, b, loss(a, b, x, y)))
        da, db = grad(a, b, x, y)
        a, b = a - lr * da, b - lr * db
    path.append((a, b, loss(a, b, x, y)))
    return np.array(path)


def keras_line(lr):
    """y = a*x + b as a one-unit Dense layer started at the guess."""
    import keras

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
        1, name="line", kernel_initializer=keras.initializers.Constant(A0),
        bias_initializer=keras.initializers.Constant(B0))])
    model.compile(keras.optimizers.SGD(lr), "mse")
    return model


def keras_gradient(x, y):
    """Keras' gradient at the guess: one SGD step at rate 1."""
    model = keras_line(1.0)
    model.train_on_batch(x[:, None], y)
    a, b = (float(np.ravel(w)[0]) for w in model.get_weights())
    return A0 - a, B0 - b


def keras_path(x, y, steps):
    model = keras_line(LR)
    # One epoch of `steps` copies of the data: the same full-batch steps as
    # `steps` epochs, without an epoch's overhead each.
    model.fit(np.tile(x, steps)[:, None], np.tile(y, steps), batch_size=N,
              shuffle=False, verbose=0)
    return tuple(float(np.ravel(w)[0]) for w in model.get_weights())


def plot(path, x, y, trail):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import kerasdl

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    left.scatter(x, y, s=12, color="k", label="data")
    grid = np.linspace(0, 1, 2)
    marks = np.unique(np.geomspace(1, len(trail) - 1, 6).astype(int))
    for i in [0, *marks]:
        a, b, _ = trail[i]
        left.plot(grid, a * grid + b, alpha=0.3 + 0.7 * i / marks[-1],
                  label=f"step {i}")
    left.set(xlabel="x", ylabel="y", title="the line as SGD moves it")
    left.legend(fontsize=8)
    aa, bb = np.meshgrid(np.linspace(-2, 5, 120), np.linspace(0, 10, 120))
    z = ((aa[..., None] * x + bb[..., None] - y) ** 2).mean(-1)
    right.contour(aa, bb, np.log(z + 1e-3), levels=25, cmap="viridis")
    right.plot(trail[:, 0], trail[:, 1], ".-", ms=3, color="tab:red")
    right.plot([A], [B], "k*", ms=12)
    right.set(xlabel="a", ylabel="b", title="the path over the loss")
    fig.tight_layout()
    kerasdl.save_figure(fig, path)  # closes it


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400,
                        help="SGD steps (default 400)")
    parser.add_argument("--plot", metavar="PNG", help="draw the path")
    parser.add_argument("--check", action="store_true",
                        help="assert the equalities; exit 1 on a mismatch")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1; received {args.steps}")
    if args.plot and not os.path.isdir(os.path.dirname(
            os.path.abspath(args.plot))):
        parser.error(f"--plot: no folder for {args.plot!r}")

    x, y = data()
    trail = sgd(x, y, args.steps)
    print(f"{'step':>5} {'loss':>10} {'a':>8} {'b':>8}")
    every = max(1, args.steps // 10)
    for i in [*range(0, args.steps, every), args.steps]:
        a, b, value = trail[i]
        print(f"{i:5d} {value:10.5f} {a:8.4f} {b:8.4f}")
    a, b, _ = trail[-1]
    print(f"after {args.steps} steps: a={a:.4f}, b={b:.4f} "
          f"(true a={A:g}, b={B:g})")

    by_hand = grad(A0, B0, x, y)
    numeric = finite_difference(A0, B0, x, y)
    by_keras = keras_gradient(x, y)
    final = keras_path(x, y, args.steps)
    print(f"gradient at the guess: by hand {by_hand[0]:.6f}, "
          f"{by_hand[1]:.6f}; finite differences {numeric[0]:.6f}, "
          f"{numeric[1]:.6f}; Keras {by_keras[0]:.6f}, {by_keras[1]:.6f}")
    print(f"keras.optimizers.SGD({LR}) after {args.steps} steps: "
          f"a={final[0]:.4f}, b={final[1]:.4f}")
    if args.plot:
        plot(args.plot, x, y, trail)
        print(f"plot written to {args.plot}")
    if args.check:
        failures = []
        if not np.allclose(by_hand, numeric, rtol=1e-6, atol=1e-8):
            failures.append("hand gradient != finite differences")
        if not np.allclose(by_hand, by_keras, rtol=1e-5, atol=1e-5):
            failures.append("hand gradient != Keras gradient")
        if not np.allclose(trail[-1, :2], final, rtol=1e-4, atol=1e-4):
            failures.append("hand SGD path != keras.optimizers.SGD path")
        if not trail[-1, 2] < trail[0, 2]:
            failures.append("the loss did not fall")
        for failure in failures:
            print(f"CHECK FAILED: {failure}", file=sys.stderr)
        if failures:
            return 1
        print("check passed: hand gradient = finite differences = Keras; "
              "hand SGD = keras.optimizers.SGD")
    return 0


if __name__ == "__main__":
    sys.exit(main())
