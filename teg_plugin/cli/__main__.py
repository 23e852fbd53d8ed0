"""``python -m teg_plugin.cli``: the ``teg-nas`` command."""

import sys

from teg_plugin.cli import main

sys.exit(main())
