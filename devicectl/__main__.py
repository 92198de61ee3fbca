"""``python -m devicectl``: the same as the ``devicectl`` command."""

import sys

from devicectl.cli import main

sys.exit(main())
