"""Optimizers from scratch: SGD, momentum, Adagrad, RMSProp, Adam and Eve
in numpy, each a few lines built on the one before, each checked step for
step against its Keras class (lesson 4's spreadsheet, as a script).

Two problems, both with mini-batches taken in order:

- the line y = 3x + 8 of sgd_from_scratch.py (30 points, batches of 5,
  from a=-1, b=1);
- a linear softmax classifier on 2,000 images of the bundled
  Fashion-MNIST sample (batches of 100, from small random weights).

Every numpy update is compared with keras.optimizers.SGD / SGD(momentum)
/ Adagrad / RMSprop / Adam and kerasdl.Eve after every step. Eve gets
each batch's loss one batch later under fit (kerasdl.LossFeedback), and
the numpy Eve is fed the same way. Then the gradient-ratio annealer
(divide the rate by 4 when an epoch's sum of squared gradients more than
doubles) runs on the line, in numpy and as kerasdl.GradientRatioAnnealer.

    python recipes/optimizers_from_scratch.py [--plot optimizers.png]
    python recipes/optimizers_from_scratch.py --check   # exit 1 on a mismatch
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

# ---------------------------------------------------------------- numpy
# Each optimizer maps (weights, gradients, loss fed back) to new weights.
# The constants are the Keras defaults, so the numbers match Keras'.


class SGD:
    def __init__(self, lr):
        self.lr = lr

    def step(self, w, g, loss=None):
        return [p - self.lr * gi for p, gi in zip(w, g)]


class Momentum(SGD):
    """Keep a velocity: a running sum of past steps, decayed by beta."""

    def __init__(self, lr, beta=0.9):
        self.lr, self.beta, self.v = lr, beta, None

    def step(self, w, g, loss=None):
        if self.v is None:
            self.v = [np.zeros_like(p) for p in w]
        self.v = [self.beta * v - self.lr * gi for v, gi in zip(self.v, g)]
        return [p + v for p, v in zip(w, self.v)]


class Adagrad(SGD):
    """Divide each weight's step by the root of its summed squared
    gradients (Keras starts the sum at 0.1)."""

    def __init__(self, lr, eps=1e-7):
        self.lr, self.eps, self.acc = lr, eps, None

    def step(self, w, g, loss=None):
        if self.acc is None:
            self.acc = [np.full_like(p, 0.1) for p in w]
        self.acc = [a + gi ** 2 for a, gi in zip(self.acc, g)]
        return [p - self.lr * gi / np.sqrt(a + self.eps)
                for p, gi, a in zip(w, g, self.acc)]


class RMSProp(Adagrad):
    """Adagrad with a decaying average in place of the sum."""

    def __init__(self, lr, rho=0.9, eps=1e-7):
        self.lr, self.rho, self.eps, self.acc = lr, rho, eps, None

    def step(self, w, g, loss=None):
        if self.acc is None:
            self.acc = [np.zeros_like(p) for p in w]
        self.acc = [self.rho * a + (1 - self.rho) * gi ** 2
                    for a, gi in zip(self.acc, g)]
        return [p - self.lr * gi / np.sqrt(a + self.eps)
                for p, gi, a in zip(w, g, self.acc)]


class Adam(SGD):
    """Momentum's average of gradients over RMSProp's average of squares,
    both corrected for starting at zero."""

    def __init__(self, lr, b1=0.9, b2=0.999, eps=1e-7):
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps
        self.t, self.m, self.v = 0, None, None

    def moments(self, w, g):
        if self.m is None:
            self.m = [np.zeros_like(p) for p in w]
            self.v = [np.zeros_like(p) for p in w]
        self.t += 1
        self.m = [self.b1 * m + (1 - self.b1) * gi
                  for m, gi in zip(self.m, g)]
        self.v = [self.b2 * v + (1 - self.b2) * gi ** 2
                  for v, gi in zip(self.v, g)]

    def step(self, w, g, loss=None):
        self.moments(w, g)
        # Keras folds both corrections into the rate.
        lr = self.lr * np.sqrt(1 - self.b2 ** self.t) / (1 - self.b1 ** self.t)
        return [p - lr * m / (np.sqrt(v) + self.eps)
                for p, m, v in zip(w, self.m, self.v)]


class Eve(Adam):
    """Adam whose step is divided by d, a smoothed, clipped relative
    change of the loss (Koushik & Hayashi 2016, Algorithm 1)."""

    def __init__(self, lr, b1=0.9, b2=0.999, b3=0.999, k=0.1, K=10.0,
                 eps=1e-8):
        super().__init__(lr, b1, b2, eps)
        self.b3, self.k, self.K, self.f_hat, self.d = b3, k, K, None, 1.0

    def step(self, w, g, loss=None):
        if loss is not None and self.f_hat is None:
            self.f_hat = loss
        elif loss is not None:
            lo, hi = ((self.k + 1, self.K + 1) if loss >= self.f_hat
                      else (1 / (self.K + 1), 1 / (self.k + 1)))
            c = min(max(lo, loss / self.f_hat), hi)
            r = abs(c - 1) / min(c, 1)  # |f_hat' - f_hat| / min(...)
            self.f_hat *= c
            self.d = self.b3 * self.d + (1 - self.b3) * r
        self.moments(w, g)
        m_hat = [m / (1 - self.b1 ** self.t) for m in self.m]
        v_hat = [v / (1 - self.b2 ** self.t) for v in self.v]
        return [p - self.lr * m / (self.d * np.sqrt(v) + self.eps)
                for p, m, v in zip(w, m_hat, v_hat)]


# ------------------------------------------------------------- problems


def line_problem():
    x = np.random.default_rng(42).random(30)
    return {"name": "line y = 3x + 8", "x": x[:, None], "y": 3 * x + 8,
            "w0": [np.array([[-1.0]]), np.array([1.0])], "batch": 5,
            "epochs": 20, "classes": None}


def fashion_problem():
    import kerasdl

    (x, y), _, _ = kerasdl.load_fashion_sample(channels_last=False)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))[:2000]
    x = x[order].reshape(len(order), -1).astype("float64") / 255
    # Small random weights: from zeros, a balanced batch gives some
    # biases a gradient of exactly 0, which float32 sees as +-1e-9 and
    # the first Adam-like step (about rate * sign(g)) blows up.
    w0 = [rng.normal(0, 0.01, (784, 10)), rng.normal(0, 0.01, 10)]
    return {"name": "Fashion-MNIST linear", "x": x, "y": y[order],
            "w0": w0, "batch": 100,
            "epochs": 2, "classes": 10}


def loss_and_grads(problem, w, x, y):
    """Mean squared error of the line, or softmax cross-entropy, and its
    gradients by hand."""
    out = x @ w[0] + w[1]
    if problem["classes"] is None:
        err = out[:, 0] - y
        dout = (2 * err / len(y))[:, None]
        loss = np.mean(err ** 2)
    else:
        out = out - out.max(1, keepdims=True)
        p = np.exp(out) / np.exp(out).sum(1, keepdims=True)
        loss = -np.mean(np.log(p[np.arange(len(y)), y]))
        dout = p
        dout[np.arange(len(y)), y] -= 1
        dout /= len(y)
    return float(loss), [x.T @ dout, dout.sum(0)]


def batches(problem):
    n, b = len(problem["y"]), problem["batch"]
    for _ in range(problem["epochs"]):
        for i in range(0, n, b):
            yield problem["x"][i:i + b], problem["y"][i:i + b]


def run_numpy(problem, optimizer):
    """Weights after each step and the loss on all the data before the
    first step and after each."""
    w, fed, path, curve = problem["w0"], None, [], []
    curve.append(loss_and_grads(problem, w, problem["x"], problem["y"])[0])
    for x, y in batches(problem):
        loss, g = loss_and_grads(problem, w, x, y)
        w = optimizer.step(w, g, fed)
        fed = loss  # Eve hears of it one batch later, as under fit
        path.append(w)
        curve.append(loss_and_grads(problem, w, problem["x"],
                                    problem["y"])[0])
    return path, np.array(curve)


# ---------------------------------------------------------------- Keras


def keras_optimizer(name, lr):
    import keras

    import kerasdl

    return {"SGD": lambda: keras.optimizers.SGD(lr),
            "momentum": lambda: keras.optimizers.SGD(lr, momentum=0.9),
            "Adagrad": lambda: keras.optimizers.Adagrad(lr),
            "RMSProp": lambda: keras.optimizers.RMSprop(lr),
            "Adam": lambda: keras.optimizers.Adam(lr),
            "Eve": lambda: kerasdl.Eve(lr)}[name]()


def keras_model(problem, optimizer):
    import keras

    units = problem["classes"] or 1
    model = keras.Sequential([
        keras.Input((problem["x"].shape[1],)),
        keras.layers.Dense(units, name="linear")])
    model.set_weights([w.astype("float32") for w in problem["w0"]])
    loss = ("mse" if problem["classes"] is None else
            keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.compile(optimizer, loss)
    return model


def run_keras(problem, name, lr, callbacks=()):
    import keras

    import kerasdl

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.path = []

        def on_train_batch_end(self, batch, logs=None):
            self.path.append([np.asarray(w, "float64")
                              for w in self.model.get_weights()])

    record = Record()
    model = keras_model(problem, keras_optimizer(name, lr))
    extra = [kerasdl.LossFeedback()] if name == "Eve" else []
    model.fit(problem["x"].astype("float32"), problem["y"],
              batch_size=problem["batch"], epochs=problem["epochs"],
              shuffle=False, verbose=0,
              callbacks=[*extra, *callbacks, record])
    return record.path


RATES = {  # (line, Fashion-MNIST)
    "SGD": (0.1, 0.1),
    "momentum": (0.02, 0.1),
    "Adagrad": (1.0, 0.05),
    "RMSProp": (0.1, 0.003),
    "Adam": (0.3, 0.003),
    "Eve": (0.3, 0.003),
}
MAKERS = {"SGD": SGD, "momentum": Momentum, "Adagrad": Adagrad,
          "RMSProp": RMSProp, "Adam": Adam, "Eve": Eve}


def largest_gap(path_a, path_b):
    """Largest difference of any weight at any step, relative to the
    weight's size (at least 1)."""
    return max(float(np.max(np.abs(a - b) / np.maximum(1, np.abs(b))))
               for wa, wb in zip(path_a, path_b) for a, b in zip(wa, wb))


