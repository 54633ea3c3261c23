"""Issue #12's targets for bench/scale.py: each with the ratio measured in the run.

The send cases of ``scale.py`` run once each, one deployment after another, and on a shared
2-core machine the load of other work drifts between them: their ratios moved by 10 points
from run to run. So the headline pairs (SQLite against the raw-Starlette ceiling, PostgreSQL
against SQLite, at C=32) also run **interleaved**: the three servers up together, one short case
each in turn, for a few rounds, every other round in reverse order. A target on those pairs is
read on the median of the per-round ratios (each round's cases ran seconds apart), and the single
cases' ratio is printed beside it.

Beside the PostgreSQL/SQLite pairs, where each case's CPU went: the node processes' busy CPUs
(req/s x server CPU per request), PostgreSQL's, and the whole machine's (every process, wrk and
Redis included). A node serves its requests on one event loop, so one process tops out near one
busy CPU whatever its store; what PostgreSQL and a second worker need besides has to fit in what
the machine has left.
"""

from __future__ import annotations

import os
import statistics

from scale_store import LABEL as STORE_LABEL

__all__ = ["Figures", "Rounds", "store_rate", "summary"]

#: One case's figures: req/s, server ms/op, PostgreSQL ms/op (None: no database), the machine's busy CPUs meanwhile.
Case = tuple[float, float, float | None, float]
#: Figures the summary reads: (case label, c, spread) -> the case's figures.
Figures = dict[tuple[str, int, int], Case]
#: The interleaved rounds: (``ceiling``/``SQLite``/``PostgreSQL``, spread) -> req/s of each round, in order.
Rounds = dict[tuple[str, int], list[float]]


def store_rate(rows: list[str], case: str) -> float:
    """The writes/s of one printed store-level row."""
    line = next(r for r in rows if r.startswith(case))
    return float(line[STORE_LABEL:].split()[1])


def _median_ratio(rounds: Rounds, top: str, bottom: str, spread: int) -> tuple[float, list[float]]:
    """The median over the rounds of ``top / bottom`` (in %), and each round's ratio."""
    ratios = [100 * a / b for a, b in zip(rounds[(top, spread)], rounds[(bottom, spread)], strict=True) if b]
    return statistics.median(ratios), ratios


def _cpus(case: Case) -> str:
    """A case's busy CPUs: its nodes' (+ PostgreSQL's) and, in brackets, the machine's."""
    rps, server_ms, pg_ms, machine = case
    database = f" + database {rps * pg_ms / 1000:.2f}" if pg_ms is not None else ""
    return f"{rps * server_ms / 1000:.2f}{database} (machine {machine:.2f})"


def _where_cpu_went(where: str, sqlite: Case, pg: Case, workers: Case) -> str:
    """The CPUs each C=32 case had busy, of the machine's (no target: why the pairs are what they are)."""
    return (f"  busy CPUs of {os.cpu_count()}, C=32, {where}: node SQLite {_cpus(sqlite)}; PostgreSQL {_cpus(pg)};"
            f" --workers 2 {_cpus(workers)}")


