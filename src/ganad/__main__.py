"""``python -m ganad ...`` (and ``torchrun ... -m ganad fit ...``): the ``ganad`` command."""

import sys

from .cli import entry

sys.exit(entry())
