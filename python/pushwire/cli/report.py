"""What `pushwire send` and `pushwire demo` show: a live progress bar and a summary table.

The counts are kept in constant memory (latencies in a log-scale histogram, 2 % wide
buckets), so the summary of a 10-million-row send costs no more than that of a small one.
The progress bar is shown only when stdout is a terminal.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from types import TracebackType
from typing import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from .._results import Outcome, Result

#: Histogram bucket growth: percentiles are exact to within 2 %.
_GROWTH = 1.02
_LOG_GROWTH = math.log(_GROWTH)
_MIN_LATENCY = 1e-6
#: How the engine's errors for a notification that never left start.
_NOT_SENT = "not sent: "
#: Distinct causes of unsent notifications kept for the error lines after a run.
MAX_UNSENT_CAUSES = 5
#: Columns from which the progress bar also shows the outcomes so far.
WIDE_TERMINAL = 140


class LatencyHistogram:
    def __init__(self) -> None:
        self._buckets: Counter[int] = Counter()
        self.count = 0

    def add(self, seconds: float) -> None:
        self._buckets[int(math.log(max(seconds, _MIN_LATENCY) / _MIN_LATENCY) / _LOG_GROWTH)] += 1
        self.count += 1

    def percentile(self, q: float) -> float:
        """The latency below which a fraction ``q`` of the results fall, in seconds."""
        if not self.count:
            return 0.0
        rank = min(self.count - 1, int(q * self.count))
        seen = 0
        for bucket in sorted(self._buckets):
            seen += self._buckets[bucket]
            if seen > rank:
                return float(_MIN_LATENCY * _GROWTH ** (bucket + 0.5))
        return 0.0  # pragma: no cover - the loop always returns


def reason_label(result: Result) -> str:
    """How a result is grouped in the summary: ``410 Unregistered``, ``no answer (timeout)``."""
    if result.reason:
        return f"{result.status} {result.reason}"
    if result.outcome is Outcome.TIMEOUT:
        return "no answer (timeout)"
    if result.outcome is Outcome.FAILED:
        if result.maybe_delivered:
            return "no answer (connection lost)"
        # Why it could not be sent, its first words: the whole cause is printed once, after
        # the table (see unsent_errors).
        return f"not sent: {failure_cause(result).split(' (', 1)[0]}"
    return f"{result.status}" if result.status != 200 else ""


def failure_cause(result: Result) -> str:
    """The engine's reason for a failure without its own ``not sent:`` prefix (the CLI says
    "not sent" itself)."""
    error = result.error or "unknown"
    return error[len(_NOT_SENT) :] if error.startswith(_NOT_SENT) else error


class Tally:
    """Running counts of results, for the progress bar and the summary."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.latency = LatencyHistogram()
        self.results = 0
        self.started = time.perf_counter()
        self.finished: float | None = None
        #: Whole causes of notifications that could not be sent (no connection...), counted;
        #: at most MAX_UNSENT_CAUSES distinct ones, the others in ``other_unsent``.
        self.unsent_causes: Counter[str] = Counter()
        self.other_unsent = 0

    def _add_unsent_cause(self, cause: str) -> None:
        if cause in self.unsent_causes or len(self.unsent_causes) < MAX_UNSENT_CAUSES:
            self.unsent_causes[cause] += 1
        else:
            self.other_unsent += 1

    def unsent_errors(self) -> list[str]:
        """One line per cause of notifications that could not be sent, with the whole cause
        (the table shows only its first words)."""
        lines = [
            f"{count:,} notification{'s' if count > 1 else ''} not sent: {cause}"
            for cause, count in self.unsent_causes.most_common()
        ]
        if self.other_unsent:
            lines.append(f"{self.other_unsent:,} more not sent for other reasons (see --results)")
        return lines

    def add(self, result: Result) -> None:
        self.results += 1
        self.outcomes[result.outcome.value] += 1
        if result.outcome is not Outcome.DELIVERED:
            self.reasons[reason_label(result)] += 1
            if result.outcome is Outcome.FAILED and not result.maybe_delivered:
                self._add_unsent_cause(failure_cause(result))
        if result.stream_id:  # it went on the wire: its latency means something
            self.latency.add(result.latency)

    def add_unsent(self, label: str) -> None:
        """A row without a result from the provider (bad input, outcome lost)."""
        self.results += 1
        self.outcomes[Outcome.FAILED.value] += 1
        self.reasons[label] += 1

    def stop(self) -> None:
        self.finished = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    @property
    def rate(self) -> float:
        return self.results / self.elapsed if self.elapsed > 0 else 0.0

    def outcomes_text(self) -> str:
        return "  ".join(f"{k} {v:,}" for k, v in sorted(self.outcomes.items()))


class LiveProgress:
    """A progress bar (rate, in flight, outcomes so far) refreshed at most ten times a second.

    ``total`` is what ``completed`` counts towards (results, or input bytes read); None
    shows a pulsing bar. Disabled, it prints nothing and costs one comparison per update.
    """

    def __init__(
        self,
        console: Console,
        *,
        enabled: bool,
        total: float | None,
        label: str = "sending",
    ) -> None:
        self.enabled = enabled
        # At 80 columns everything must fit on one line without being cut: a short bar, and
        # the outcomes (in the summary at the end anyway) only on wide terminals.
        wide = console.width >= WIDE_TERMINAL
        outcomes = [TextColumn("{task.fields[outcomes]}")] if wide else []
        self._progress = Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(bar_width=20 if wide else 10),
            TaskProgressColumn(),
            TextColumn("{task.fields[results]:>9,} results"),
            TextColumn("{task.fields[rate]:>7,.0f}/s"),
            TextColumn("in flight {task.fields[in_flight]:>5,}"),
            *outcomes,
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self._total = total
        self._task: TaskID | None = None
        self._next_update = 0.0

    def __enter__(self) -> LiveProgress:
        self._progress.__enter__()
        self._task = self._progress.add_task(
            "send", total=self._total, results=0, rate=0.0, in_flight=0, outcomes=""
        )
        return self

    def update(
        self, tally: Tally, in_flight: Callable[[], int], completed: float, *, force: bool = False
    ) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now < self._next_update and not force:
            return
        self._next_update = now + 0.1
        assert self._task is not None
        self._progress.update(
            self._task,
            completed=completed,
            results=tally.results,
            rate=tally.rate,
            in_flight=in_flight(),
            outcomes=tally.outcomes_text(),
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.__exit__(exc_type, exc, tb)


def summary_table(
    title: str,
    tally: Tally,
    *,
    before: Sequence[tuple[str, str]] = (),
    after: Sequence[tuple[str, str]] = (),
) -> Table:
    """Throughput, latency p50/p99, counts by outcome and reason, then ``after`` rows
    (tokens to drop, where the results went...)."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", justify="right", overflow="fold")
    latency = tally.latency
    rows = [
        *before,
        ("throughput", f"{tally.rate:,.0f} notifications/s ({tally.elapsed:.2f} s)"),
        (
            "latency p50 / p99",
            f"{latency.percentile(0.5) * 1000:.1f} ms / {latency.percentile(0.99) * 1000:.1f} ms",
        ),
    ]
    rows += [
        (f"outcome {outcome.value}", f"{tally.outcomes[outcome.value]:,}")
        for outcome in Outcome
        if tally.outcomes[outcome.value]
    ]
    rows += [(f"  {reason}", f"{n:,}") for reason, n in tally.reasons.most_common()]
    rows += after
    for what, value in rows:
        # Text, not markup: values quote paths and provider reasons verbatim.
        table.add_row(Text(what), Text(value))
    return table
