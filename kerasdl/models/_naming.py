"""Layer names that do not depend on what the session built before.

Keras names a layer without a name from a per-session counter
(``activation``, ``activation_1`` ...), so the same keras.applications
model gets other names, and other weight paths, after other models were
built. ``fresh_names`` builds with the counters of a fresh session, then
moves the session's counters past the names used, so that no layer built
later takes one of them.
"""

import collections
import contextlib


@contextlib.contextmanager
def fresh_names():
    """Within it, layers named automatically get a fresh session's names.

    Example:

    >>> import keras
    >>> with fresh_names():
    ...     first = keras.layers.Activation("relu").name
    >>> with fresh_names():
    ...     again = keras.layers.Activation("relu").name
    >>> first, again, keras.layers.Activation("relu").name == first
    ('activation', 'activation', False)
    """
    try:
        from keras.src.backend.common import global_state
    except ImportError:  # a Keras without it: names as they come
        yield
        return
    key = "object_name_uids"
    before = global_state.get_global_attribute(key)
    fresh = collections.defaultdict(int)
    global_state.set_global_attribute(key, fresh)
    try:
        yield
    finally:
        merged = collections.defaultdict(int, before or {})
        for prefix, count in fresh.items():
            merged[prefix] = max(merged[prefix], count)
        global_state.set_global_attribute(key, merged)
