"""Tables, ratios against the goals, and the Markdown report."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from . import report_issue21
from .common import (
    AIOAPNS_CONCURRENCY,
    BAD_TOKEN_PREFIX,
    BUSY_MACHINE_CORES,
    DELAY_PREFIX,
    FCM_DATA,
    FCM_PROJECT,
    H2LOAD_URIS,
    HANG_EVERY,
    HANG_PREFIX,
    HANG_REQUEST_TIMEOUT,
    HTTPX_CONCURRENCY,
    HTTPX_STREAMS_PER_CONNECTION,
    KEY_ID,
    LATENCY_MS,
    MAX_CONNECTIONS,
    MOCK_RULES,
    PAYLOAD,
    PUSHWIRE_MAX_IN_FLIGHT,
    REJECT_EVERY,
    SERVER_MAX_STREAMS,
    STREAM_LATENCY_SAMPLES,
    TEAM_ID,
    TOPIC,
    UNREGISTERED_PREFIX,
    WARMUP,
)
from .measure import Run, loadavg
from .scenarios import SCENARIOS, SERVERS, TOOLS, Config

RSS_GOAL_MB = 150
GOAL_VS_H2LOAD = 0.8
GOAL_VS_AIOAPNS = 10.0
GOAL_LATENCY_FRACTION = 0.9
GOAL_SINGLE_VS_BULK = 0.5
#: Issue 21: per-call ``await client.send()`` CPU per notification at most 2x bulk's.
GOAL_SINGLE_CPU_VS_BULK = 2.0
GOAL_HANG_ANSWERED = 0.9
HANG_SLACK_S = 1.0


@dataclass
class Row:
    scenario: str
    server: str
    tool: str
    n: int
    runs: list[Run]

    def values(self, key: str) -> list[float]:
        return [
            r.report[key]
            for r in self.runs
            if r.ok and r.report is not None and r.report.get(key) is not None
        ]

    def median(self, key: str) -> float | None:
        values = self.values(key)
        return statistics.median(values) if values else None

    def best(self, key: str) -> float | None:
        """The largest value over repeats (for rates: the least disturbed repeat)."""
        return max(self.values(key), default=None)

    @property
    def failed(self) -> list[Run]:
        return [r for r in self.runs if not r.ok]

    def cpu_per_million(self) -> float | None:
        cpu = self.median("cpu_s")
        return None if cpu is None else cpu / self.n * 1e6

    def server_cpu_per_million(self) -> float | None:
        # The server also answered the warm-up: count it in the denominator.
        per_notification = [
            r.server_cpu_s / (r.n + r.warmup)
            for r in self.runs
            if r.ok and r.server_cpu_s is not None
        ]
        return statistics.median(per_notification) * 1e6 if per_notification else None

    def peak_rss(self) -> float | None:
        values = self.values("maxrss_mb")
        return max(values) if values else None

    def other_load(self) -> float | None:
        loads = [r.other_cores for r in self.runs if r.ok and r.other_cores is not None]
        return statistics.median(loads) if loads else None

    def budget(self) -> int:
        return max((r.budget for r in self.runs), default=0)


def build_rows(runs: list[Run]) -> list[Row]:
    rows: dict[tuple[str, str, str], Row] = {}
    for run in runs:
        rows.setdefault(run.key, Row(run.scenario, run.server, run.tool, run.n, []))
        rows[run.key].runs.append(run)

    def order(row: Row) -> tuple[int, int, int]:
        return (SCENARIOS.index(row.scenario), SERVERS.index(row.server), TOOLS.index(row.tool))

    return sorted(rows.values(), key=order)


def fmt(value: float | None, spec: str = ",.0f") -> str:
    return "—" if value is None else format(value, spec)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def times(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else f"{value:{spec}}x"


# -- per-scenario tables ----------------------------------------------------------------------


def budget(row: Row) -> str:
    streams = max((r.streams for r in row.runs), default=0) or SERVER_MAX_STREAMS
    if row.tool == "httpx":
        streams = min(streams, HTTPX_STREAMS_PER_CONNECTION)
    return f"{row.budget()} x {streams:,}" if row.budget() else "—"


def row_status(row: Row) -> str:
    if row.failed:
        first = row.failed[0]
        return f"**FAILED** {len(row.failed)}/{len(row.runs)}: {first.error}"
    status = "ok"
    if row.scenario == "hang":
        hung = {r.report["hung"] for r in row.runs if r.report is not None}
        status += f"; exactly the {', '.join(f'{h:,}' for h in hung)} hung tokens timed out"
    if row.scenario == "fcm-bulk":
        status += "; 1 OAuth2 grant per child, in the warm-up"
    if row.scenario == "rejected-5pct":
        outcomes = row.runs[0].report["outcomes"] if row.runs[0].report else {}
        status += "; " + ", ".join(f"{v:,} {k}" for k, v in sorted(outcomes.items()))
    if row.scenario == "stream-1m":
        rss = row.peak_rss()
        met = rss is not None and rss < RSS_GOAL_MB
        status += f"; RSS goal < {RSS_GOAL_MB} MB {'met' if met else '**NOT met**'}"
    return status


def scenario_table(rows: list[Row], config: Config) -> str:
    lines = [
        "| server | tool | N | connections x streams | notifications/s (median) | min | max | "
        "p50 ms | p99 ms | peak RSS MB | CPU s / 1M | server CPU s / 1M | status |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        rates = row.values("rate")
        tool = f"{row.tool} (FCM v1)" if row.scenario == "fcm-bulk" else row.tool
        lines.append(
            f"| {row.server} | {tool} | {row.n:,} | {budget(row)} | "
            f"{fmt(row.median('rate'))} | {fmt(min(rates, default=None))} | "
            f"{fmt(max(rates, default=None))} | {fmt(row.median('p50_ms'), '.2f')} | "
            f"{fmt(row.median('p99_ms'), '.2f')} | {fmt(row.peak_rss(), '.1f')} | "
            f"{fmt(row.cpu_per_million(), '.1f')} | {fmt(row.server_cpu_per_million(), '.1f')} | "
            f"{row_status(row)} |"
        )
    return "\n".join(lines)


def load_caveat(rows: dict[str, Row]) -> str:
    """A warning when neighbours loaded the machine while the compared rows ran."""
    loads = {name: row.other_load() for name, row in rows.items()}
    if all(load is None or load < BUSY_MACHINE_CORES for load in loads.values()):
        return ""
    shown = ", ".join(f"{name} {fmt(load, '.2f')}" for name, load in loads.items())
    return (
        f" Other processes' load while these ran (median cores): {shown}; a rate ratio moves "
        "with it, the best-repeat ratio and CPU per notification are steadier."
    )


def versus_lines(rows: list[Row]) -> list[str]:
    """pushwire against each peer on the same server, same scenario."""
    lines = []
    for server in SERVERS:
        by_tool = {r.tool: r for r in rows if r.server == server}
        pw = by_tool.get("pushwire")
        if pw is None:
            continue
        parts = []
        for peer in ("h2load", "aioapns", "httpx"):
            other = by_tool.get(peer)
            if other is None:
                continue
            parts.append(
                f"/ {peer}: throughput {times(ratio(pw.median('rate'), other.median('rate')))} "
                f"(best repeats {times(ratio(pw.best('rate'), other.best('rate')))}), CPU per "
                f"notification {times(ratio(pw.cpu_per_million(), other.cpu_per_million()))}"
            )
        if parts:
            lines.append(f"pushwire on {server} " + "; ".join(parts) + ".")
    return lines


def find(rows: list[Row], scenario: str, server: str, tool: str) -> Row | None:
    return next(
        (r for r in rows if (r.scenario, r.server, r.tool) == (scenario, server, tool)), None
    )


def latency_bounds(config: Config, rows: list[Row]) -> tuple[float, float | None]:
    """(pipeline bound, CPU bound): connections x streams / RTT, and pushwire's bulk rate
    against the mock in the same run (what it does without latency)."""
    pipeline = config.latency_connections * config.latency_streams / (LATENCY_MS / 1000)
    bulk = find(rows, "bulk", "mock", "pushwire")
    return pipeline, None if bulk is None else bulk.median("rate")


def latency_lines(rows: list[Row], all_rows: list[Row], config: Config) -> list[str]:
    pipeline, cpu = latency_bounds(config, all_rows)
    bound = pipeline if cpu is None else min(pipeline, cpu)
    httpx_streams = min(config.latency_streams, HTTPX_STREAMS_PER_CONNECTION)
    httpx_bound = config.latency_connections * httpx_streams / (LATENCY_MS / 1000)
    lines = [
        f"Pipeline bound = {config.latency_connections} connection(s) x "
        f"{config.latency_streams:,} streams / {LATENCY_MS} ms = {pipeline:,.0f}/s; CPU bound = "
        f"pushwire's `bulk` rate against the mock in this run = {fmt(cpu)}/s; the goal is "
        f"measured against the lower, {bound:,.0f}/s. httpx opens at most "
        f"{HTTPX_STREAMS_PER_CONNECTION} streams per connection, so its own pipeline bound is "
        f"{httpx_bound:,.0f}/s."
    ]
    fractions = [
        f"{row.tool} {times(ratio(row.median('rate'), bound))} (of the pipeline bound alone "
        f"{times(ratio(row.median('rate'), pipeline))})"
        for row in rows
    ]
    if fractions:
        lines.append(
            "Fraction of the lower bound (for every tool, pushwire's CPU bound when it is the "
            "lower): " + ", ".join(fractions) + "."
        )
    return lines


def single_line(row: Row, all_rows: list[Row]) -> str:
    bulk = find(all_rows, "bulk", "mock", "pushwire")
    if bulk is None:
        return "single-send / bulk: — (no pushwire `bulk` row in this run)."
    tasks = row.runs[0].report.get("tasks") if row.runs[0].report else None
    return (
        f"{fmt(tasks, ',')} concurrent tasks, each awaiting `client.send()` of one "
        "notification in a loop. single-send / "
        f"bulk (pushwire, mock, same run): "
        f"{times(ratio(row.median('rate'), bulk.median('rate')))} "
        f"({fmt(row.median('rate'))}/s vs {fmt(bulk.median('rate'))}/s; best repeats "
        f"{times(ratio(row.best('rate'), bulk.best('rate')))}), CPU per notification "
        f"{times(ratio(row.cpu_per_million(), bulk.cpu_per_million()))}."
        + load_caveat({"bulk": bulk, "single-send": row})
    )


def fcm_line(fcm: Row, bulk: Row | None) -> str:
    """FCM beside APNs: the pushwire rows of the same run."""
    if bulk is None or bulk.median("rate") is None:
        return "FCM / APNs: — (no successful pushwire `bulk` row in this run)."
    parts = [
        f"throughput {times(ratio(fcm.median('rate'), bulk.median('rate')))} "
        f"({fmt(fcm.median('rate'))}/s vs {fmt(bulk.median('rate'))}/s; best repeats "
        f"{times(ratio(fcm.best('rate'), bulk.best('rate')))})",
        f"CPU per message {times(ratio(fcm.cpu_per_million(), bulk.cpu_per_million()))}",
        f"mock CPU per message "
        f"{times(ratio(fcm.server_cpu_per_million(), bulk.server_cpu_per_million()))}",
        f"peak RSS {times(ratio(fcm.peak_rss(), bulk.peak_rss()))}",
    ]
    note = load_caveat({"APNs bulk": bulk, "FCM": fcm})
    return "FCM / APNs (pushwire, `fcm-bulk` / `bulk`, same run): " + ", ".join(parts) + "." + note


def hang_table(row: Row) -> str:
    walls, rates = row.values("wall_s"), row.values("answered_rate")
    hung = max(row.values("hung"), default=None)
    fired = row.values("timeout_latency_min_s") + row.values("timeout_latency_max_s")
    fired_range = f"{min(fired):.2f}-{max(fired):.2f}" if fired else "—"
    return (
        "| server | tool | N | hung (timeout) | completion s (median) | min | max | "
        "answered/s (median) | min | max | answered p50 ms | answered p99 ms | "
        "timeout latency s | peak RSS MB | CPU s / 1M | server CPU s / 1M | status |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
        f"| {row.server} | {row.tool} | {row.n:,} | {fmt(hung, ',')} | "
        f"{fmt(row.median('wall_s'), '.2f')} | "
        f"{fmt(min(walls, default=None), '.2f')} | {fmt(max(walls, default=None), '.2f')} | "
        f"{fmt(row.median('answered_rate'))} | {fmt(min(rates, default=None))} | "
        f"{fmt(max(rates, default=None))} | {fmt(row.median('p50_ms'), '.2f')} | "
        f"{fmt(row.median('p99_ms'), '.2f')} | {fired_range} | {fmt(row.peak_rss(), '.1f')} | "
        f"{fmt(row.cpu_per_million(), '.1f')} | {fmt(row.server_cpu_per_million(), '.1f')} | "
        f"{row_status(row)} |"
    )


def hang_line(hang: Row, bulk: Row | None) -> str:
    """The hang run against the all-delivered pushwire bulk run of the same run."""
    tail = hang.median("tail_s")
    lines = [
        f"Completion = the whole `send_to_tokens` call; answered/s = the {HANG_EVERY - 1}% "
        "answered notifications over the time until the last of their answers reached the event "
        f"loop. After the last answer the call waited {fmt(tail, '.2f')} s (median) for the hung "
        f"streams (`request_timeout={HANG_REQUEST_TIMEOUT:g}`)."
    ]
    if bulk is None or bulk.median("rate") is None:
        lines.append("hang / bulk: — (no pushwire `bulk` row in this run).")
        return "\n\n".join(lines)
    bulk_rate, bulk_best = bulk.median("rate"), bulk.best("rate")
    assert bulk_rate is not None and bulk_best is not None
    bulk_time = hang.n / bulk_rate
    lines.append(
        "hang / bulk (pushwire APNs, same run): answered throughput "
        f"{times(ratio(hang.median('answered_rate'), bulk_rate))} "
        f"({fmt(hang.median('answered_rate'))}/s vs {fmt(bulk_rate)}/s all delivered; best "
        f"repeats {times(ratio(hang.best('answered_rate'), bulk_best))}), completion time "
        f"{times(ratio(hang.median('wall_s'), bulk_time))} "
        f"({fmt(hang.median('wall_s'), '.2f')} s vs {bulk_time:.2f} s for {hang.n:,} at the bulk "
        "rate), CPU per notification "
        f"{times(ratio(hang.cpu_per_million(), bulk.cpu_per_million()))}."
        + load_caveat({"bulk": bulk, "hang": hang})
    )
    return "\n\n".join(lines)


SCENARIO_INTRO = {
    "bulk": "All delivered; every tool against the same server, one after the other.",
    "latency-40ms": (
        f"Every answer {LATENCY_MS} ms late (mock rule `{DELAY_PREFIX}=delay:{LATENCY_MS}`, "
        "injected server-side per stream; connection setup is not delayed)."
    ),
    "rejected-5pct": (
        f"5% rejected: token i with i % {2 * REJECT_EVERY} == 0 gets 410 Unregistered (with a "
        f"timestamp), i % {2 * REJECT_EVERY} == {REJECT_EVERY} gets 400 BadDeviceToken; the "
        "count of each outcome is checked exactly."
    ),
    "hang": f"1% of tokens never answered, `request_timeout={HANG_REQUEST_TIMEOUT:g}`.",
    "stream-1m": "`client.stream()` over a generator: bounded memory.",
    "single-send-10k": "Many small `await client.send()` calls (the embedded-service pattern).",
    "fcm-bulk": "FCM v1 with real OAuth2 against the mock.",
    "wire-bytes": report_issue21.WIRE_INTRO,
    "stream-10m": report_issue21.STREAM_INTRO,
}


def render_tables(rows: list[Row], config: Config) -> str:
    bulk = find(rows, "bulk", "mock", "pushwire")
    blocks = []
    for scenario in [s for s in SCENARIOS if any(r.scenario == s for r in rows)]:
        scenario_rows = [r for r in rows if r.scenario == scenario]
        blocks += [f"### {scenario}", SCENARIO_INTRO[scenario]]
        if scenario == "hang":
            for row in scenario_rows:
                blocks += [hang_table(row), hang_line(row, bulk)]
            continue
        if scenario == "wire-bytes":
            blocks += report_issue21.wire_table(scenario_rows)
            continue
        blocks.append(scenario_table(scenario_rows, config))
        if scenario == "stream-10m":
            blocks += report_issue21.stream_lines(scenario_rows)
        if scenario in ("bulk", "rejected-5pct", "latency-40ms"):
            blocks += versus_lines(scenario_rows)
        if scenario == "latency-40ms":
            blocks += latency_lines(scenario_rows, rows, config)
        if scenario == "single-send-10k":
            blocks += [single_line(row, rows) for row in scenario_rows]
        if scenario == "fcm-bulk":
            blocks += [fcm_line(row, bulk) for row in scenario_rows]
    blocks.append(
        f"Medians of {config.repeats} repeat(s); min/max are over repeats; peak RSS is the "
        "largest over repeats."
    )
    return "\n\n".join(blocks) + "\n"


# -- goals ------------------------------------------------------------------------------------


@dataclass
class Goal:
    what: str
    median: str
    best: str
    goal: str
    met: bool | None  # None: no goal, or not measured

    @property
    def verdict(self) -> str:
        if self.met is None:
            return "—" if self.goal == "—" else "not measured"
        return "met" if self.met else "**not met**"


def _at_least(value: float | None, goal: float) -> bool | None:
    return None if value is None else value >= goal


def goals(rows: list[Row], config: Config) -> list[Goal]:
    out = []

    def rate_ratio(a: Row | None, b: Row | None) -> tuple[float | None, float | None]:
        if a is None or b is None:
            return None, None
        return ratio(a.median("rate"), b.median("rate")), ratio(a.best("rate"), b.best("rate"))

    for scenario in ("bulk", "rejected-5pct"):
        for server in SERVERS:
            pw = find(rows, scenario, server, "pushwire")
            for peer, goal in (("h2load", GOAL_VS_H2LOAD), ("aioapns", GOAL_VS_AIOAPNS)):
                peer_row = find(rows, scenario, server, peer)
                if pw is None or peer_row is None:
                    continue
                med, best = rate_ratio(pw, peer_row)
                has_goal = scenario == "bulk"
                out.append(
                    Goal(
                        f"{scenario}, {server}: pushwire / {peer} (notifications/s)",
                        times(med),
                        times(best),
                        f">= {goal:g}x" if has_goal else "—",
                        _at_least(med, goal) if has_goal else None,
                    )
                )
            httpx = find(rows, scenario, server, "httpx")
            if pw is not None and httpx is not None and scenario == "bulk":
                med, best = rate_ratio(pw, httpx)
                out.append(
                    Goal(
                        f"{scenario}, {server}: pushwire / httpx",
                        times(med),
                        times(best),
                        "—",
                        None,
                    )
                )
    latency = find(rows, "latency-40ms", "mock", "pushwire")
    if latency is not None:
        pipeline, cpu = latency_bounds(config, rows)
        bound = pipeline if cpu is None else min(pipeline, cpu)
        bulk = find(rows, "bulk", "mock", "pushwire")
        best_bound = pipeline if bulk is None else min(pipeline, bulk.best("rate") or pipeline)
        med = ratio(latency.median("rate"), bound)
        out.append(
            Goal(
                f"latency-40ms: pushwire / min(pipeline bound {pipeline:,.0f}/s, "
                f"CPU bound {fmt(cpu)}/s)",
                times(med),
                times(ratio(latency.best("rate"), best_bound)),
                f">= {GOAL_LATENCY_FRACTION:g}x",
                _at_least(med, GOAL_LATENCY_FRACTION),
            )
        )
        if bulk is not None:
            out.append(
                Goal(
                    "latency-40ms / bulk, pushwire (mock)",
                    times(ratio(latency.median("rate"), bulk.median("rate"))),
                    times(ratio(latency.best("rate"), bulk.best("rate"))),
                    "—",
                    None,
                )
            )
        h2 = find(rows, "latency-40ms", "mock", "h2load")
        h2_bulk = find(rows, "bulk", "mock", "h2load")
        if h2 is not None:
            out.append(
                Goal(
                    "latency-40ms: h2load / pipeline bound",
                    times(ratio(h2.median("rate"), pipeline)),
                    times(ratio(h2.best("rate"), pipeline)),
                    "—",
                    None,
                )
            )
        if h2 is not None and h2_bulk is not None:
            out.append(
                Goal(
                    "latency-40ms / bulk, h2load (mock): the same server's cost of 40 ms",
                    times(ratio(h2.median("rate"), h2_bulk.median("rate"))),
                    times(ratio(h2.best("rate"), h2_bulk.best("rate"))),
                    "—",
                    None,
                )
            )
    bulk = find(rows, "bulk", "mock", "pushwire")
    single = find(rows, "single-send-10k", "mock", "pushwire")
    if single is not None:
        med, best = rate_ratio(single, bulk)
        out.append(
            Goal(
                "single-send-10k / bulk (pushwire, mock)",
                times(med),
                times(best),
                f">= {GOAL_SINGLE_VS_BULK:g}x",
                _at_least(med, GOAL_SINGLE_VS_BULK),
            )
        )
        if bulk is not None:
            # Client CPU per notification, the median of each side's repeats (same run).
            cpu = ratio(single.cpu_per_million(), bulk.cpu_per_million())
            out.append(
                Goal(
                    "single-send-10k CPU per notification / bulk's (pushwire, mock)",
                    times(cpu),
                    "—",
                    f"<= {GOAL_SINGLE_CPU_VS_BULK:g}x",
                    None if cpu is None else cpu <= GOAL_SINGLE_CPU_VS_BULK,
                )
            )
    hang = find(rows, "hang", "mock", "pushwire")
    if hang is not None:
        med = ratio(hang.median("answered_rate"), bulk.median("rate") if bulk else None)
        best = ratio(hang.best("answered_rate"), bulk.best("rate") if bulk else None)
        out.append(
            Goal(
                "hang: answered 99% throughput / bulk (pushwire, mock)",
                times(med),
                times(best),
                f">= {GOAL_HANG_ANSWERED:g}x",
                _at_least(med, GOAL_HANG_ANSWERED),
            )
        )
        limit = HANG_REQUEST_TIMEOUT + HANG_SLACK_S
        tail = hang.median("tail_s")
        tails = hang.values("tail_s")
        out.append(
            Goal(
                "hang: completion after the last answer (the hung streams' wait)",
                f"{fmt(tail, '.2f')} s",
                f"{fmt(min(tails, default=None), '.2f')} s",
                f"<= request_timeout + {HANG_SLACK_S:g} s = {limit:g} s",
                None if tail is None else tail <= limit,
            )
        )
        if bulk is not None and bulk.median("rate"):
            bulk_rate = bulk.median("rate")
            assert bulk_rate is not None
            allowed = hang.n / bulk_rate + limit
            wall = hang.median("wall_s")
            out.append(
                Goal(
                    "hang: completion vs all-delivered time + request_timeout + 1 s",
                    f"{fmt(wall, '.2f')} s",
                    f"{fmt(min(hang.values('wall_s'), default=None), '.2f')} s",
                    f"<= {allowed:.2f} s",
                    None if wall is None else wall <= allowed,
                )
            )
    stream = find(rows, "stream-1m", "mock", "pushwire")
    if stream is not None:
        rss = stream.peak_rss()
        out.append(
            Goal(
                f"stream-1m: peak RSS ({stream.n:,} streamed; CPU "
                f"{fmt(stream.cpu_per_million(), '.1f')} s per million)",
                f"{fmt(rss, '.1f')} MB",
                "—",
                f"< {RSS_GOAL_MB} MB",
                None if rss is None else rss < RSS_GOAL_MB,
            )
        )
    fcm = find(rows, "fcm-bulk", "mock", "pushwire")
    if fcm is not None and bulk is not None:
        med, best = rate_ratio(fcm, bulk)
        out.append(Goal("fcm-bulk / bulk (pushwire, mock)", times(med), times(best), "—", None))
    out += report_issue21.goals(rows, Goal)
    return out


def goals_table(rows: list[Row], config: Config) -> str:
    lines = [
        "| comparison (same run) | median | best repeats | goal | verdict |",
        "|---|---:|---:|---|---|",
    ]
    for g in goals(rows, config):
        lines.append(f"| {g.what} | {g.median} | {g.best} | {g.goal} | {g.verdict} |")
    return "\n".join(lines) + "\n"


# -- every run --------------------------------------------------------------------------------


def describe_run(run: Run) -> str:
    load = f"server cpu {fmt(run.server_cpu_s, '.2f')} s, other load {fmt(run.other_cores, '.2f')}"
    if run.report is None:
        return f"FAILED: {run.error}; {load}"
    r = run.report
    status = "ok" if r["ok"] else f"FAILED: {r['error']}"
    hang = f"answered {fmt(r.get('answered_rate'))}/s, " if "answered_rate" in r else ""
    return (
        f"{r['rate']:,.0f}/s, {hang}{r['wall_s']:.2f} s, cpu {r['cpu_s']:.2f} s, "
        f"rss {r['maxrss_mb']:.0f} MB, {load} cores, {status}"
    )


def runs_table(runs: list[Run]) -> str:
    """Every repeat, raw, so outliers can be told apart from a busy machine."""
    lines = [
        "| repeat | scenario | server | tool | N | notifications/s | wall s | CPU s | "
        "peak RSS MB | connections opened | server CPU s | other load (cores) | status |",
        "|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        r = run.report or {}
        status = "ok" if run.ok else f"FAILED: {run.error}"
        if run.ok and run.scenario == "hang":
            retired = r["engine"]["dead_by_timeouts"]
            status += (
                f" ({r['hung']:,} timeouts; {r['answered']:,} answered in "
                f"{fmt(r['answered_s'], '.2f')} s = {fmt(r['answered_rate'])}/s"
                + (f"; {retired} connections retired as dead by timeouts" if retired else "")
                + ")"
            )
        lines.append(
            f"| {run.repeat} | {run.scenario} | {run.server} | {run.tool} | {run.n:,} | "
            f"{fmt(r.get('rate'))} | {fmt(r.get('wall_s'), '.2f')} | "
            f"{fmt(r.get('cpu_s'), '.2f')} | {fmt(r.get('maxrss_mb'), '.1f')} | "
            f"{r.get('connections', '—')} | {fmt(run.server_cpu_s, '.2f')} | "
            f"{fmt(run.other_cores, '.2f')} | {status} |"
        )
    return "\n".join(lines) + "\n"


def contention_note(runs: list[Run]) -> str | None:
    """A warning, from the measured load, when neighbours competed for the cores."""
    loads = [r.other_cores for r in runs if r.other_cores is not None]
    if not loads or statistics.mean(loads) < BUSY_MACHINE_CORES:
        return None
    return (
        f"The machine was not idle: other processes used {min(loads):.2f}-{max(loads):.2f} "
        f"cores (mean {statistics.mean(loads):.2f} of {os.cpu_count()}) while the measurements "
        "ran (see Every run). Rates and latencies are depressed and noisy; CPU s / 1M (CPU "
        "actually consumed per notification) is the steadier comparison."
    )


# -- environment and report -------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def event_loops(runs: list[Run]) -> str:
    loops = sorted({r.report["loop"] for r in runs if r.report is not None})
    return ", ".join(loops) or "unknown"


def environment_lines(config: Config, servers: dict[str, str], runs: list[Run]) -> list[str]:
    import pushwire

    from .servers import find_nginx, nginx_version
    from .tools.h2load_tool import find_h2load, version

    h2load = find_h2load()
    nginx = find_nginx()
    lines = [
        f"- Date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"- Machine: nproc={os.cpu_count()}, CPU: {cpu_model()}, {platform.platform()}",
        f"- Python {platform.python_version()} ({sys.executable})",
        f"- pushwire {pushwire.__version__}, aioapns {package_version('aioapns')}, "
        f"httpx {package_version('httpx')} (h2 {package_version('h2')}), "
        f"uvloop {package_version('uvloop')}, cryptography {package_version('cryptography')}",
        f"- h2load: {version(h2load) if h2load else 'not installed'}; nginx: "
        f"{nginx_version(nginx) if nginx else 'not installed'}",
        f"- Event loops in the measuring processes: {event_loops(runs)}",
    ]
    for name, description in servers.items():
        lines.append(f"- Server `{name}`: {description}")
    pin = (
        "server processes pinned to core 0, every client to core 1 (`taskset -c`)"
        if config.pin
        else "no pinning: clients and servers share both cores as the scheduler likes"
    )
    lines.append(f"- CPU placement: {pin}")
    return lines


def method_notes(config: Config) -> str:
    payload = json.dumps(PAYLOAD, separators=(",", ":"))
    return f"""\
