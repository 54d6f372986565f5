"""Recommenders on MovieLens: named splits, recipes, evaluation, analysis.

Modules: ``splits`` (u1..u5, random:SEED, lesson), ``train`` (recipes and
``fit_recipe``), ``learner`` (``CollabModel``: predict, evaluate),
``analysis`` (bias ranking, PCA of item factors, plot, recommend),
``evaluate`` (``run_split``: train and score on a named split),
``gibbs`` (``fit_gibbs``: Bayesian dot_bias by Gibbs sampling; as a recipe
member, ``Recipe(model="gibbs")``).
"""

from kerasdl.collab.gibbs import GibbsModel
from kerasdl.collab.gibbs import fit_gibbs

__all__ = ["GibbsModel", "fit_gibbs"]
