"""``python -m softplc.cli.trace``: the trace viewer on its own."""

import sys

from softplc.cli.trace import main

sys.exit(main())
