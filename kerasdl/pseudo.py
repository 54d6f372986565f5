"""Pseudo-labelling: the model's own predictions on unlabelled data, mixed
into training so that a fixed share of every batch is pseudo-labelled."""

import keras
import numpy as np

from kerasdl import _backend
from kerasdl import _validate
from kerasdl.training import _checks
from kerasdl.data import mixed
from kerasdl.data.mixed import MixedBatches


def pseudo_label(model, x, soft=True, threshold=None, batch_size=256,
                 flip=False):
    """Predicts labels for unlabelled ``x``.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2,)),
    ...                           keras.layers.Dense(3, "softmax")])
    >>> idx, targets = pseudo_label(model, np.zeros((5, 2)), soft=False)
    >>> idx.tolist(), targets.shape, targets.sum(axis=1).tolist()
    ([0, 1, 2, 3, 4], (5, 3), [1.0, 1.0, 1.0, 1.0, 1.0])

    Args:
        model: keras.Model with softmax outputs ``(n, k)``.
        x: array (or memory map) of unlabelled inputs.
        soft: bool. Keep the predicted probabilities (``True``, as in the
            course) or one-hot the most likely class. Defaults to ``True``.
        threshold: float in (0, 1) or None. Keep only rows whose largest
            probability reaches it. Defaults to ``None`` (keep all).
        batch_size: int. Prediction batch size. Defaults to 256.
        flip: bool. Average the probabilities predicted on ``x`` and on
            ``x`` flipped left-right (images ``(n, height, width, ...)``),
            a cheap test-time augmentation. Defaults to ``False``.

    Returns:
        ``(indices, targets)``: the rows of ``x`` kept and their float32
        targets ``(len(indices), k)``, rows summing to 1.

    Raises:
        TypeError: arguments of the wrong type.
        ValueError: ``threshold`` not in ``(0, 1)``, ``batch_size < 1``,
            empty ``x``, ``flip`` without images, outputs that are not
            probabilities, NaN or infinite predictions (from NaN inputs
            or a model whose weights turned to NaN).
    """
    _check_predict_args(model, x, soft, threshold, batch_size, flip)
    probs = np.asarray(model.predict(x, batch_size=batch_size, verbose=0),
                       dtype="float32")
    if flip:
        flipped = model.predict(np.asarray(x)[:, :, ::-1],
                                batch_size=batch_size, verbose=0)
        probs = (probs + np.asarray(flipped, dtype="float32")) / 2
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"Expected class probabilities (n, k >= 2) from the "
                         f"model, found shape {probs.shape}.")
    _check_finite_predictions(probs)
    sums = probs.sum(axis=1)
    if not np.allclose(sums, 1, atol=1e-2):
        raise ValueError(
            f"The model's outputs are not probabilities (row sums from "
            f"{sums.min():.3g} to {sums.max():.3g}). End the model with a "
            f"softmax."
        )
    probs /= sums[:, None]
    keep = np.arange(len(probs))
    if threshold is not None:
        keep = np.flatnonzero(probs.max(axis=1) >= threshold)
    probs = probs[keep]
    if not soft:
        probs = np.eye(probs.shape[1], dtype="float32")[probs.argmax(axis=1)]
    return keep, probs


def _check_predict_args(model, x, soft, threshold, batch_size, flip):
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: "
                        f"{type(model).__name__}.")
    _checks.flag(soft, "soft")
    _checks.flag(flip, "flip")
    if threshold is not None:
        _validate.fraction(threshold, "threshold",
                           hint="Rows whose top probability reaches it are "
                                "kept; try 0.9, or None to keep all.")
    _validate.integer(batch_size, "batch_size", low=1, hint="Try 256.")
    if not hasattr(x, "__len__") or not hasattr(x, "shape"):
        raise TypeError(f"`x` must be an array of unlabelled inputs. "
                        f"Received: {type(x).__name__}.")
    if len(x) == 0:
        raise ValueError("There are no unlabelled examples to pseudo-label "
                         "(x has 0 rows).")
    if flip and np.ndim(x) < 3:
        raise ValueError(f"`flip=True` needs images (n, height, width"
                         f"[, channels]); found shape {np.shape(x)}.")


def _check_finite_predictions(probs):
    bad = ~np.isfinite(probs).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"The model predicted NaN or infinite values for {len(rows)} of "
            f"{len(probs)} row(s) of `x`, the first at row {rows[0]}. Check "
            f"`x` for NaN or infinite values, and the model's weights (a "
            f"too high learning rate turns them to NaN).")


