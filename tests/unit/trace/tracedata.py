"""Arrays the trace tests record."""

from __future__ import annotations

import numpy as np

N = 3000


def plant_arrays(n: int = N) -> dict[str, object]:
    """A small plant: a level that rises and falls, a pump toggling every 400 cycles,
    a counter, a signed speed and a delay (TIME)."""
    i = np.arange(n)
    return {
        "tank.level": {
            "type": "REAL",
            "values": (np.sin(i / 300) * 50 + 50).astype(np.float32),
            "unit": "%",
            "area": "input",
        },
        "tank.pump": {"type": "BOOL", "values": (i // 400) % 2 == 1, "area": "output"},
        "count": ("DINT", i),
        "speed": ("INT", (i % 200) - 100),
        "delay": ("TIME", i * 1000),
    }