# ------------------------------------------------------- the annealer


def annealed_numpy(problem, lr, epochs, threshold=2.0, factor=4.0):
    """SGD with the annealer (``threshold=inf``: plain SGD): the rate of
    each epoch, the loss on all the data after each, the final weights."""
    w, previous, rates, losses = problem["w0"], None, [], []
    for _ in range(epochs):
        total = 0.0
        for x, y in batches(dict(problem, epochs=1)):
            _, g = loss_and_grads(problem, w, x, y)
            total += sum(float(np.sum(gi ** 2)) for gi in g)
            w = [p - lr * gi for p, gi in zip(w, g)]
        if previous and total / previous > threshold:
            lr /= factor
        previous = total
        rates.append(lr)
        losses.append(loss_and_grads(problem, w, problem["x"],
                                     problem["y"])[0])
    return rates, losses, w


def annealed_keras(problem, lr, epochs):
    import keras

    import kerasdl

    model = keras_model(problem, kerasdl.GradientSum(
        keras.optimizers.SGD(lr)))
    history = model.fit(problem["x"].astype("float32"), problem["y"],
                        batch_size=problem["batch"], epochs=epochs,
                        shuffle=False, verbose=0,
                        callbacks=[kerasdl.GradientRatioAnnealer()])
    weights = [np.asarray(w, "float64") for w in model.get_weights()]
    return history.history["learning_rate"], weights