def pseudo_label_rounds(model, labelled, unlabelled, validation_data, *,
                        rounds=2, fraction=0.25, batch_size=64, epochs=1,
                        soft=True, threshold=None, weight=1.0, seed=0,
                        steps_per_epoch=None, augment=None,
                        labelled_augment=None, flip=False, replicas=None,
                        verbose=0,
                        **fit_kwargs):
    """The pseudo-labelling loop: predict, mix, fit; repeated ``rounds``.

    Round 0 is the model as given (trained on the labels alone). Each
    later round pseudo-labels ``unlabelled`` with the current model, trains
    on ``MixedBatches`` in which ``fraction`` of every batch is
    pseudo-labelled, and evaluates on ``validation_data``.

    Args:
        model: a compiled keras.Model with softmax outputs and a loss that
            takes one-hot / soft targets (``categorical_crossentropy``).
        labelled: ``(x, y)``; ``y`` as int labels or one-hot.
        unlabelled: array of inputs without labels.
        validation_data: ``(x, y)`` evaluated after every round.
        rounds: int. Pseudo-labelling rounds. Defaults to 2.
        fraction: float in (0, 1), or one per round. Pseudo-labelled share
            of each batch. Defaults to 0.25 (the course: 16 of 64).
        batch_size: int. Rows per batch; ``fraction * batch_size`` must be
            whole. Defaults to 64.
        epochs: int. Epochs per round (one pass over the labels each).
        soft, threshold, flip: as in ``pseudo_label``; ``threshold`` may
            also give one value per round (for example a rising one).
        weight: float. Sample weight of pseudo-labelled rows.
        seed: int. Seed of the batch mixing.
        steps_per_epoch: int or None. Batches per epoch; by default one pass
            over the labelled data (see ``MixedBatches``). Raise it to let
            the model see more of a large unlabelled set each round.
        augment: callable or None. Applied to the pseudo-labelled rows of
            every batch only (``MixedBatches``' ``augment``), while the
            pseudo-labels come from the clean images: consistency-style
            pseudo-labelling with a strong view such as
            ``kerasdl.data.augment.ArrayAugment(cutout=12)``. Defaults to
            ``None``.
        labelled_augment: callable or None. Likewise for the labelled
            rows. Defaults to ``None``.
        replicas: int or None. Passed to ``MixedBatches``; ``None`` takes
            the devices the model trains on under ``kerasdl.data_parallel``
            (1 without it), so each replica's share of a batch has the
            batch's composition.
        verbose: int. Passed to ``fit``.
        **fit_kwargs: other arguments for ``model.fit`` (callbacks ...).

    Returns:
        A list of dicts, one per round (0 first): ``round``, ``n_pseudo``
        and the validation metrics (``val_loss``, ``val_accuracy`` ...).

    Raises:
        TypeError: arguments of the wrong type (``rounds=2.5``).
        ValueError: bad values (a fraction or threshold not in ``(0,
            1)``, ``weight <= 0``, ``epochs < 1``, a fraction that does
            not split ``batch_size`` into whole rows, ``x`` and ``y`` of
            different lengths, NaN targets ...), all raised before the
            first prediction.
    """
    _check_loss(model)
    rounds = _validate.integer(rounds, "rounds", low=1, hint="Try 2.")
    x, y, xv, yv = _check_data(model, labelled, unlabelled, validation_data)
    fractions = _per_round(fraction, rounds, "fraction")
    thresholds = _per_round(threshold, rounds, "threshold")
    _check_round_args(fractions, thresholds, batch_size, epochs, soft,
                      weight, seed, steps_per_epoch, augment,
                      labelled_augment, flip, replicas, verbose)
    history = [_evaluate(model, xv, yv, 0, 0, batch_size)]
    for r in range(1, rounds + 1):
        fraction, threshold = fractions[r - 1], thresholds[r - 1]
        idx, targets = pseudo_label(model, unlabelled, soft=soft,
                                    threshold=threshold, flip=flip)
        if len(idx) == 0:
            raise ValueError(
                f"Round {r}: no unlabelled example reached threshold="
                f"{threshold}. Lower the threshold or pass None."
            )
        xu = unlabelled if len(idx) == len(unlabelled) else unlabelled[idx]
        mix = MixedBatches(
            [(x, y), (xu, targets)], fractions=[1 - fraction, fraction],
            batch_size=batch_size, weights=[1.0, weight], seed=seed + r,
            steps_per_epoch=steps_per_epoch,
            augment=None if augment is None and labelled_augment is None
            else [labelled_augment, augment],
            replicas=_backend.replica_count(model) if replicas is None
            else replicas)
        # MixedBatches shuffles each source from `seed`; Keras' own
        # shuffling of batch order would draw on the global RNG.
        model.fit(mix, epochs=epochs, verbose=verbose,
                  **{"shuffle": False, **fit_kwargs})
        history.append(_evaluate(model, xv, yv, r, len(idx), batch_size))
    return history