## Method

- Servers: one pushwire mock (`target/release/pushwire-mock`, built by the harness with
  `cargo build --release -p pushwire-mock`; advertises SETTINGS_MAX_CONCURRENT_STREAMS
  {SERVER_MAX_STREAMS:,}; rules {", ".join(f"`{r}`" for r in MOCK_RULES)}) and one nginx
  started by the harness on a free unprivileged port with a generated configuration in a
  temp dir (`worker_processes 1`, `listen 127.0.0.1:PORT ssl http2` — nginx 1.22 has no
  `http2 on` —, `http2_max_concurrent_streams {SERVER_MAX_STREAMS}`, `access_log off`,
  `keepalive_requests` raised so no connection is closed after 1,000 requests, a fresh CA
  and a P-256 server certificate it signs, made with `cryptography`; run as root, its
  worker runs as an unprivileged user). nginx answers every `POST
  /3/device/<token>` with 200 and an `apns-id` header (a UUID made from `$request_id`),
  tokens starting with `{UNREGISTERED_PREFIX}` with 410 `{{"reason":"Unregistered",
  "timestamp":<ms>}}` and tokens starting with `{BAD_TOKEN_PREFIX}` with 400
  `{{"reason":"BadDeviceToken"}}` (`location ~` regexes and `return`). nginx checks no JWT,
  and `return` discards the request body: its DATA frames are received and their
  flow-control window released, but not buffered — fine for a throughput baseline, and it
  makes nginx cheaper per request than the mock. Both servers start once, before the first
  measurement, and stay up for the whole run.