# ---------------------------------------------------------------- main


def plot(path, curves):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import kerasdl

    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 4.5),
                             squeeze=False)
    for ax, (title, by_name) in zip(axes[0], curves.items()):
        for name, curve in by_name.items():
            ax.plot(curve, label=name)
        ax.set(yscale="log", xlabel="step", ylabel="loss on all the data",
               title=title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    kerasdl.save_figure(fig, path)  # closes it


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", metavar="PNG", help="draw the loss curves")
    parser.add_argument("--check", action="store_true",
                        help="assert the equalities; exit 1 on a mismatch")
    parser.add_argument("--no-fashion", action="store_true",
                        help="the line only")
    args = parser.parse_args(argv)
    if args.plot and not os.path.isdir(os.path.dirname(
            os.path.abspath(args.plot))):
        parser.error(f"--plot: no folder for {args.plot!r}")

    problems = [line_problem()] + ([] if args.no_fashion
                                   else [fashion_problem()])
    failures, curves = [], {}
    for column, problem in enumerate(problems):
        steps = problem["epochs"] * -(-len(problem["y"]) // problem["batch"])
        print(f"\n{problem['name']}: loss on all the data after {steps} "
              f"steps (batches of {problem['batch']})")
        print(f"{'optimizer':<10} {'rate':>7} {'start':>9} {'numpy':>11} "
              f"{'largest gap to Keras':>21}")
        curves[problem["name"]] = {}
        for name, maker in MAKERS.items():
            lr = RATES[name][column]
            path, curve = run_numpy(problem, maker(lr))
            gap = largest_gap(run_keras(problem, name, lr), path)
            curves[problem["name"]][name] = curve
            print(f"{name:<10} {lr:7g} {curve[0]:9.4f} {curve[-1]:11.6f} "
                  f"{gap:21.2e}")
            if not gap < 1e-4:
                failures.append(f"{name} on {problem['name']}: numpy and "
                                f"Keras differ by {gap:.2e}")

    line = line_problem()
    lr, epochs = 0.8, 12
    rates, losses, w = annealed_numpy(line, lr, epochs)
    keras_rates, keras_w = annealed_keras(line, lr, epochs)
    plain_losses = annealed_numpy(line, lr, epochs, threshold=np.inf)[1]
    print(f"\ngradient-ratio annealer, SGD at rate {lr} on the line "
          f"(loss on all the data after each epoch, with and without):")
    print(f"{'epoch':>5} {'rate (numpy)':>13} {'rate (Keras)':>13} "
          f"{'loss':>10} {'plain SGD':>11}")
    for epoch, (r, kr, loss, p) in enumerate(zip(
            rates, keras_rates, losses, plain_losses)):
        print(f"{epoch:5d} {r:13.5f} {kr:13.5f} {loss:10.5f} {p:11.4g}")
    if not np.allclose(rates, keras_rates, rtol=1e-6):
        failures.append("the annealer's rates differ between numpy and "
                        "kerasdl.GradientRatioAnnealer")
    if not all(np.allclose(a, b, rtol=1e-4, atol=1e-4)
               for a, b in zip(w, keras_w)):
        failures.append("annealed SGD: numpy and Keras weights differ")
    if not min(rates) < lr:
        failures.append("the annealer never cut the rate")

    if args.plot:
        plot(args.plot, curves)
        print(f"plot written to {args.plot}")
    if args.check:
        for failure in failures:
            print(f"CHECK FAILED: {failure}", file=sys.stderr)
        if failures:
            return 1
        print("check passed: every numpy optimizer = its Keras class, step "
              "for step; the annealers agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
