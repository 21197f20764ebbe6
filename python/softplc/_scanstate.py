"""Internal: the scan context stack shared by the authoring API and the standard
library (``now()`` reads the innermost entry, which has ``now_ns``)."""

from typing import Any

#: The I/O objects of the scans in progress (innermost last).
current_io: list[Any] = []