- Every measurement runs in a fresh process: a child interpreter (`--child`) for pushwire,
  aioapns and httpx, h2load itself for h2load. Server CPU per million is the server's CPU
  (nginx: master and worker) over the run, from psutil. Other load = CPU used by every
  process except the measured one and the servers.
- Python tools: a warm-up of {WARMUP:,} notifications (other tokens) opens the connections
  and mints the JWT first; it is not timed. The timed window is the send call(s) only; CPU
  seconds are user+sys of the child (all threads) over that window; peak RSS is the child's
  `ru_maxrss`, read right after the window. All use token auth (ES256 JWT, key id {KEY_ID},
  team {TEAM_ID}) and verify the server's certificate against its CA file. Topic
  `{TOPIC}`, push type alert, payload `{payload}`, distinct tokens `f"{{i:064x}}"`.
- Connection budget, the same for every tool: {MAX_CONNECTIONS} connections to a server
  advertising {SERVER_MAX_STREAMS:,} streams each ({config.latency_connections} x
  {config.latency_streams:,} for latency-40ms: pushwire `max_streams_per_connection`, h2load
  `-m`, aioapns and httpx as many concurrent senders), except that httpx (httpcore) opens at
  most {HTTPX_STREAMS_PER_CONNECTION} streams per connection whatever the server allows.
