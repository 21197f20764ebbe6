"""One subscribed client of the OPC UA benchmark, in its own process (so that its
Python work shares no GIL with the engine's process): subscribes to every element of
``bench.v`` at 100 ms, prints ``ready``, then after SECONDS prints one JSON object with
the notification latencies (ms): arrival (CLOCK_MONOTONIC) minus the value, which is
the engine time (CLOCK_MONOTONIC in real time) of the cycle that changed it.

Usage: python opcua_bench_client.py URL ITEMS SECONDS
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opcua_peers import Peer


def main() -> None:
    url, items, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    with Peer(url, timeout=30) as c:
        changes = c.subscribe([f"bench.v[{i}]" for i in range(items)], period_ms=100)
        time.sleep(1.0)  # the initial values arrive first
        start = len(changes)
        print("ready", flush=True)
        time.sleep(seconds)
        got = changes[start:]
    lat = sorted(ch.received * 1e3 - ch.value for ch in got)
    n = len(lat)
    print(
        json.dumps(
            {
                "notifications": n,
                "per_second": n / seconds,
                "p50_ms": lat[n // 2] if n else None,
                "p99_ms": lat[int(n * 0.99)] if n else None,
                "max_ms": lat[-1] if n else None,
                "bad": sum(ch.status != "Good" for ch in got),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
