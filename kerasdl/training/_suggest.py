"""fastai's learning-rate suggestion rules, on numpy arrays.

Each takes the (trimmed, finite) learning rates and smoothed losses and
returns ``(lr, index_or_loss)``. They share one signature, as in fastai.
"""

import numpy as np

MIN_POINTS = 16  # `slide` compares gradients 15 points apart


def valley(lrs, losses):
    """Longest decreasing run of the loss; a point 1/3 + 1/6 into it."""
    n = len(losses)
    run = [1] * n
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and run[i] < run[j] + 1:
                run[i] = run[j] + 1
            if run[end] < run[i]:
                end = i
                start = end - run[end]
    sections = (end - start) / 3
    idx = start + int(sections) + int(sections / 2)
    return float(lrs[idx]), idx


def minimum(lrs, losses):
    """The rate at the lowest loss, divided by 10."""
    idx = int(np.argmin(losses))
    return float(lrs[idx]) / 10, idx


def steep(lrs, losses):
    """The rate where the loss falls fastest against log(lr)."""
    grads = np.diff(losses) / np.diff(np.log(lrs))
    idx = int(np.argmin(grads))
    return float(lrs[idx]), idx


def slide(lrs, losses, lr_diff=15, thresh=0.005, adjust_value=1.0):
    """Walks back from the end until the loss gradient stops changing."""
    grad = np.gradient(losses)
    r_idx, l_idx = -1, -1 - lr_diff
    suggestion = lrs[l_idx]
    while l_idx >= -len(losses) and \
            abs(grad[r_idx] - grad[l_idx]) > thresh:
        suggestion = lrs[l_idx]
        r_idx -= 1
        l_idx -= 1
    suggestion = float(suggestion) * adjust_value
    idx = int(np.argmin(np.abs(np.log(lrs) - np.log(suggestion))))
    return suggestion, idx


RULES = {"valley": valley, "minimum": minimum, "steep": steep,
         "slide": slide}


def trim(lrs, losses, num_it):
    """fastai's window: drop ``num_it // 10`` points at the start and 5
    at the end, and everything from the first non-finite loss on."""
    lrs, losses = np.asarray(lrs, float), np.asarray(losses, float)
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        lrs, losses = lrs[:bad[0]], losses[:bad[0]]
    return lrs[num_it // 10:-5], losses[num_it // 10:-5]


def min_num_it():
    """The smallest ``num_it`` whose full sweep leaves ``MIN_POINTS``
    points after ``trim``."""
    n = MIN_POINTS
    while n - n // 10 - 5 < MIN_POINTS:
        n += 1
    return n


def suggest(lrs, losses, num_it):
    """All four suggestions: ``{name: (lr, index into lrs)}``.

    Raises:
        ValueError: fewer than ``MIN_POINTS`` points after trimming.
    """
    lo = num_it // 10
    t_lrs, t_losses = trim(lrs, losses, num_it)
    if len(t_lrs) < MIN_POINTS:
        raise ValueError(
            f"The sweep kept {len(t_lrs)} usable points (of "
            f"{len(lrs)} recorded, after dropping the first num_it // 10 = "
            f"{lo}, the last 5 and any non-finite loss); suggestions need "
            f"at least {MIN_POINTS}. Raise num_it, lower start_lr, or pass "
            f"stop_div=False if the loss diverged early.")
    return {name: (lr, idx + lo)
            for name, (lr, idx) in ((n, rule(t_lrs, t_losses))
                                    for n, rule in RULES.items())}
