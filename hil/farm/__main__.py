"""``python -m hil.farm``: the farm's commands (``hil.farm.cli``), including the health check's ``check``."""

import sys

from hil.farm.cli import main

sys.exit(main())
