"""Former home of the learning-rate tools, now ``kerasdl.training``.

``kerasdl.callbacks.<module>`` still imports: each old module name is the
new module itself (``kerasdl.callbacks.lr_finder`` is
``kerasdl.training.lr_finder``). New code imports from ``kerasdl`` or
``kerasdl.training``.
"""

import importlib
import sys

_MOVED = {"lr_finder": "lr_finder", "schedules": "schedules",
          "scheduler": "param_scheduler", "annealing": "annealing",
          "_checks": "_checks", "_suggest": "_suggest", "_hyper": "_rates",
          "_data": "_data"}

for _old, _new in _MOVED.items():
    _module = importlib.import_module(f"kerasdl.training.{_new}")
    sys.modules[f"{__name__}.{_old}"] = _module
    globals()[_old] = _module
