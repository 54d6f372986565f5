"""The global random generators that ``fit`` may draw from, saved and put
back.
"""

import numpy as np

from kerasdl._backend.devices import name


def global_rng_state():
    """The global random generators that ``fit`` may draw from
    (shuffling, data adapters): Python's, numpy's and, under torch,
    torch's. Pass the result to ``set_global_rng_state``."""
    import random

    state = {"python": random.getstate(), "numpy": np.random.get_state()}
    if name() == "torch":
        import torch

        state["torch"] = torch.get_rng_state()
    return state


def set_global_rng_state(state):
    """Puts back what ``global_rng_state`` returned."""
    import random

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "torch" in state:
        import torch

        torch.set_rng_state(state["torch"])