- pushwire: `APNsClient(max_connections=..., max_in_flight={PUSHWIRE_MAX_IN_FLIGHT:_})`;
  bulk/latency/rejected = one `send_to_tokens` call; stream = `client.stream()` over a
  generator, outcomes counted, latencies 1-in-k sampled (at most
  {STREAM_LATENCY_SAMPLES:,}); single-send = {config.single_tasks:,} tasks each looping
  `await client.send(Notification(token, message))` until N are sent. Latency = engine
  submission to outcome (single-send: around each `send`), so it includes queueing behind up
  to {PUSHWIRE_MAX_IN_FLIGHT:,} in-flight notifications.
- aioapns: `APNs(key=..., max_connections=...)` with {AIOAPNS_CONCURRENCY:,} concurrent
  workers (`asyncio.gather`) calling `send_notification`; latency = around each call. aioapns
  has no base URL option: the child sets the class attributes `APNS_SERVER`/`APNS_PORT` of
  `aioapns.connection.APNsProductionClientProtocol` (and the development one), and passes
  `ssl_context=ssl.create_default_context(cafile=<server CA>)` with ALPN `h2` added (nginx
  speaks HTTP/2 over TLS only when ALPN asks for it; aioapns' own context offers none).
  Site-packages are not modified.
- httpx: one `httpx.AsyncClient(http2=True, verify=<SSLContext with the server CA>)` per
  connection of the budget, {HTTPX_CONCURRENCY:,} tasks spread over them, each POSTing
  `/3/device/<token>` with `authorization: bearer <JWT>`, `apns-topic`, `apns-push-type`;
  every response is checked to be HTTP/2. A plain async client: no APNs logic.
- h2load (nghttp2-client): `h2load -n N -c C -m {SERVER_MAX_STREAMS} -t 1 -d <payload file>
  -i <URI file> --log-file <file> -H 'apns-topic: ...' -H 'apns-push-type: alert'
  -H 'authorization: bearer <JWT>'` against the same server (by address 127.0.0.1). The URI
  file holds {H2LOAD_URIS} distinct tokens of the scenario, which every connection cycles
  through from the first; N is rounded up to a multiple of C x {H2LOAD_URIS} so the expected
  status counts are exact. h2load does **not verify certificates** (nghttp2 1.52 sets no
  verification and has no option for it), so it gets no CA. Its rate is N over its own
  "finished in" time, which includes connecting (no warm-up); its CPU and peak RSS are the
  whole process's (`os.wait4`); p50/p99 come from its per-request log (start of the request
  to the end of the response); outcomes are counted by status from that log.
