"""``python -m kerasdl.distribute --processes N script.py [args ...]``: runs
a script in N processes on this machine as one JAX job (see
``kerasdl.distribute.launch``)."""

import sys

from kerasdl.distribute._launch import main

if __name__ == "__main__":
    sys.exit(main())
