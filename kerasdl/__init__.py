"""kerasdl: the practical deep-learning workflow of the fast.ai course,
for Keras 3.

Names are imported on first use, so ``import kerasdl`` is quick and does
not import a backend.
"""

import importlib

from kerasdl import _registration

__version__ = "0.1.0"

_EXPORTS = {
    # models
    "linear_bn": "kerasdl.models.baselines",
    "conv_bn": "kerasdl.models.baselines",
    "deeper_conv_bn": "kerasdl.models.baselines",
    "dense_bn_head": "kerasdl.models.baselines",
    "vision_model": "kerasdl.models.vision",
    "vgg16": "kerasdl.models.vgg",
    "vgg16_bn": "kerasdl.models.vgg",
    "efficientnet_lite0": "kerasdl.models.efficientnet_lite",
    "convert_lite0_checkpoint": "kerasdl.models.efficientnet_lite",
    "read_state_dict": "kerasdl.models.torch_legacy",
    "VGGPreprocess": "kerasdl.models.vgg",
    "conv_base": "kerasdl.models.surgery",
    "backbone": "kerasdl.models.backbones",
    "backbone_names": "kerasdl.models.backbones",
    "feature_layer": "kerasdl.models.backbones",
    "split_at": "kerasdl.models.surgery",
    "replace_head": "kerasdl.models.surgery",
    "param_counts": "kerasdl.models.summary",
    "ClassNames": "kerasdl.models.labels",
    "class_names": "kerasdl.models.labels",
    "with_class_names": "kerasdl.models.labels",
    # precision
    "mixed_precision": "kerasdl.precision",
    # data
    "load_fashion_sample": "kerasdl.data.datasets",
    "load_fashion_mnist": "kerasdl.data.datasets",
    "MixedBatches": "kerasdl.data.mixed",
    # pseudo-labelling, submissions, interpretation
    "pseudo_label": "kerasdl.pseudo",
    "pseudo_label_rounds": "kerasdl.pseudo",
    "clip_probabilities": "kerasdl.submission",
    "write_submission": "kerasdl.submission",
    "confusion_matrix": "kerasdl.interpret",
    "most_confused": "kerasdl.interpret",
    "top_losses": "kerasdl.interpret",
    "accuracy_multi": "kerasdl.interpret",
    "multilabel_confusion": "kerasdl.interpret",
    "plot_confusion_matrix": "kerasdl.interpret",
    "plot_top_losses": "kerasdl.interpret",
    "plot_multilabel_confusion": "kerasdl.interpret",
    "interpret": "kerasdl.interpret",
    "Interpretation": "kerasdl.interpretation",
    "AccuracyMulti": "kerasdl.metrics",
    "best_threshold": "kerasdl.metrics",
    "ThresholdSweep": "kerasdl.metrics",
    "show_batch": "kerasdl.show",
    "show_results": "kerasdl.show",
    "save_figure": "kerasdl.show",
    "tta": "kerasdl.tta",
    "predict_files": "kerasdl.predict",
    # data: images, splits
    "ImageBatches": "kerasdl.data.images",
    "image_folder": "kerasdl.data.images",
    "image_files": "kerasdl.data.images",
    "images_from_folder": "kerasdl.data.layouts",
    "images_from_csv": "kerasdl.data.layouts",
    "images_from_names": "kerasdl.data.layouts",
    "group_split": "kerasdl.data.splits",
    "make_sample": "kerasdl.data.splits",
    "table_files": "kerasdl.data.splits",
    # data: arrays, augmentation; precomputed features
    "save_array": "kerasdl.data.arrays",
    "load_array": "kerasdl.data.arrays",
    "RandomAffine": "kerasdl.data.augment",
    "ChannelShift": "kerasdl.data.augment",
    "augmentation": "kerasdl.data.augment",
    "scan_augmentation": "kerasdl.data.augment",
    "precompute": "kerasdl.features",
    "load_features": "kerasdl.features",
    "FeatureSet": "kerasdl.features",
    "FeatureBatches": "kerasdl.features",
    # recommenders (lesson 4)
    "read_movielens": "kerasdl.data.ratings",
    "IdEncoder": "kerasdl.data.ratings",
    "fetch": "kerasdl.data.datasets",
    "dot": "kerasdl.models.collab",
    "dot_bias": "kerasdl.models.collab",
    "collab_nn": "kerasdl.models.collab",
    "ScaledSigmoid": "kerasdl.models.collab",
    "CollabModel": "kerasdl.collab.learner",
    "fit_recipe": "kerasdl.collab.recipes",
    "run_split": "kerasdl.collab.evaluate",
    "make_folds": "kerasdl.collab.folds",
    "bias_ranking": "kerasdl.collab.analysis",
    "factor_pca": "kerasdl.collab.analysis",
    "plot_factors": "kerasdl.collab.analysis",
    "recommend": "kerasdl.collab.analysis",
    # learning-rate tools
    "sched_cos": "kerasdl.training.schedules",
    "one_cycle": "kerasdl.training.schedules",
    "one_cycle_momentum": "kerasdl.training.schedules",
    "cosine_restarts": "kerasdl.training.schedules",
    "sgdr_epochs": "kerasdl.training.schedules",
    "OneCycleSchedule": "kerasdl.training.schedules",
    "CosineRestartsSchedule": "kerasdl.training.schedules",
    "ParamScheduler": "kerasdl.training.param_scheduler",
    "OneCycle": "kerasdl.training.param_scheduler",
    "CosineRestarts": "kerasdl.training.param_scheduler",
    "spread_lr": "kerasdl.training.param_scheduler",
    "fit_one_cycle": "kerasdl.training.fit",
    "fit_sgdr": "kerasdl.training.fit",
    "fine_tune": "kerasdl.training.fit",
    "freeze": "kerasdl.training.groups",
    "unfreeze": "kerasdl.training.groups",
    "layer_groups": "kerasdl.training.groups",
    "discriminative_optimizer": "kerasdl.training.groups",
    "LRFinder": "kerasdl.training.lr_finder",
    "LRFindResult": "kerasdl.training.lr_finder",
    "lr_find": "kerasdl.training.lr_finder",
    "GradientSum": "kerasdl.training.annealing",
    "GradientRatioAnnealer": "kerasdl.training.annealing",
    # optimizers (lesson 4's Eve)
    "Eve": "kerasdl.optimizers",
    "LossFeedback": "kerasdl.optimizers",
    "optimizers": "kerasdl",
    # several devices
    "data_parallel": "kerasdl.distribute",
    "DataParallel": "kerasdl.distribute",
}

__all__ = sorted(_EXPORTS)


_registration.install()


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kerasdl' has no attribute {name!r}")
    if module == "kerasdl":  # a submodule, such as kerasdl.optimizers
        value = importlib.import_module(f"kerasdl.{name}")
    else:
        value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
