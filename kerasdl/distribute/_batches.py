"""Each process's part of every batch of a job of several processes."""

import numpy as np

from kerasdl import _validate
from kerasdl.distribute import _processes


def process_batches(data, batch_size):
    """This process's part of every batch: what to pass to ``fit``,
    ``fit_one_cycle`` or ``lr_find`` in each process of a job.

    Row ``r`` of batch ``b`` of the whole job (rows ``b * batch_size ..``
    in order) goes to process ``r // (batch_size / process_count())``; the
    job's batches are then those one process would make from ``data``
    with ``shuffle=False``, so the weights are those of one process over
    the same devices (within float rounding). Split validation arrays the
    same way and pass their per-process batch as ``validation_batch_size``:
    the validation loss is then over all their rows. Alone, it returns
    ``data``.

    Example:

    >>> import numpy as np
    >>> from kerasdl import distribute
    >>> x, y = np.arange(12.0).reshape(6, 2), np.arange(6)
    >>> (px, py), per_process = distribute.process_batches((x, y), 2)
    >>> py.tolist(), per_process
    ([0, 1, 2, 3, 4, 5], 2)

    Args:
        data: an array or a tuple / list of arrays with the same rows.
        batch_size: int. The batch of the whole job, a multiple of the
            process count.

    Returns:
        ``(part, per_process_batch)``: ``data``'s rows for this process
        (same structure) and the batch size to give ``fit`` here.

    Raises:
        ValueError: a batch, or a last short batch, that does not split
            evenly over the processes.
    """
    n_proc, me = _processes.process_count(), _processes.process_index()
    batch_size = _validate.integer(batch_size, "batch_size", low=1)
    arrays = list(data) if isinstance(data, (tuple, list)) else [data]
    rows = len(arrays[0])
    for i, a in enumerate(arrays[1:], 1):
        if len(a) != rows:
            raise ValueError(
                f"process_batches: every array needs the same rows; array 0 "
                f"has {rows}, array {i} has {len(a)}.")
    if batch_size % n_proc:
        raise ValueError(
            f"`batch_size` must be a multiple of the {n_proc} processes. "
            f"Received: batch_size={batch_size}. Try "
            f"{batch_size + n_proc - batch_size % n_proc}.")
    full, rest = divmod(rows, batch_size)
    if rest % n_proc:
        raise ValueError(
            f"The last batch has {rest} rows ({rows} rows in batches of "
            f"{batch_size}), which do not split over {n_proc} processes. "
            f"Pass {rows - rest % n_proc} rows (a multiple of {n_proc} in the "
            f"last batch) or a batch size that divides {rows}.")
    if n_proc == 1:
        return data, batch_size
    per = batch_size // n_proc
    index = (np.arange(full)[:, None] * batch_size + me * per
             + np.arange(per)[None, :]).reshape(-1)
    tail = rest // n_proc
    index = np.concatenate([index, full * batch_size + me * tail
                            + np.arange(tail)])
    parts = [a[index] for a in arrays]
    if isinstance(data, (tuple, list)):
        return type(data)(parts), per
    return parts[0], per