- latency-40ms: tokens starting with `{DELAY_PREFIX}`, which the mock answers {LATENCY_MS} ms
  late (`--rule {DELAY_PREFIX}=delay:{LATENCY_MS}`: a sleep in each stream's task before its
  answer, other streams are not blocked; the same as the binary's server-wide
  `--response-delay-ms` for these tokens). Connection setup is not delayed. Pipeline
  bound = connections x streams per connection / RTT.
- rejected-5pct: the mock (rules `{UNREGISTERED_PREFIX}=unregistered`,
  `{BAD_TOKEN_PREFIX}=bad-token`) and nginx answer the same tokens the same way; each tool's
  counts of delivered / 410 Unregistered / 400 BadDeviceToken must match exactly (h2load: by
  status).
- hang: pushwire `APNsClient(request_timeout={HANG_REQUEST_TIMEOUT:g})`, one `send_to_tokens`
  call where token i starts with `{HANG_PREFIX}` (never answered: `--rule {HANG_PREFIX}=hang`)
  when i % {HANG_EVERY} == 0. Completion = the call's wall time. Answered throughput =
  answered notifications / time until the last of their outcomes reached the event loop,
  read by wrapping pushwire's private `Dispatcher.deliver` in the child during the timed
  window. The row fails unless exactly the hung tokens are `timeout` and all others
  `delivered`.
