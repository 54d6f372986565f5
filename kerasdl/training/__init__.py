"""The training wing: schedules, the LR finder, one-cycle and SGDR,
gradient-ratio annealing, freezing, layer groups with their own rates,
and the fit helpers, all on public Keras API.

Modules:
    schedules: the schedule formulas (one family, for numpy and
        ``keras.ops``) and their ``LearningRateSchedule`` classes.
    param_scheduler: ``ParamScheduler``, ``OneCycle``, ``CosineRestarts``
        callbacks and ``spread_lr``.
    momentum: SGD and Adam-family optimizers whose momentum a schedule
        sets.
    lr_finder: ``LRFinder``, ``lr_find`` and ``LRFindResult``.
    annealing: ``GradientSum`` and ``GradientRatioAnnealer``.
    groups: ``freeze``, ``unfreeze``, ``body_and_head``, ``layer_groups``
        and ``discriminative_optimizer``.
    fit: ``fit_one_cycle``, ``fit_sgdr`` and ``fine_tune``.

Users import the names from ``kerasdl`` itself.
"""
