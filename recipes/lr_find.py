"""Find a learning rate, then train with one-cycle at it.

Runs the LR finder on the bundled Fashion-MNIST sample with the course's
BN-first linear model, prints fastai's four suggestions, saves the plot,
and trains two epochs of one-cycle at the valley suggestion. Copy it and
swap in your own model and data.

    python recipes/lr_find.py [--plot lr_find.png]
"""

import argparse

import keras

import kerasdl

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--plot", default="lr_find.png")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

(x, y), (xv, yv), _ = kerasdl.load_fashion_sample()
x, xv = x.astype("float32"), xv.astype("float32")

keras.utils.set_random_seed(args.seed)
model = kerasdl.linear_bn(x.shape[1:], 10)
model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy",
              metrics=["accuracy"])

# The sweep: weights and optimizer come back exactly as they were.
found = kerasdl.lr_find(model, (x, y), batch_size=64, seed=args.seed)
print(found)
found.save_plot(args.plot)
print(f"plot written to {args.plot}")

kerasdl.fit_one_cycle(model, (x, y), 2, found.valley, batch_size=64,
                      validation_data=(xv, yv), verbose=2)
