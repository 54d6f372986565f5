"""Former home of the fit helpers, now ``kerasdl.training.fit`` and
``kerasdl.training.groups``; the names still import from here."""

from kerasdl.training.fit import fine_tune  # noqa: F401
from kerasdl.training.fit import fit_one_cycle  # noqa: F401
from kerasdl.training.fit import fit_sgdr  # noqa: F401
from kerasdl.training.groups import body_and_head  # noqa: F401
from kerasdl.training.groups import discriminative_optimizer  # noqa: F401
from kerasdl.training.groups import freeze  # noqa: F401
from kerasdl.training.groups import layer_groups  # noqa: F401
from kerasdl.training.groups import unfreeze  # noqa: F401
