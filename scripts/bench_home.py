#!/usr/bin/env python3
"""Benchmark what one change of a live home costs, beside a parse measured in the same run:
Home Assistant's registries mapped to a home (`ha_home.home_from_registries`), the sources
merged (`live_home.merge`) and the merged home indexed and swapped into the engine
(`IntentEngine.set_home`), for homes of growing size.

Prints a table (median milliseconds of --repeat runs, and each as parses' worth). Usage:
    python scripts/bench_home.py [--sizes 100 1000 5000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable, Dict, List, Optional

AREAS = 20
FLOORS = 3
TEXT = "turn on the lamp 7 in room 3"


def registries(n: int) -> Dict[str, Any]:
    """Home Assistant's answers for a home of `n` exposed lights in AREAS areas."""
    floors = [{"floor_id": f"f{i}", "name": f"Floor {i}", "aliases": []} for i in range(FLOORS)]
    areas = [{"area_id": f"a{i}", "name": f"Room {i}", "aliases": [f"space {i}"],
              "floor_id": f"f{i % FLOORS}"} for i in range(AREAS)]
    ids = [f"light.lamp_{i}" for i in range(n)]
    entities = [{"entity_id": e, "area_id": f"a{i % AREAS}", "device_id": None, "name": None,
                 "disabled_by": None} for i, e in enumerate(ids)]
    states = [{"entity_id": e, "state": "off", "attributes": {"friendly_name": f"Lamp {i}"}}
              for i, e in enumerate(ids)]
    return {"floors": floors, "areas": areas, "devices": [], "entities": entities,
            "states": states,
            "exposed": {"exposed_entities": {e: {"conversation": True} for e in ids}},
            "extended": {e: {"aliases": [f"light {i}"]} for i, e in enumerate(ids)}}


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)

    from edge_slm.daemon.ha_home import HaRegistries, home_from_registries
    from edge_slm.daemon.live_home import merge
    from edge_slm.runtime.engine import IntentEngine

    engine = IntentEngine.load()
    for _ in range(20):
        engine.parse(TEXT)  # warm up
    parse_ms = median_ms(lambda: engine.parse(TEXT), max(args.repeat, 50))
    print(f"baseline: one parse of {TEXT!r}: {parse_ms:.2f} ms (median)")
    print(f"{'names':>6} | {'map (ms)':>9} | {'merge (ms)':>10} | {'set_home (ms)':>13} | "
          f"{'all, in parses':>14}")
    print(f"{'-' * 6}-+-{'-' * 9}-+-{'-' * 10}-+-{'-' * 13}-+-{'-' * 14}")
    for n in args.sizes:
        reg = HaRegistries(**registries(n))
        home = home_from_registries(reg)
        merged = merge([home])
        map_ms = median_ms(lambda: home_from_registries(reg), args.repeat)
        merge_ms = median_ms(lambda: merge([home]), args.repeat)
        swap_ms = median_ms(lambda: engine.set_home(merged.inventory), args.repeat)
        total = map_ms + merge_ms + swap_ms
        print(f"{n:>6} | {map_ms:>9.1f} | {merge_ms:>10.1f} | {swap_ms:>13.1f} | "
              f"{total / parse_ms:>14.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
