"""Callbacks and schedules for the learning rate: LR finder, one-cycle,
cosine restarts and gradient-ratio annealing."""