def _check_data(model, labelled, unlabelled, validation_data):
    """``(x, y, xv, yv)``, targets one-hot; lengths and values checked."""
    k = model.output_shape[-1]
    out = []
    for name, pair in (("labelled", labelled),
                       ("validation_data", validation_data)):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"`{name}` must be an (x, y) tuple. Received: "
                            f"{type(pair).__name__}.")
        xs, ys = pair
        _checks.same_rows([(f"{name}[0]", xs), (f"{name}[1]", ys)])
        _checks.finite(xs, f"{name}[0]")
        out += [xs, _one_hot(ys, k, name)]
    _check_predict_args(model, unlabelled, True, None, 256, False)
    _checks.finite(unlabelled, "unlabelled")
    return out


def _check_round_args(fractions, thresholds, batch_size, epochs, soft,
                      weight, seed, steps_per_epoch, augment,
                      labelled_augment, flip, replicas, verbose):
    batch_size = _validate.integer(batch_size, "batch_size", low=2,
                                   hint="Try 64.")
    for i, (f, t) in enumerate(zip(fractions, thresholds)):
        f = _validate.fraction(f, _round_name("fraction", fractions, i),
                               hint="Try 0.25.")
        mixed._resolve_sizes(2, None, [1 - f, f], batch_size)
        if t is not None:
            _validate.fraction(t, _round_name("threshold", thresholds, i),
                               hint="Try 0.9, or None to keep all.")
    _validate.integer(epochs, "epochs", low=1)
    _checks.flag(soft, "soft")
    _checks.flag(flip, "flip")
    _validate.positive(weight, "weight", hint="Try 1.0.")
    _validate.integer(seed, "seed", low=0)
    _checks.optional_integer(steps_per_epoch, "steps_per_epoch", low=1)
    _checks.optional_callable(augment, "augment")
    _checks.optional_callable(labelled_augment, "labelled_augment")
    _checks.optional_integer(replicas, "replicas", low=1)
    _checks.verbose(verbose)


def _round_name(name, values, i):
    """``fraction`` for one value given for every round, else
    ``fraction[i]``."""
    return f"{name}[{i}]" if isinstance(values, _PerRound) else name


class _PerRound(list):
    """Values given one per round (not one for all)."""


def _per_round(value, rounds, name):
    if value is None or np.ndim(value) == 0:
        return [value] * rounds
    if isinstance(value, (str, bytes)) or not isinstance(
            value, (list, tuple, np.ndarray)):
        raise TypeError(f"`{name}` must be one value or a list of one per "
                        f"round ({rounds}). Received: {name}={value!r}.")
    values = _PerRound(value)
    if len(values) != rounds:
        raise ValueError(f"`{name}` must be one value or one per round "
                         f"({rounds}). Received: {name}={values!r}.")
    return values


def _evaluate(model, xv, yv, r, n, batch_size):
    scores = model.evaluate(xv, yv, batch_size=max(batch_size, 256),
                            verbose=0, return_dict=True)
    return {"round": r, "n_pseudo": int(n),
            **{f"val_{k}": float(v) for k, v in scores.items()}}


def _one_hot(y, k, what):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == k:
        y = y.astype("float32")
        _checks.finite(y, f"{what}[1]")
        mixed._check_probabilities(y, f"{what}[1]")
        return y
    if y.ndim == 1:
        if y.dtype.kind not in "iu" and not (
                y.dtype.kind == "f" and np.isfinite(y).all()
                and (y == np.round(y)).all()):
            raise ValueError(f"{what} labels must be whole class numbers; "
                             f"found dtype {y.dtype} with other values.")
        if y.size and (y.min() < 0 or y.max() >= k):
            raise ValueError(f"{what} labels must be in [0, {k}); found "
                             f"{y.min()}..{y.max()}.")
        return keras.utils.to_categorical(y, k).astype("float32")
    raise ValueError(f"{what} targets must be int labels (n,) or one-hot "
                     f"(n, {k}); found shape {y.shape}.")


def _check_loss(model):
    loss = getattr(model, "loss", None)
    name = loss if isinstance(loss, str) else type(loss).__name__
    if loss is None:
        raise ValueError("Compile the model first, with "
                         "loss='categorical_crossentropy'.")
    if "sparse" in str(name).lower():
        raise ValueError(
            f"Pseudo-labels are class probabilities, so the loss must take "
            f"one-hot or soft targets; the model uses {name!r}. Compile it "
            f"with loss='categorical_crossentropy'."
        )
