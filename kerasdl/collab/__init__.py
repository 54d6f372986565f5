"""Recommenders on MovieLens: named splits, recipes, evaluation, analysis.

Modules: ``folds`` (u1..u5, random:SEED, lesson), ``recipes`` (recipes and
``fit_recipe``), ``on_device`` (``fit_on_device``: an epoch as one device
program, JAX), ``learner`` (``CollabModel``: predict, evaluate),
``analysis`` (bias ranking, PCA of item factors, plot, recommend),
``evaluate`` (``run_split``: train and score on a named split),
``gibbs`` (``fit_gibbs``: Bayesian dot_bias by Gibbs sampling; as a recipe
member, ``Recipe(model="gibbs")``).
"""

from kerasdl.collab.gibbs import GibbsModel
from kerasdl.collab.gibbs import fit_gibbs

__all__ = ["GibbsModel", "fit_gibbs"]
