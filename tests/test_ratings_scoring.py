"""Splits and scores of ratings refuse what would give NaN or nonsense:
empty split parts, empty test sets, NaN or infinite ensemble weights,
bad seeds, epochs and rating ranges; fetch refuses a garbage checksum
file."""

import numpy as np
import pandas as pd
import pytest

from kerasdl.collab import folds as splits
from kerasdl.collab.evaluate import run_split
from kerasdl.collab.evaluate import summarize
from kerasdl.collab.learner import CollabModel
from kerasdl.data import datasets
from kerasdl.data.ratings import IdEncoder
from kerasdl.data.ratings import MovieLens
from kerasdl.models.collab import dot_bias

TINY = pd.DataFrame({"user": [1, 2, 3], "item": [10, 10, 20],
                     "rating": np.float32([4, 3, 5]), "timestamp": 0})


def test_random_split_leaving_a_part_empty_is_refused():
    # default_rng(0) draws three numbers below 0.8: all go to training.
    with pytest.raises(ValueError, match=r"random:0 of 3 rating\(s\) left "
                                         r"the test part empty"):
        splits.random_split(TINY, 0)
    train, test = splits.random_split(TINY, 1)
    assert (len(train), len(test)) == (2, 1)
    data = MovieLens(TINY, {}, "ml-latest-small", "<tiny>", (0.5, 5.0))
    with pytest.raises(ValueError, match="test part empty"):
        splits.get_splits(data, "random:0")


@pytest.mark.parametrize("kwargs,error,needle", [
    (dict(seed=-1), ValueError, "`seed` must be an integer >= 0"),
    (dict(seed=1.5), TypeError, "`seed` must be an integer"),
    (dict(seed=1, train_fraction=1.0), ValueError, "`train_fraction`"),
    (dict(seed=1, train_fraction=float("nan")), ValueError,
     "train_fraction=nan"),
])
def test_random_split_arguments(kwargs, error, needle):
    with pytest.raises(error, match=needle):
        splits.random_split(TINY, **kwargs)


@pytest.mark.parametrize("kwargs,error,needle", [
    (dict(epochs=2.5), TypeError, "`epochs` must be an integer >= 1"),
    (dict(epochs=0), ValueError, "`epochs` must be an integer >= 1"),
    (dict(seed=-3), ValueError, "`seed` must be an integer >= 0"),
    (dict(steps_per_execution=0), ValueError, "`steps_per_execution`"),
])
def test_run_split_checks_before_training(kwargs, error, needle):
    data = MovieLens(TINY, {}, "ml-latest-small", "<tiny>", (0.5, 5.0))
    with pytest.raises(error, match=needle):
        run_split(data, "random:1", "dot_bias", **kwargs)


def test_summarize_refuses_no_rows_and_nan_scores():
    with pytest.raises(ValueError, match="at least one scored part"):
        summarize([])
    with pytest.raises(ValueError, match="finite numbers only"):
        summarize([{"split": "u1", "rmse": float("nan"), "mae": 0.7}])


def _model(**kwargs):
    args = dict(seen_users=[1, 2], seen_items=[10, 20], mean=3.5,
                rating_range=(1.0, 5.0))
    args.update(kwargs)
    users, items = IdEncoder([1, 2], "user"), IdEncoder([10, 20], "item")
    models = args.pop("models", [dot_bias(2, 2, 2), dot_bias(2, 2, 2)])
    return CollabModel(models, users, items, **args)


@pytest.mark.parametrize("kwargs,error,needle", [
    (dict(weights=[1, float("nan")]), ValueError, r"`weights\[1\]` must be "
                                                  r"a finite number >= 0"),
    (dict(weights=[1, float("inf")]), ValueError, r"weights\[1\]=inf"),
    (dict(weights=[1, -1]), ValueError, r"weights\[1\]=-1"),
    (dict(weights=[0, 0]), ValueError, "must not all be 0"),
    (dict(weights=[1]), ValueError, "one number per model"),
    (dict(weights=[1, "2"]), TypeError, r"weights\[1\]"),
    (dict(models=[]), ValueError, "at least one trained model"),
    (dict(mean=float("nan")), ValueError, "`mean` must be a finite"),
    (dict(rating_range=(5, 1)), ValueError, r"`rating_range\[1\]` must be "
                                            r"a finite number > 5"),
    (dict(rating_range=5), ValueError, r"must be \(low, high\)"),
])
def test_collab_model_refuses_bad_weights_and_ranges(kwargs, error, needle):
    with pytest.raises(error, match=needle):
        _model(**kwargs)


def test_weights_normalised_and_scores_need_ratings():
    model = _model(weights=[3, 1])
    assert model.weights == [0.75, 0.25]
    with pytest.raises(ValueError, match="holds no ratings"):
        model.evaluate(TINY[:0])
    bad = pd.DataFrame({"user": [1], "item": [10], "rating": [np.nan]})
    with pytest.raises(ValueError, match="finite numbers only"):
        model.evaluate(bad)
    with pytest.raises(ValueError, match="`users` and `items` must have "
                                         "the same length"):
        model.predict([1, 2], [10])
    with pytest.raises(ValueError, match="`unknown` must be one of"):
        model.predict([1], [10], unknown="zero")
    scores = model.evaluate(TINY[:1])
    assert scores["n"] == 1 and np.isfinite(scores["rmse"])


@pytest.mark.parametrize("text,needle", [
    ("", "holds no md5 digest"),
    ("<html>Not Found</html>", "holds no md5 digest"),
    ("MD5 (a.zip) = " + "a" * 32 + "\nMD5 (b.zip) = " + "b" * 32,
     "more than one md5 digest"),
])
def test_fetch_refuses_a_garbage_checksum_file(tmp_path, monkeypatch, text,
                                               needle):
    side = tmp_path / "ml-latest-small.zip.md5"
    side.write_text(text)
    monkeypatch.setitem(datasets.MOVIELENS, "ml-latest-small",
                        ((tmp_path / "ml-latest-small.zip").as_uri(), None))
    with pytest.raises(ValueError, match=needle):
        datasets.fetch("ml-latest-small", cache_dir=str(tmp_path / "c"))


def test_fetch_name_checked():
    with pytest.raises(ValueError, match="`name` must be one of 'ml-100k'"):
        datasets.fetch("ml-20m")
    with pytest.raises(ValueError, match="`name` must be one of"):
        datasets.fetch(["ml-100k"])
