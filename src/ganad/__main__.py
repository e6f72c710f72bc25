"""``python -m ganad ...`` (and ``torchrun ... -m ganad fit ...``): the ``ganad`` command."""

import sys

from .cli import main

sys.exit(main())
