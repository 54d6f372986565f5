"""A convolution by hand: 3x3 filters, ReLU and 2x2 max pooling in numpy
on one Fashion-MNIST image, equal to keras.layers.Conv2D and
MaxPooling2D with the same weights (lesson 4's spreadsheet of a 7).

Eight edge filters (top, right, bottom, left and the four diagonals,
each a rotation of two 3x3 patterns) slide over the image: each output
pixel is the sum of the 3x3 patch times the filter, plus a bias (what
Keras calls a convolution is this correlation, unflipped). ReLU keeps the
positive part; pooling keeps the largest of each 2x2 block.

    python recipes/convolution_by_hand.py [--index 0] [--plot conv.png]
    python recipes/convolution_by_hand.py --check   # exit 1 on a mismatch
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

TOP = np.array([[-1.0, -1.0, -1.0],
                [1.0, 1.0, 1.0],
                [0.0, 0.0, 0.0]])
DIAGONAL = np.array([[-1.0, -1.0, 1.0],
                     [-1.0, 1.0, 0.0],
                     [1.0, 0.0, 0.0]])
NAMES = ("top", "left", "bottom", "right",
         "top-left", "bottom-left", "bottom-right", "top-right")


def filters():
    """(3, 3, 8): the two patterns, each turned four times."""
    straight = [np.rot90(TOP, k) for k in range(4)]
    diagonal = [np.rot90(DIAGONAL, k) for k in range(4)]
    return np.stack(straight + diagonal, axis=-1)


def conv2d(image, kernels, bias):
    """'valid' correlation: image (h, w), kernels (3, 3, n), bias (n,)."""
    kh, kw, n = kernels.shape
    h, w = image.shape[0] - kh + 1, image.shape[1] - kw + 1
    out = np.zeros((h, w, n))
    for i in range(h):
        for j in range(w):
            patch = image[i:i + kh, j:j + kw]
            out[i, j] = np.tensordot(patch, kernels, axes=2) + bias
    return out


def relu(x):
    return np.maximum(x, 0)


def max_pool(x, size=2):
    """Largest of each size x size block; a ragged edge is dropped."""
    h, w = x.shape[0] // size, x.shape[1] // size
    x = x[:h * size, :w * size]
    return x.reshape(h, size, w, size, -1).max(axis=(1, 3))


def by_keras(image, kernels, bias):
    import keras

    inputs = keras.Input(image.shape + (1,))
    conv = keras.layers.Conv2D(kernels.shape[-1], 3, activation="relu",
                               name="conv")
    pooled = keras.layers.MaxPooling2D(2, name="pool")(conv(inputs))
    model = keras.Model(inputs, [conv.output, pooled])
    conv.set_weights([kernels[:, :, None, :].astype("float32"),
                      bias.astype("float32")])
    a, p = model.predict(image[None, ..., None].astype("float32"),
                         verbose=0)
    return np.asarray(a[0], "float64"), np.asarray(p[0], "float64")


def plot(path, image, title, kernels, activations, pooled):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import kerasdl

    n = kernels.shape[-1]
    fig, axes = plt.subplots(3, n + 1, figsize=(2 * (n + 1), 6.5))
    axes[0, 0].imshow(image, cmap="gray")
    axes[0, 0].set_title(title, fontsize=9)
    for ax in axes[1:, 0]:
        ax.remove()
    for k in range(n):
        axes[0, k + 1].imshow(kernels[:, :, k], cmap="RdBu", vmin=-1,
                              vmax=1)
        axes[0, k + 1].set_title(NAMES[k], fontsize=9)
        axes[1, k + 1].imshow(activations[:, :, k], cmap="gray")
        axes[2, k + 1].imshow(pooled[:, :, k], cmap="gray")
    axes[1, 1].set_ylabel("conv + ReLU")
    axes[2, 1].set_ylabel("2x2 max pool")
    for ax in fig.axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    kerasdl.save_figure(fig, path)  # closes it


def main(argv=None):
    import kerasdl

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=int, default=0,
                        help="image of the sample's training set (0..4999)")
    parser.add_argument("--plot", metavar="PNG",
                        help="draw the input, filters and activations")
    parser.add_argument("--check", action="store_true",
                        help="assert the equalities; exit 1 on a mismatch")
    args = parser.parse_args(argv)
    (x, y), _, names = kerasdl.load_fashion_sample(channels_last=False)
    if not 0 <= args.index < len(x):
        parser.error(f"--index must be in 0..{len(x) - 1}; received "
                     f"{args.index}")
    if args.plot and not os.path.isdir(os.path.dirname(
            os.path.abspath(args.plot))):
        parser.error(f"--plot: no folder for {args.plot!r}")

    image = x[args.index] / 255.0
    kernels = filters()
    bias = np.linspace(-0.2, 0.2, kernels.shape[-1])  # not all zero
    activations = relu(conv2d(image, kernels, bias))
    pooled = max_pool(activations)
    keras_act, keras_pool = by_keras(image, kernels, bias)

    print(f"image {args.index}: {names[y[args.index]]}, {image.shape}; "
          f"filters {kernels.shape}; activations {activations.shape}; "
          f"pooled {pooled.shape}")
    print(f"{'filter':<13} {'mean act.':>10} {'max act.':>9} "
          f"{'> 0':>6} {'|numpy - Keras|':>16}")
    for k, name in enumerate(NAMES):
        gap = max(np.abs(activations[..., k] - keras_act[..., k]).max(),
                  np.abs(pooled[..., k] - keras_pool[..., k]).max())
        print(f"{name:<13} {activations[..., k].mean():10.4f} "
              f"{activations[..., k].max():9.4f} "
              f"{(activations[..., k] > 0).mean():6.1%} {gap:16.2e}")
    if args.plot:
        plot(args.plot, image, names[y[args.index]], kernels, activations,
             pooled)
        print(f"plot written to {args.plot}")
    if args.check:
        failures = []
        if keras_act.shape != activations.shape:
            failures.append(f"Conv2D gives {keras_act.shape}, numpy "
                            f"{activations.shape}")
        elif not np.allclose(activations, keras_act, atol=1e-5):
            failures.append("numpy convolution + ReLU != Conv2D")
        if keras_pool.shape != pooled.shape:
            failures.append(f"MaxPooling2D gives {keras_pool.shape}, numpy "
                            f"{pooled.shape}")
        elif not np.allclose(pooled, keras_pool, atol=1e-5):
            failures.append("numpy max pooling != MaxPooling2D")
        if not (activations > 0).any():
            failures.append("every activation is zero: nothing compared")
        for failure in failures:
            print(f"CHECK FAILED: {failure}", file=sys.stderr)
        if failures:
            return 1
        print("check passed: numpy convolution, ReLU and pooling = "
              "keras.layers.Conv2D + MaxPooling2D")
    return 0


if __name__ == "__main__":
    sys.exit(main())
