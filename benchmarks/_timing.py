"""Timing helpers shared by the benchmarks: interleaved best-of and a host-speed probe.

The project's machine is a shared VM whose speed drifts between a fast and
a slow mode (a fixed loop takes anywhere from 1x to about 1.8x its fastest
time within half a minute, with nothing else running). Repeating one case
back to back puts all of its samples in the same mode; running the cases in
rounds, each round over every case, spreads every case's samples over the
whole run, so each case's minimum -- the least disturbed run -- comes from
the same conditions as every other case's. :func:`host_probe` times a fixed
pure-Python loop once per round so a report can show how far the host moved.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Hashable, Mapping


def host_probe() -> float:
    """Seconds of process time of a fixed pure-Python loop (the host's speed right now)."""
    started = time.process_time()
    total = 0
    for i in range(300_000):
        total += i
    return time.process_time() - started


def interleaved_samples(
    cases: Mapping[Hashable, Callable[[], object]],
    rounds: int,
    clock: Callable[[], float] = time.process_time,
    collect: bool = False,
) -> tuple[dict[Hashable, list[float]], list[float]]:
    """Every case's time in each of ``rounds`` rounds, and the host probe of each round.

    Odd rounds run the cases in reverse order, so no case always runs right
    after the same other one (what a case leaves behind, a cold cache or
    garbage, lands on its successor). A case's result is released after its
    clock stops (freeing it is not part of what is measured). With
    ``collect``, a full garbage collection runs before each case, outside
    its clock (for cases that build large heaps, so one case's garbage is
    not collected on the next one's time).
    """
    samples: dict[Hashable, list[float]] = {key: [] for key in cases}
    probes = []
    order = list(cases.items())
    for index in range(rounds):
        probes.append(host_probe())
        for key, fn in order if index % 2 == 0 else reversed(order):
            if collect:
                gc.collect()
            started = clock()
            result = fn()
            samples[key].append(clock() - started)
            del result
    return samples, probes


def interleaved_best(
    cases: Mapping[Hashable, Callable[[], object]],
    rounds: int,
    clock: Callable[[], float] = time.process_time,
    collect: bool = False,
) -> tuple[dict[Hashable, float], list[float]]:
    """Each case's fastest time over ``rounds`` rounds (see :func:`interleaved_samples`)."""
    samples, probes = interleaved_samples(cases, rounds, clock, collect)
    return {key: min(times) for key, times in samples.items()}, probes


def probe_line(probes: list[float]) -> str:
    """A one-line summary of the host probes (how much the machine's speed moved)."""
    low, high = min(probes), max(probes)
    return f"host probe {low * 1e3:.1f}-{high * 1e3:.1f} ms over {len(probes)} rounds (spread {high / low:.2f}x)"