- fcm-bulk: `FCMClient(service_account, max_connections={MAX_CONNECTIONS})`, one
  `send_to_tokens` call of `FCMMessage(notification=..., data={json.dumps(FCM_DATA)})` to
  distinct 163-character tokens, project `{FCM_PROJECT}`, real OAuth2 (RS256 JWT-bearer
  assertion exchanged at the mock's `/token` during the warm-up; exactly one grant checked).
- Status: a row is marked failed unless every notification got exactly one result
  (pushwire: N results in input order with their own tokens; aioapns/httpx: one outcome per
  position; h2load: N done and N logged) and the outcome counts are exactly the expected
  ones.
- CPU placement: `--pin split` puts the servers on core 0 and every client on core 1
  (`taskset -c`); `--pin none` (the default) leaves both to the scheduler. Measured both
  ways on this machine (bulk and latency-40ms against the mock, 2 repeats each, other load
  about 1 core): unpinned pushwire bulk 19,000-29,800/s vs pinned 18,900-21,800/s, unpinned
  h2load 22,900-32,500/s vs pinned 13,900-24,100/s. pushwire has two busy threads (Python
  and its engine) and the mock is multi-threaded, so confining each side to one core slows
  both; the default is therefore no pinning.
- Ratios compare rows of the same run. "Best repeats" compares the fastest repeat of each
  row, the least disturbed by other load.
"""


def render_report(
    config: Config, servers: dict[str, str], runs: list[Run], tables: str, goals_md: str
) -> str:
    parts = [
        "# pushwire throughput benchmark\n",
        "\n".join(environment_lines(config, servers, runs)),
        f"- Load average (1/5/15 min) at start {config.load_before}, at end {loadavg()}",
        f"\nCommand:\n\n```\n{config.command}\n```\n",
        "## Goals and ratios\n",
        goals_md,
        "## Results\n",
        tables,
        "## Every run\n",
        "Other load = CPU used by processes other than the measured one and the servers "
        f"during the measurement, in cores (this machine has {os.cpu_count()}).\n",
        runs_table(runs),
    ]
    if config.notes:
        parts.append("## Notes\n\n" + "\n".join(f"- {note}" for note in config.notes) + "\n")
    parts.append(method_notes(config))
    return "\n".join(parts)
