"""``python -m softplc.cli``: the same as the ``softplc`` script."""

import sys

from softplc.cli import main

sys.exit(main())
