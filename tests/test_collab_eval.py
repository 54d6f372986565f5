"""Splits, recipes, CollabModel (predict / unseen ids / evaluate) and the
analysis tools, on a generated sample and on ml-100k when present."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from kerasdl.collab import analysis
from kerasdl.collab import folds as splits
from kerasdl.collab import recipes as train
from kerasdl.collab.evaluate import run_split
from kerasdl.collab.evaluate import summarize
from kerasdl.collab.learner import CollabModel
from kerasdl.collab.sample import generate_ratings
from kerasdl.data.ratings import IdEncoder
from kerasdl.data.ratings import MovieLens
from kerasdl.models.collab import dot_bias

FAST = (train.Recipe(model="dot_bias", y_range=(0.5, 5.5), lr=3e-2,
                     weight_decay=0.1, epochs=8, batch_size=256,
                     one_cycle=True),)


@pytest.fixture(scope="module")
def sample():
    ratings, titles = generate_ratings(120, 80, density=0.25, noise=0.3,
                                       seed=1)
    return MovieLens(ratings, titles, "generated", "<generated>",
                     (1.0, 5.0))


def test_parse_split_names_and_errors():
    assert splits.parse_split("u3") == ("fold", 3)
    assert splits.parse_split("5fold") == ("folds", None)
    assert splits.parse_split("uK") == ("folds", None)
    assert splits.parse_split("random:7") == ("random", 7)
    assert splits.parse_split("lesson") == ("lesson", 42)
    for bad in ("u6", "random", "random:x", "80/20"):
        with pytest.raises(ValueError, match="unknown split"):
            splits.parse_split(bad)


def test_random_split_is_seeded_and_complete(sample):
    a_train, a_test = splits.random_split(sample.ratings, 3)
    b_train, _ = splits.random_split(sample.ratings, 3)
    c_train, _ = splits.random_split(sample.ratings, 4)
    pd.testing.assert_frame_equal(a_train, b_train)
    assert not a_train.equals(c_train)
    assert len(a_train) + len(a_test) == len(sample.ratings)
    assert 0.75 < len(a_train) / len(sample.ratings) < 0.85


def test_fold_split_needs_ml100k(sample):
    with pytest.raises(ValueError, match="uses the ml-100k folds"):
        splits.get_splits(sample, "u1")


def test_dot_bias_beats_the_mean_on_a_random_split(sample):
    rows, model = run_split(sample, "random:0", FAST)
    row = rows[0]
    assert row["split"] == "random:0" and row["recipe"] == "custom"
    _, test = splits.random_split(sample.ratings, 0)
    baseline = np.sqrt(np.mean((test["rating"] - model.mean) ** 2))
    assert row["rmse"] < 0.85 * baseline
    assert row["mae"] < row["rmse"] and row["n"] == len(test)
    assert len(model.models) == 1


def test_seeds_are_averaged_and_epochs_override(sample):
    recipe = (dataclasses.replace(FAST[0], seeds=2, epochs=1),)
    rows, model = run_split(sample, "random:1", recipe, epochs=2)
    assert len(model.models) == 2
    x = {"user": np.array([0, 1], "int32"), "item": np.array([2, 3], "int32")}
    each = [m.predict(x, verbose=0).ravel() for m in model.models]
    np.testing.assert_allclose(model.predict_indices([0, 1], [2, 3]),
                               np.mean(each, axis=0), rtol=1e-5)
    with pytest.raises(ValueError, match="epochs"):
        run_split(sample, "random:1", recipe, epochs=0)
    with pytest.raises(ValueError, match="unknown recipe 'svd'"):
        run_split(sample, "random:1", "svd")


def _tiny_model():
    """3 users, 4 items with hand-set weights; item 40 never trained."""
    users, items = IdEncoder([1, 2, 3], "user"), IdEncoder([10, 20, 30, 40],
                                                           "item")
    keras_model = dot_bias(3, 4, 2, l2=None)
    keras_model.get_layer("user_factors").set_weights([np.zeros((3, 2))])
    keras_model.get_layer("item_factors").set_weights([np.array(
        [[1.0, 0.0], [-1.0, 0.1], [0.2, 2.0], [0.0, 0.0]])])
    keras_model.get_layer("user_bias").set_weights([np.full((3, 1), 3.0)])
    keras_model.get_layer("item_bias").set_weights([np.array(
        [[1.0], [-1.0], [0.5], [0.0]])])
    titles = {10: "Ten", 20: "Twenty", 30: "Thirty"}
    return CollabModel([keras_model], users, items, seen_users=[1, 2],
                       seen_items=[10, 20, 30], mean=3.25,
                       rating_range=(1.0, 5.0), titles=titles,
                       user_means={1: 4.5}, item_means={10: 2.0})


def test_predict_unseen_ids_raise_or_fall_back():
    model = _tiny_model()
    np.testing.assert_allclose(model.predict([1, 2], [10, 20]), [4.0, 2.0])
    with pytest.raises(ValueError, match=r"user id\(s\) \[3\]"):
        model.predict([3], [10])
    with pytest.raises(ValueError, match=r"item id\(s\) \[40, 99\]"):
        model.predict([1, 1], [40, 99])
    # seen pair: the model; unseen user: the item's mean; unseen item: the
    # user's mean; both unseen: the overall mean
    np.testing.assert_allclose(
        model.predict([1, 3, 1, 3], [10, 10, 99, 99], unknown="mean"),
        [4.0, 2.0, 4.5, 3.25])
    with pytest.raises(ValueError, match="unknown"):
        model.predict([1], [10], unknown="zero")
    test = pd.DataFrame({"user": [1, 3], "item": [10, 10],
                         "rating": [5.0, 2.0]})
    scores = model.evaluate(test)
    assert scores["fallback"] == 1 and scores["n"] == 2
    assert scores["rmse"] == pytest.approx(np.sqrt(0.5))
    assert scores["mae"] == pytest.approx(0.5)


def test_bias_ranking_pca_and_recommend():
    model = _tiny_model()
    ratings = pd.DataFrame({"user": [1, 1, 2, 2, 2, 1],
                            "item": [10, 20, 10, 20, 30, 10],
                            "rating": 3.0})
    low, high = analysis.bias_ranking(model, ratings, top_n=3, k=2)
    assert [t for t, _ in high] == ["Ten", "Thirty"]
    assert [t for t, _ in low] == ["Twenty", "Thirty"]
    low2, high2 = analysis.bias_ranking(model, ratings, top_n=2, k=5)
    assert [t for t, _ in high2] == ["Ten", "Twenty"]  # Thirty is rare
    pca = analysis.factor_pca(model, ratings, top_n=3, n_components=2, k=1)
    assert pca["coords"].shape == (3, 2)
    assert pca["ends"][0][1][0][0] == "Thirty"  # the big second factor
    assert pca["explained"][0] > pca["explained"][1]
    with pytest.raises(ValueError, match="n_components"):
        analysis.factor_pca(model, ratings, top_n=3, n_components=3)
    rated = pd.DataFrame({"user": [1], "item": [10], "rating": [5.0]})
    recs = analysis.recommend(model, 1, rated, k=5)
    assert [r[0] for r in recs] == [30, 20]  # 10 rated, 40 never trained
    assert recs[0][1] == "Thirty" and recs[0][2] == pytest.approx(3.5)
    with pytest.raises(ValueError, match="user id 3 had no ratings"):
        analysis.recommend(model, 3, rated)


def test_plot_factors_writes_a_png(tmp_path):
    model = _tiny_model()
    ratings = pd.DataFrame({"user": [1, 2, 2], "item": [10, 20, 30],
                            "rating": 3.0})
    pca = analysis.factor_pca(model, ratings, top_n=3, n_components=2)
    path = analysis.plot_factors(pca, str(tmp_path / "f.png"))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]


def test_summarize_five_parts():
    rows = [{"split": f"u{k}", "rmse": 0.9 + k / 100, "mae": 0.7}
            for k in range(1, 6)]
    s = summarize(rows)
    assert s["rmse"] == pytest.approx(0.93)
    assert s["rmse_max"] == pytest.approx(0.95)
    assert s["split"] == "u1+u2+u3+u4+u5"


def test_real_u1_one_epoch(shared_data):
    from kerasdl.data.ratings import read_movielens

    data = read_movielens(shared_data("ml-100k"))
    recipe = (dataclasses.replace(train.recipe("dot_bias")[0], seeds=1),)
    rows, model = run_split(data, "u1", recipe, epochs=1)
    assert rows[0]["split"] == "u1" and rows[0]["n"] == 20_000
    assert rows[0]["fallback"] == 32  # u1.test items absent from u1.base
    assert rows[0]["rmse"] < 1.0
    low, high = analysis.bias_ranking(model, data.ratings, top_n=500, k=3)
    assert high[0][1] > low[0][1]


def test_weighted_ensemble_and_autorec_member(sample):
    recipes = (dataclasses.replace(FAST[0], weight=3.0),
               train.Recipe(model="autorec", hidden=(16,), dropout=(0.2,),
                            l2=1e-3, lr=1e-2, epochs=10, batch_size=16,
                            weight=1.0))
    rows, model = run_split(sample, "random:2", recipes)
    assert model.weights == [0.75, 0.25]
    x = ([0, 5], [1, 2])
    each = [m.predict({"user": np.array(x[0], "int32"),
                       "item": np.array(x[1], "int32")}, verbose=0).ravel()
            for m in model.models]
    np.testing.assert_allclose(model.predict_indices(*x),
                               0.75 * each[0] + 0.25 * each[1], rtol=1e-5)
    assert rows[0]["rmse"] < 1.0
    with pytest.raises(ValueError, match="weights"):
        CollabModel(model.models, model.users, model.items, seen_users=[1],
                    seen_items=[1], mean=3.0, rating_range=(1, 5),
                    weights=[1.0])


def test_on_device_training_path(sample, backend):
    fast = (dataclasses.replace(FAST[0], batch_size=128),)
    from kerasdl.collab.recipes import fit_recipe
    from kerasdl.collab.recipes import make_encoders

    users, items = make_encoders(sample.ratings)
    train_part, test_part = splits.random_split(sample.ratings, 0)
    if backend != "jax":
        with pytest.raises(ValueError, match="needs KERAS_BACKEND=jax"):
            fit_recipe(fast, train_part, users, items,
                       rating_range=(1.0, 5.0), on_device=True)
        return
    model = fit_recipe(fast, train_part, users, items,
                       rating_range=(1.0, 5.0), on_device=True)
    baseline = np.sqrt(np.mean((test_part["rating"] - model.mean) ** 2))
    assert model.evaluate(test_part)["rmse"] < 0.85 * baseline


def test_demo_step_says_the_sample_is_generated():
    from kerasdl.demo import STEPS
    from kerasdl.demo import train_recommender

    assert train_recommender in STEPS
    (row,) = train_recommender(seed=0, quick=True)
    assert row["step"] == "recommender" and row["metric"] == "rmse"
    assert "GENERATED" in row["note"]
    baseline = float(row["note"].rsplit("RMSE ", 1)[1])
    assert row["value"] < 0.95 * baseline


@pytest.mark.parametrize("k,error", [(-1, ValueError), (0, ValueError),
                                     (2.5, TypeError), (True, TypeError),
                                     ("5", TypeError)])
def test_recommend_refuses_a_bad_k(k, error):
    model = _tiny_model()
    rated = pd.DataFrame({"user": [1], "item": [10], "rating": [5.0]})
    with pytest.raises(error, match=rf"`k` must be an integer >= 1\. "
                                    rf"Received: k={k!r}"):
        analysis.recommend(model, 1, rated, k=k)
    assert len(analysis.recommend(model, 1, rated, k=1)) == 1


def test_analysis_arguments_checked_at_the_entry(tmp_path):
    model = _tiny_model()
    ratings = pd.DataFrame({"user": [1, 2, 2], "item": [10, 20, 30],
                            "rating": 3.0})
    with pytest.raises(ValueError, match="`top_n` must be an integer >= 1"):
        analysis.bias_ranking(model, ratings, top_n=0)
    with pytest.raises(ValueError, match="`k` must be an integer >= 1"):
        analysis.bias_ranking(model, ratings, k=-3)
    with pytest.raises(ValueError, match="`n_components` must be an integer"):
        analysis.factor_pca(model, ratings, top_n=3, n_components=0)
    with pytest.raises(TypeError, match="`n` must be an integer"):
        analysis.most_rated(ratings, 2.5)
    with pytest.raises(ValueError, match=r"columns \['user', 'item'\]"):
        analysis.recommend(model, 1, ratings[["item"]])
    with pytest.raises(TypeError, match="must be a CollabModel"):
        analysis.recommend(model.models[0], 1, ratings)
    pca = analysis.factor_pca(model, ratings, top_n=3, n_components=2)
    with pytest.raises(ValueError, match="a file name, not a folder"):
        analysis.plot_factors(pca, str(tmp_path))
    with pytest.raises(ValueError, match="in a folder that exists"):
        analysis.plot_factors(pca, str(tmp_path / "no" / "f.png"))
    with pytest.raises(ValueError, match="two different components"):
        analysis.plot_factors(pca, str(tmp_path / "f.png"), components=(1, 1))
    with pytest.raises(ValueError, match=r"`components\[1\]` must be an "
                                         r"integer >= 0 and <= 1"):
        analysis.plot_factors(pca, str(tmp_path / "f.png"), components=(0, 2))
    assert list(tmp_path.iterdir()) == []
