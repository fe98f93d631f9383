"""Sends too large to answer in one response become jobs: on the Redis Streams workers when
the server has ``--redis``, else in this process. Either way the answer carries a job id and
``GET /v1/jobs/{id}`` shows progress and results.

In-process jobs send through clients of their own (so a job's progress is exactly its
clients' outcome counters) and record a send run in the store like any other send; they live
as long as the process: a stopping server lets them finish (``shutdown_grace``) before it
exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..jobs import DEFAULT_GROUP, DEFAULT_STREAM, Queue
from ..jobs.model import new_job_id
from ..store import SegmentFilter, SendReport, Store
from ..store.backend import Connection
from ..store.message import PushMessage
from ..store.model import Application
from ..store.segments import endpoint_conditions, selected_applications
from .clients import Client, ClientPool
from .errors import UnknownJobError

log = logging.getLogger("pushwire.server")

_OUTCOMES = ("delivered", "rejected", "timeout", "failed")
#: Finished in-process jobs kept for GET /v1/jobs (their runs stay in the store).
KEEP_FINISHED = 1000


@dataclass
class JobView:
    """A job's progress, whichever runs it."""

    job_id: str
    backend: str
    #: queued, running, complete or failed.
    state: str
    total: int
    recorded: int
    by_outcome: dict[str, int]
    run_id: int | None = None
    tokens_disabled: int | None = None
    error: str | None = None
    created_at: float = 0.0
    finished_at: float | None = None


@dataclass
class _LocalJob:
    job_id: str
    total: int
    created_at: float
    clients: list[Client] = field(default_factory=list)
    task: asyncio.Task[SendReport] | None = None
    report: SendReport | None = None
    error: str | None = None
    finished_at: float | None = None

    def view(self) -> JobView:
        if self.report is not None:
            r = self.report
            return JobView(
                self.job_id,
                "in-process",
                "complete",
                r.total,
                r.total,
                dict(r.by_outcome),
                r.run_id,
                r.tokens_disabled,
                None,
                self.created_at,
                self.finished_at,
            )
        counts = {o: 0 for o in _OUTCOMES}
        for client in self.clients:
            with contextlib.suppress(Exception):
                stats = client.metrics()
                for outcome in _OUTCOMES:
                    counts[outcome] += int(stats.get(outcome, 0))
        recorded = sum(counts.values())
        state = "running" if self.clients else "queued"
        if self.error is not None:
            state = "failed"
        return JobView(
            self.job_id,
            "in-process",
            state,
            self.total,
            recorded,
            {k: v for k, v in counts.items() if v},
            None,
            None,
            self.error,
            self.created_at,
            self.finished_at,
        )


def count_enabled(store: Store, segment: SegmentFilter) -> int:
    """Enabled endpoints a segment selects (what a send to it sends)."""
    db = store.database
    conditions, params = endpoint_conditions(db, segment)

    def work(c: Connection) -> int:
        total = 0
        for app in selected_applications(c, segment):
            rows = c.query(
                "SELECT COUNT(*) FROM endpoints WHERE endpoints.application_id = ? "
                f"AND endpoints.enabled{conditions}",
                (app.id, *params),
            )
            total += int(rows[0][0])
        return total

    return db.read(work)


SendCall = Callable[[dict[str, Client]], Awaitable[SendReport]]


class JobRunner:
    def __init__(
        self,
        store: Store,
        pool: ClientPool,
        redis_url: str | None,
        *,
        stream: str = DEFAULT_STREAM,
        group: str = DEFAULT_GROUP,
    ) -> None:
        self._store = store
        self._pool = pool
        self._redis_url = redis_url
        self._stream = stream
        self._group = group
        self._queue: Queue | None = None
        self._local: dict[str, _LocalJob] = {}

    @property
    def backend(self) -> str:
        return "redis" if self._redis_url else "in-process"

    async def _redis_queue(self) -> Queue:
        if self._queue is None:
            assert self._redis_url is not None
            self._queue = Queue(self._redis_url, stream=self._stream, group=self._group)
        return self._queue

    async def submit_segment(self, segment: SegmentFilter, message: PushMessage, actor: str) -> str:
        if self._redis_url:
            queue = await self._redis_queue()
            return await queue.enqueue_segment(self._store, segment, message)
        apps = await asyncio.to_thread(self._store.segment_applications, segment)
        total = await asyncio.to_thread(count_enabled, self._store, segment)

        def call(clients: dict[str, Client]) -> Awaitable[SendReport]:
            return self._store.send_to_segment(segment, message, clients=clients, actor=actor)

        return self._start(apps, total, call)

    async def submit_tokens(
        self, application: Application, tokens: list[str], message: PushMessage, actor: str
    ) -> str:
        if self._redis_url:
            queue = await self._redis_queue()
            return await queue.enqueue(application.name, tokens, message)

        def call(clients: dict[str, Client]) -> Awaitable[SendReport]:
            return self._store.send_to_tokens(
                application.name, tokens, message, clients=clients, actor=actor
            )

        return self._start([application], len(tokens), call)

    def _start(self, apps: list[Application], total: int, call: SendCall) -> str:
        finished = [k for k, j in self._local.items() if j.finished_at is not None]
        for job_id in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._local[job_id]  # oldest first: dicts keep insertion order
        job = _LocalJob(new_job_id(), total, time.time())
        self._local[job.job_id] = job
        job.task = asyncio.ensure_future(self._run(job, apps, call))
        return job.job_id

    async def _run(self, job: _LocalJob, apps: list[Application], call: SendCall) -> SendReport:
        clients: dict[str, Client] = {}
        try:
            for app in apps:
                client = await asyncio.to_thread(self._pool.new_client, app)
                clients[app.name] = await client.__aenter__()
                job.clients.append(client)
            job.report = await call(clients)
            return job.report
        except BaseException as e:
            job.error = f"{type(e).__name__}: {e}"
            log.error("job %s failed: %s", job.job_id, job.error)
            raise
        finally:
            job.finished_at = time.time()
            for client in clients.values():
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def status(self, job_id: str) -> JobView:
        local = self._local.get(job_id)
        if local is not None:
            return local.view()
        if not self._redis_url:
            raise UnknownJobError(f"no job {job_id!r} in this server", field="job_id")
        queue = await self._redis_queue()
        s = await queue.status(job_id)
        state = {"enqueuing": "queued"}.get(s.state, s.state)
        return JobView(
            s.job_id,
            "redis",
            state,
            s.total,
            s.recorded,
            dict(s.by_outcome),
            created_at=s.created_at,
        )

    async def recent(self, limit: int = 20) -> list[JobView]:
        views = [job.view() for job in self._local.values()]
        if self._redis_url:
            queue = await self._redis_queue()
            for job_id in await queue.jobs(limit):
                with contextlib.suppress(Exception):
                    views.append(await self.status(job_id))
        views.sort(key=lambda v: v.created_at, reverse=True)
        return views[:limit]

    async def ping(self) -> None:
        queue = await self._redis_queue()
        await queue.stats()

    def running(self) -> int:
        return sum(1 for j in self._local.values() if j.task and not j.task.done())

    async def drain(self, grace: float) -> None:
        """Let in-process jobs finish (``grace`` seconds), then cancel what is left."""
        tasks = [j.task for j in self._local.values() if j.task and not j.task.done()]
        if tasks:
            log.info("waiting up to %.0f s for %d job(s) to finish", grace, len(tasks))
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._queue is not None:
            await self._queue.aclose()
