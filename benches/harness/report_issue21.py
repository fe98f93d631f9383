"""The report of issue 21's scenarios: bytes on the wire per notification (``wire-bytes``)
and ``--count`` notifications from one core (``stream-10m``), each beside h2load."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .scenarios import SERVERS

if TYPE_CHECKING:
    from .report import Goal, Row

#: Bytes per notification (both ways) within this fraction of h2load's.
WIRE_GOAL = 0.05
STREAM_RATE_GOAL = 84_000
STREAM_WALL_GOAL_S = 120.0
STREAM_RSS_GOAL_MB = 100.0
#: At 10M: the per-notification goals hold at any count; the wall-time goal is for 10M.
STREAM_GOAL_COUNT = 10_000_000

WIRE_INTRO = (
    "Bytes on the wire per notification, measured on the socket: each tool connects through a "
    "loopback relay (benches/harness/relay.py) that counts every byte it forwards each way, "
    "TLS records and handshakes included. pushwire's warm-up goes through the relay too and "
    "counts in the denominator. The same request headers for both tools (`:authority` of the "
    "relay by name, `apns-topic`, `apns-push-type`, the same `authorization: bearer <JWT>`); "
    "h2load also sends `user-agent` and `content-length`, which pushwire does not. "
    "`h2load-no-auth` sends the same requests without `authorization` (nginx checks none): "
    "the floor, what a request costs when the credential costs nothing."
)
STREAM_INTRO = (
    "`client.stream()` over a generator of `--count` notifications, every result counted by "
    "its index; the client and the server on one core each with `--pin split`. h2load sends "
    "as many in the same run. Resident memory is sampled after the warm-up and at every "
    "tenth of the results (it includes the harness's own one byte per notification)."
)


def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "—" if value is None else format(value, spec)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def wire_table(rows: list[Row]) -> list[str]:
    lines = [
        "| server | tool | notifications through the relay | connections | bytes up / notification "
        "| bytes down / notification | total / notification | total vs h2load | status |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for server in SERVERS:
        by_tool = {r.tool: r for r in rows if r.server == server}
        h2load = by_tool.get("h2load")
        for row in by_tool.values():
            sent = row.n + max((r.warmup for r in row.runs), default=0)
            total = row.median("wire_per_notification")
            versus = _ratio(total, h2load.median("wire_per_notification") if h2load else None)
            status = "ok" if not row.failed else f"**FAILED**: {row.failed[0].error}"
            lines.append(
                f"| {server} | {row.tool} | {sent:,} | {_fmt(row.median('wire_connections'))} | "
                f"{_fmt(row.median('wire_up_per_notification'), ',.1f')} | "
                f"{_fmt(row.median('wire_down_per_notification'), ',.1f')} | "
                f"{_fmt(total, ',.1f')} | "
                f"{'—' if versus is None else f'{versus:.3f}x'} | {status} |"
            )
    return ["\n".join(lines)]


def stream_lines(rows: list[Row]) -> list[str]:
    out = []
    pushwire = next((r for r in rows if r.tool == "pushwire"), None)
    h2load = next((r for r in rows if r.tool == "h2load"), None)
    if pushwire is not None:
        samples = [
            r.report.get("rss_samples_mb") for r in pushwire.runs if r.ok and r.report is not None
        ]
        kwargs = next(
            (r.report.get("stream_kwargs") for r in pushwire.runs if r.report is not None), None
        )
        for s in samples:
            if s:
                out.append(
                    "pushwire resident memory (MB) after the warm-up, then at each tenth "
                    "(every second with send_stream): " + ", ".join(f"{x:.1f}" for x in s) + "."
                )
        if kwargs == {"api": "send_stream"}:
            out.append(
                "Sent through `send_stream()` (`--stream-api send_stream`): one `BulkReport`, "
                "Results only for problems; every index checked from its packed message ids."
            )
        elif kwargs == {"api": "send_stream_counts"}:
            out.append(
                "Sent through `send_stream(message_ids=False)` (`--stream-api "
                "send_stream_counts`): one `BulkReport` that counts the delivered and keeps no "
                "id; the totals must add up to the input and each problem's index be unique."
            )
        elif kwargs:
            out.append(f"`stream()` keyword arguments: `{kwargs}`.")
        for number, run in enumerate(pushwire.runs, 1):
            report = run.report
            by_thread = report.get("cpu_by_thread_s") if run.ok and report else None
            if report and by_thread:
                shown = ", ".join(
                    f"{name} {seconds / report['n'] * 1e6:.2f}"
                    for name, seconds in sorted(by_thread.items())
                )
                out.append(
                    f"pushwire client CPU by thread, run {number} (µs per notification): {shown}."
                )
    if pushwire is not None and h2load is not None:
        pw_cpu, h2_cpu = pushwire.cpu_per_million(), h2load.cpu_per_million()
        out.append(
            "Client CPU per notification, pushwire / h2load (same run): "
            f"{_fmt(pw_cpu, '.1f')} / {_fmt(h2_cpu, '.1f')} s per million = "
            f"{_fmt(_ratio(pw_cpu, h2_cpu), '.2f')}x."
        )
    for row in rows:
        wall = row.median("wall_s")
        server_cpu = row.server_cpu_per_million()
        if wall and server_cpu is not None:
            busy = server_cpu / 1e6 * row.n / wall
            out.append(
                f"{row.tool}: the server's core was {busy:.0%} busy over the run "
                f"({_fmt(server_cpu, '.1f')} server CPU s per million); a value near 100% "
                "means the server, not the client, set the rate."
            )
    return out


def goals(rows: list[Row], goal_type: type[Goal]) -> list[Goal]:
    out = []
    for server in SERVERS:
        pw = _find(rows, "wire-bytes", server, "pushwire")
        h2 = _find(rows, "wire-bytes", server, "h2load")
        if pw is None or h2 is None:
            continue
        versus = _ratio(pw.median("wire_per_notification"), h2.median("wire_per_notification"))
        out.append(
            goal_type(
                f"wire-bytes, {server}: pushwire / h2load bytes per notification (both ways)",
                "—" if versus is None else f"{versus:.3f}x",
                "—",
                f"<= {1 + WIRE_GOAL:.2f}x",
                None if versus is None else versus <= 1 + WIRE_GOAL,
            )
        )
    pw = _find(rows, "stream-10m", "nginx", "pushwire")
    h2 = _find(rows, "stream-10m", "nginx", "h2load")
    if pw is not None:
        rate, rss, wall = pw.median("rate"), pw.peak_rss(), pw.median("wall_s")
        out.append(
            goal_type(
                f"stream-10m ({pw.n:,}): pushwire notifications/s",
                _fmt(rate),
                _fmt(pw.best("rate")),
                f">= {STREAM_RATE_GOAL:,}",
                None if rate is None else rate >= STREAM_RATE_GOAL,
            )
        )
        if pw.n >= STREAM_GOAL_COUNT:
            out.append(
                goal_type(
                    f"stream-10m ({pw.n:,}): wall time",
                    f"{_fmt(wall, '.1f')} s",
                    "—",
                    f"< {STREAM_WALL_GOAL_S:.0f} s",
                    None if wall is None else wall < STREAM_WALL_GOAL_S,
                )
            )
        out.append(
            goal_type(
                f"stream-10m ({pw.n:,}): pushwire peak RSS",
                f"{_fmt(rss, '.1f')} MB",
                "—",
                f"<= {STREAM_RSS_GOAL_MB:.0f} MB",
                None if rss is None else rss <= STREAM_RSS_GOAL_MB,
            )
        )
        if h2 is not None:
            versus = _ratio(pw.cpu_per_million(), h2.cpu_per_million())
            out.append(
                goal_type(
                    "stream-10m: client CPU per notification, pushwire / h2load",
                    "—" if versus is None else f"{versus:.2f}x",
                    "—",
                    "<= 1.00x",
                    None if versus is None else versus <= 1.0,
                )
            )
    return out


def _find(rows: list[Row], scenario: str, server: str, tool: str) -> Row | None:
    return next(
        (r for r in rows if (r.scenario, r.server, r.tool) == (scenario, server, tool)), None
    )
