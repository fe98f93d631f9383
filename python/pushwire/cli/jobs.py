"""``pushwire enqueue``, ``pushwire worker`` and ``pushwire jobs ...``: sending through a
fleet of workers on Redis Streams (:mod:`pushwire.jobs`).

``enqueue_command`` and ``worker_command`` are plain command functions and ``jobs_app`` a
typer sub-app; ``cli/app.py`` registers them. Redis is reached through ``--redis`` (or
``$PUSHWIRE_REDIS_URL``); the stream and group default to ``pushwire:jobs`` and
``pushwire-workers``. Errors a user can fix (Redis unreachable, an unknown application or job,
a bad file) print one ``error: ...`` line on stderr and exit with code 2.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from .errors import EXIT_USAGE, CLIError, echo_error, user_errors
from .options import (
    BadgeOption,
    BodyOption,
    DataOption,
    DbOption,
    DeepLinkOption,
    ImageUrlOption,
    MessageFileOption,
    SilentOption,
    SoundOption,
    TitleOption,
    UrlOption,
    open_store,
    push_message,
)

REDIS_HELP = (
    "Redis URL: redis://[:password@]host:port/db, rediss:// for TLS (env PUSHWIRE_REDIS_URL)."
)

RedisOption = Annotated[
    str,
    typer.Option("--redis", envvar="PUSHWIRE_REDIS_URL", help=REDIS_HELP, show_default=True),
]
StreamOption = Annotated[
    str,
    typer.Option(envvar="PUSHWIRE_STREAM", help="Job stream name (env PUSHWIRE_STREAM)."),
]
GroupOption = Annotated[
    str,
    typer.Option(
        envvar="PUSHWIRE_GROUP", help="Consumer group of the workers (env PUSHWIRE_GROUP)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
DEFAULT_STREAM = "pushwire:jobs"
DEFAULT_GROUP = "pushwire-workers"

jobs_app = typer.Typer(
    help="Jobs on the Redis stream: progress, outcomes, dead letters, queue depth and workers.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _token_lines(path: Path) -> Iterator[str]:
    """One token per line (blank lines and # comments skipped)."""
    stream = sys.stdin if str(path) == "-" else path.open(encoding="utf-8")
    try:
        for line in stream:
            token = line.strip()
            if token and not token.startswith("#"):
                yield token
    finally:
        if stream is not sys.stdin:
            stream.close()


def _token_rows(path: Path, fmt: str | None) -> Iterator[str]:
    """Tokens of a JSONL / CSV file in ``pushwire send``'s format; bad rows are reported
    and skipped; per-row fields are ignored (a job has one message)."""
    from .input import BadRow, open_rows

    warned = False
    with open_rows(path, fmt) as source:
        for row in source:
            if isinstance(row, BadRow):
                typer.echo(f"warning: {source.name}:{row.line}: skipped: {row.problem}", err=True)
                continue
            if row.fields and not warned:
                warned = True
                typer.echo(
                    "warning: per-row fields are ignored by enqueue (a job has one message)",
                    err=True,
                )
            yield row.token


def _tokens(path: Path, fmt: str | None) -> Iterator[str]:
    if fmt == "lines" or (fmt is None and path.suffix in (".txt", ".tokens")):
        return _token_lines(path)
    return _token_rows(path, fmt)


def _serve_metrics(registry: Any, worker: Any, consumer: str, host: str, port: int) -> None:
    """The worker's own numbers and its clients' engine metrics on http://host:port/metrics."""
    from prometheus_client import start_http_server

    from ..jobs.metrics import WorkerCollector

    registry.register(WorkerCollector(worker.metrics, consumer))
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        raise CLIError(f"cannot serve metrics on {host}:{port}: {e}") from None


def _status_json(status: Any) -> dict[str, Any]:
    import msgspec

    out: dict[str, Any] = msgspec.to_builtins(status)
    out["complete"] = status.complete
    return out


def _print_status(status: Any) -> None:
    share = f" ({status.recorded / status.total:.1%})" if status.total else ""
    typer.echo(
        f"job {status.job_id}: {status.state}, {status.recorded} of {status.total} "
        f"notifications have their outcome{share}; chunks {status.chunks_done}/{status.chunks}"
    )
    if status.by_outcome:
        typer.echo(
            "outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(status.by_outcome.items()))
        )
    if status.by_action:
        typer.echo("actions: " + ", ".join(f"{k} {v}" for k, v in sorted(status.by_action.items())))
    if status.resent:
        typer.echo(
            f"resent after a worker died: {status.resent} (may have reached the device twice; "
            "the collapse id makes it show once)"
        )
    if status.dead_lettered:
        typer.echo(f"dead-lettered chunks: {status.dead_lettered} (see pushwire jobs dead-letters)")
    if status.cancelled_at is not None:
        typer.echo("cancelled: chunks not yet taken are recorded failed (JobCancelled), never sent")


# -- enqueue ----------------------------------------------------------------------------------


def enqueue_command(
    app: Annotated[
        str | None,
        typer.Option("--app", help="Application (its name in the workers' endpoint store)."),
    ] = None,
    input: Annotated[
        Path | None,
        typer.Option(
            "--input",
            "-i",
            help="Tokens: a .txt file with one per line, or JSONL / CSV rows with a 'token' "
            "(as for pushwire send). '-' reads stdin.",
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="lines, jsonl or csv (default: from the extension)."),
    ] = None,
    to_segment: Annotated[
        str | None,
        typer.Option(
            "--to-segment",
            help="Instead of --input: every enabled endpoint of this segment of the store "
            "(--db), read now: 'app=ios plan=pro', JSON, or 'all'.",
        ),
    ] = None,
    title: TitleOption = None,
    body: BodyOption = None,
    data: DataOption = None,
    image_url: ImageUrlOption = None,
    sound: SoundOption = None,
    badge: BadgeOption = None,
    silent: SilentOption = False,
    url: UrlOption = None,
    deep_link: DeepLinkOption = None,
    message_file: MessageFileOption = None,
    job_id: Annotated[
        str | None, typer.Option(help="Job id (default: a new unique one); never reused.")
    ] = None,
    chunk_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="Tokens per stream entry.")
    ] = 1000,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until every notification has its outcome.")
    ] = False,
    as_json: JsonOption = False,
    redis_url: RedisOption = DEFAULT_REDIS,
    stream: StreamOption = DEFAULT_STREAM,
    group: GroupOption = DEFAULT_GROUP,
    db: DbOption = None,
) -> None:
    """Write a send job to the Redis stream; print its id (alone on stdout, so that
    J=$(pushwire enqueue ...) works). `pushwire worker` processes send it.

    With --db, the application is checked against the store first (the workers read it from
    their own --db). Exit 0 once enqueued (with --wait: once complete).
    """
    from ..jobs import Queue

    with user_errors():
        message = push_message(
            message_file, title, body, data, image_url, sound, badge, silent, url, deep_link
        )
        if (input is None) == (to_segment is None):
            raise CLIError("give --input FILE (with --app) or --to-segment FILTER (with --db)")
        if input is not None and not app:
            raise CLIError("--input needs --app: the application the tokens belong to")
        if fmt not in (None, "lines", "jsonl", "csv"):
            raise CLIError(f"--format must be lines, jsonl or csv, not {fmt!r}")
        store = None
        if db is not None or to_segment is not None:
            store = open_store(db)
        try:
            if store is not None and app:
                store.application(app)  # UnknownApplicationError: a clear message, exit 2

            async def main() -> Any:
                async with Queue(redis_url, stream=stream, group=group, chunk_size=chunk_size) as q:
                    if to_segment is not None:
                        job = await q.enqueue_segment(store, to_segment, message, job_id=job_id)
                    else:
                        assert input is not None and app is not None
                        job = await q.enqueue(app, _tokens(input, fmt), message, job_id=job_id)
                    if wait:
                        return await q.wait(job)
                    return await q.status(job)

            status = asyncio.run(main())
        finally:
            if store is not None:
                store.close()
    if as_json:
        typer.echo(json.dumps(_status_json(status)))
    elif wait:
        _print_status(status)
    else:
        # Only the id on stdout, for J=$(pushwire enqueue ...); the words on stderr.
        typer.echo(status.job_id)
        typer.echo(
            f"job {status.job_id}: {status.total} notifications in {status.chunks} chunks "
            f"enqueued on {stream}; follow it: pushwire jobs status {status.job_id}",
            err=True,
        )