def summary(figures: Figures, store_rows: list[str], rounds: Rounds | None = None) -> list[str]:
    """Issue #12's targets, each with the ratio measured in this run.

    Args:
        figures: the single send cases.
        store_rows: the printed store-level rows.
        rounds: the interleaved headline rounds, when they ran: the ceiling and PostgreSQL/SQLite
            targets are then read on their medians.

    Returns:
        The printed lines.
    """
    lines = []

    def check(what: str, value: float, target: float, unit: str = "%", lower_is_better: bool = False,
              aside: str = "") -> None:
        met = value <= target if lower_is_better else value >= target
        shown = f"{value:.0f}%" if unit == "%" else f"{value:.2f} {unit}"
        goal = f"{'<=' if lower_is_better else '>='} {target:.0f}%" if unit == "%" else f"<= {target:.2f} {unit}"
        lines.append(f"{what:<62} {shown:>10}  target {goal:<10} {'met' if met else 'NOT met'}{aside}")

    def headline(what: str, single: float, top: str, bottom: str, spread: int, target: float) -> None:
        if rounds is None:
            check(what, single, target)
            return
        median, each = _median_ratio(rounds, top, bottom, spread)
        shown = "/".join(f"{r:.0f}" for r in each)
        check(f"{what} (interleaved)", median, target, aside=f"  (rounds {shown}%; single cases {single:.0f}%)")

    runs = [figures[(label, 32, 0)] for label in ("ceiling", "ceiling, again") if (label, 32, 0) in figures]
    ceiling = sum(r[0] for r in runs) / len(runs)
    ceiling_cpu = sum(r[1] for r in runs) / len(runs)
    for spread in (1, 32):
        sqlite, pg = figures[("SQLite", 32, spread)], figures[("PostgreSQL, 1 process", 32, spread)]
        where = "one thread" if spread == 1 else "32 threads"
        headline(f"PostgreSQL / SQLite send, C=32, {where}", 100 * pg[0] / sqlite[0], "PostgreSQL", "SQLite",
                 spread, 100)
        if pg[2] is not None:
            name = f"  the same in CPU per send (node; node + database), {where}"
            shown = f"{100 * sqlite[1] / pg[1]:.0f}%; {100 * sqlite[1] / (pg[1] + pg[2]):.0f}%"
            lines.append(f"{name:<62} {shown:>10}  (no target: SQLite's node CPU per send over PostgreSQL's: the"
                         " ratio where PostgreSQL has cores of its own; over PostgreSQL's node's and database's)")
        workers = figures[("PostgreSQL, --workers 2", 32, spread)]
        lines.append(_where_cpu_went(where, sqlite, pg, workers))
        check(f"PostgreSQL --workers 2 (one node) / SQLite send, C=32, {where}", 100 * workers[0] / sqlite[0], 100)
        headline(f"SQLite send / raw-Starlette ceiling, C=32, {where}", 100 * sqlite[0] / ceiling, "SQLite",
                 "ceiling", spread, 40)
        name = f"  the same in CPU per request (ceiling / send), {where}"
        lines.append(f"{name:<62} {100 * ceiling_cpu / sqlite[1]:>9.0f}%  (no target: the ratio a machine where"
                     " the server has a core of its own would show)")
        check(f"PostgreSQL server CPU per send, C=32, {where}", pg[1], 0.5, "ms", True)
        check(f"PostgreSQL CPU per send, C=32, {where}", pg[2] or 0.0, 0.4, "ms", True)
    for engine in ("SQLite", "PostgreSQL"):
        for where in ("32 threads", "1 thread"):
            with_events = store_rate(store_rows, f"{engine}, send + event, {where}")
            without = store_rate(store_rows, f"{engine}, send, no event, {where}")
            check(f"store, {engine}: writes with events / without, {where}", 100 * with_events / without, 90)
    # SQLite has one writer by design: its threads share it. On PostgreSQL the locking is per thread, but
    # send_message batches a busy thread's sends (one batch in flight per thread), so on a small CPU-bound
    # machine one thread is about as fast as 32: the structural target is read on the unbatched pair.
    for kind, what in (("unbatched send", "unbatched"), ("send + event", "batched")):
        on_many = store_rate(store_rows, f"PostgreSQL, {kind}, 32 threads")
        on_one = store_rate(store_rows, f"PostgreSQL, {kind}, 1 thread")
        name = f"store, PostgreSQL: 32 writers on 32 threads / on one, {what}"
        if what == "unbatched":
            check(name, 100 * on_many / on_one, 200)
        else:
            lines.append(f"{name:<62} {100 * on_many / on_one:>9.0f}%  (no target: batching evens them)")
    lines.append("  unbatched: each send its own statement, so one thread's sends queue on its row lock, one commit"
                 " each;")
    lines.append("  batched: one thread's sends pile up into one statement per commit, so it keeps up with 32 threads.")
    return lines