# -- worker -----------------------------------------------------------------------------------


def worker_command(
    db: DbOption = None,
    redis_url: RedisOption = DEFAULT_REDIS,
    stream: StreamOption = DEFAULT_STREAM,
    group: GroupOption = DEFAULT_GROUP,
    consumer: Annotated[
        str | None,
        typer.Option(envvar="PUSHWIRE_CONSUMER", help="This worker's name (default host-pid)."),
    ] = None,
    apns_url: Annotated[
        str | None, typer.Option(help="APNs server (default: the application's environment).")
    ] = None,
    fcm_url: Annotated[str | None, typer.Option(help="FCM server (tests, proxies).")] = None,
    token_uri: Annotated[str | None, typer.Option(help="OAuth2 token URI for FCM.")] = None,
    ca_file: Annotated[
        Path | None, typer.Option(help="Extra CA to trust (a mock server's).")
    ] = None,
    request_timeout: Annotated[float, typer.Option(min=0.1, help="Per-notification s.")] = 10.0,
    max_connections: Annotated[
        int, typer.Option(min=1, help="HTTP/2 connections per application.")
    ] = 4,
    max_streams: Annotated[
        int | None,
        typer.Option(min=1, help="Streams per connection (default: the server's limit)."),
    ] = None,
    prefetch: Annotated[int, typer.Option(min=1, help="Stream entries in progress at once.")] = 4,
    window: Annotated[
        int, typer.Option(min=1, help="Notifications in flight at once (sent, not recorded).")
    ] = 5000,
    slice_size: Annotated[
        int, typer.Option(min=1, help="Notifications per engine call and outcome batch.")
    ] = 500,
    reclaim_idle: Annotated[
        float,
        typer.Option(min=0.05, help="Take over entries idle this long on a worker (dead), s."),
    ] = 60.0,
    max_deliveries: Annotated[
        int, typer.Option(min=1, help="Dead-letter an entry delivered more often than this.")
    ] = 5,
    results_stream: Annotated[
        int,
        typer.Option(
            min=0, help="Also append outcome records to STREAM:results, capped at N (0: off)."
        ),
    ] = 0,
    apply_results: Annotated[
        bool, typer.Option(help="Apply results to the store (disable dead tokens).")
    ] = True,
    fcm_rate_limit: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="FCM project quota, messages per minute: a sliding window in Redis shared "
            "by all workers.",
        ),
    ] = None,
    fcm_quota_window: Annotated[
        float,
        typer.Option(
            min=0.1,
            max=60.0,
            help="The quota's window, s (60: FCM's minute; shorter takes its share).",
        ),
    ] = 60.0,
    share_credentials: Annotated[
        bool, typer.Option(help="One APNs JWT / FCM access token for all workers, via Redis.")
    ] = True,
    key_prefix: Annotated[
        str,
        typer.Option(
            envvar="PUSHWIRE_KEY_PREFIX",
            help="Prefix of the Redis keys of shared credentials and rate limits.",
        ),
    ] = "pushwire",
    metrics_interval: Annotated[
        float, typer.Option(min=0.01, help="Publish this worker's metrics every N s.")
    ] = 1.0,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Serve Prometheus metrics (worker and engine) on this port (needs "
            "pushwire[metrics]).",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="Address for --metrics-port.", show_default=True)
    ] = "127.0.0.1",
    shutdown_grace: Annotated[
        float | None,
        typer.Option(min=0, help="On SIGTERM, wait this long for chunks in progress."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Join the consumer group and send the jobs of the stream until SIGTERM / Ctrl-C.

    Applications (provider, topic, credentials_ref) come from the store (--db), which also
    receives the results (dead tokens disabled). On SIGTERM: no more entries are read, the
    chunks in progress are finished, recorded and acknowledged, then the worker exits 0; a
    second signal abandons them (another worker reclaims them).
    """
    from ..jobs import ClientOptions, Worker, WorkerSettings
    from ..jobs.model import default_consumer

    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        echo_error(f"--log-level must be debug, info, warning or error, not {log_level!r}")
        raise typer.Exit(EXIT_USAGE)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    with user_errors():
        settings = WorkerSettings(
            redis_url=redis_url,
            stream=stream,
            group=group,
            consumer=consumer or default_consumer(),
            key_prefix=key_prefix,
            prefetch=prefetch,
            window=window,
            slice_size=min(slice_size, window),
            reclaim_idle=reclaim_idle,
            max_deliveries=max_deliveries,
            results_stream_maxlen=results_stream,
            apply_results=apply_results,
            metrics_interval=metrics_interval,
            shutdown_grace=shutdown_grace,
            share_credentials=share_credentials,
        )
        options = ClientOptions(
            apns_url=apns_url,
            fcm_url=fcm_url,
            token_uri=token_uri,
            ca_file=ca_file,
            request_timeout=request_timeout,
            max_connections=max_connections,
            max_streams_per_connection=max_streams,
            fcm_rate_limit=fcm_rate_limit,
            fcm_quota_window=fcm_quota_window,
        )
        registry = None
        if metrics_port is not None:
            try:
                from prometheus_client import CollectorRegistry
            except ImportError:
                raise CLIError(
                    "--metrics-port needs prometheus-client: pip install 'pushwire[metrics]'"
                ) from None
            registry = CollectorRegistry()
            options = dataclasses.replace(options, metrics_registry=registry)
        store = open_store(db)
        try:
            worker = Worker(settings, store=store, options=options)
            if registry is not None and metrics_port is not None:
                _serve_metrics(registry, worker, settings.consumer, metrics_host, metrics_port)

            async def main() -> dict[str, float]:
                loop = asyncio.get_running_loop()
                signals = 0

                def on_signal() -> None:
                    nonlocal signals
                    signals += 1
                    if signals == 1:
                        worker.stop()
                    else:
                        worker.abort()

                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, on_signal)
                return await worker.run()

            final = asyncio.run(main())
        finally:
            store.close()
    typer.echo(
        f"worker {settings.consumer} stopped: {final['notifications']:.0f} notifications, "
        f"{final['chunks_done']:.0f} chunks, {final['reclaimed_entries']:.0f} reclaimed, "
        f"{final['dead_lettered']:.0f} dead-lettered",
        err=True,
    )


# -- jobs ... -----------------------------------------------------------------------------------


@jobs_app.command("status")
def status_command(
    job_id: Annotated[
        str | None, typer.Argument(help="The job (without: the queue, workers, latest jobs).")
    ] = None,
    as_json: JsonOption = False,
    redis_url: RedisOption = DEFAULT_REDIS,
    stream: StreamOption = DEFAULT_STREAM,
    group: GroupOption = DEFAULT_GROUP,
) -> None:
    """A job's progress (outcomes so far), or the queue: depth, lag, pending, workers."""
    from ..jobs import Queue

    with user_errors():

        async def main() -> Any:
            async with Queue(redis_url, stream=stream, group=group) as q:
                if job_id is not None:
                    return await q.status(job_id)
                return await q.stats(), await q.jobs(10)

        answer = asyncio.run(main())
    if job_id is not None:
        if as_json:
            typer.echo(json.dumps(_status_json(answer)))
        else:
            _print_status(answer)
        return
    stats, jobs = answer
    if as_json:
        typer.echo(json.dumps({**stats, "jobs": jobs}))
        return
    lag = "unknown" if stats["lag"] is None else stats["lag"]
    typer.echo(
        f"stream {stats['stream']} (group {stats['group']}): {stats['stream_length']} entries "
        f"waiting or in progress, lag {lag}, pending {stats['pending']}, "
        f"dead letters {stats['dead_letters']}"
    )
    for name, m in sorted(stats["workers"].items()):
        state = "stopped" if m.get("stopped") else "running"
        typer.echo(
            f"  worker {name} ({state}): {m.get('notifications', 0):.0f} notifications, "
            f"{m.get('notifications_per_second', 0):.0f}/s, in flight {m.get('in_flight', 0):.0f}, "
            f"p99 {m.get('latency_p99_seconds', 0) * 1000:.0f} ms"
        )
    if jobs:
        typer.echo("latest jobs: " + ", ".join(jobs))


@jobs_app.command("cancel")
def cancel_command(
    job_id: Annotated[str, typer.Argument(help="The job.")],
    as_json: JsonOption = False,
    redis_url: RedisOption = DEFAULT_REDIS,
    stream: StreamOption = DEFAULT_STREAM,
    group: GroupOption = DEFAULT_GROUP,
) -> None:
    """Cancel a job: chunks not yet taken by a worker are recorded ``failed`` (reason
    JobCancelled, never sent); chunks being sent finish. The job still completes."""
    from ..jobs import Queue

    with user_errors():

        async def main() -> Any:
            async with Queue(redis_url, stream=stream, group=group) as q:
                return await q.cancel(job_id)

        status = asyncio.run(main())
    if as_json:
        typer.echo(json.dumps(_status_json(status)))
    else:
        _print_status(status)


@jobs_app.command("results")
def results_command(
    job_id: Annotated[str, typer.Argument(help="The job.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write JSONL here (default stdout).")
    ] = None,
    redis_url: RedisOption = DEFAULT_REDIS,
    stream: StreamOption = DEFAULT_STREAM,
) -> None:
    """Every recorded outcome of a job, one JSON line each (index, token, outcome, status,
    reason, action...), in no particular order."""
    import msgspec

    from ..jobs import Queue

    with user_errors():
        out = output.open("w", encoding="utf-8") if output is not None else sys.stdout
        if output is not None:
            output.chmod(0o600)

        async def main() -> int:
            count = 0
            async with Queue(redis_url, stream=stream) as q:
                await q.status(job_id)  # UnknownJobError for a wrong id
                async for index, record in q.outcomes(job_id):
                    line = {"index": index, **msgspec.to_builtins(record)}
                    out.write(json.dumps(line) + "\n")
                    count += 1
            return count

        try:
            count = asyncio.run(main())
        finally:
            if output is not None:
                out.close()
    if output is not None:
        typer.echo(f"{count} outcomes written to {output}", err=True)


@jobs_app.command("dead-letters")
def dead_letters_command(
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 20,
    as_json: JsonOption = False,
    redis_url: RedisOption = DEFAULT_REDIS,
    stream: StreamOption = DEFAULT_STREAM,
) -> None:
    """Entries the workers could not process (malformed, unknown application...), and why."""
    from ..jobs import Queue

    with user_errors():

        async def main() -> list[dict[str, str]]:
            async with Queue(redis_url, stream=stream) as q:
                return await q.dead_letters(limit)

        entries = asyncio.run(main())
    for entry in entries:
        if as_json:
            typer.echo(json.dumps(entry))
        else:
            job = f" job {entry['job']}" if entry.get("job") else ""
            typer.echo(
                f"{entry['id']} (entry {entry.get('entry', '?')}{job}): {entry.get('reason', '')}"
            )
