"""Job changes pushed to followers (Redis pub/sub on the machine's Redis), and the polling
that stands in while there is no subscription."""

from __future__ import annotations

import asyncio

import redis
from redis.asyncio import Redis as AsyncRedis

from server.jobs import changes
from server.jobs.changes import JobChanges
from server.jobs.repository import JobRecord, JobRepository
from server.kit.clock import utcnow
from subtone.protocol import JobKind

from .conftest import REDIS_URL

TOLD_WITHIN_SECONDS = 10.0


def _record(job_id: str) -> JobRecord:
    now = utcnow()
    return JobRecord(
        id=job_id,
        tenant="tn_test",
        kind=JobKind.EMBED,
        inputs={},
        params={},
        created_at=now,
        updated_at=now,
    )


def test_a_change_wakes_the_followers_of_that_job_only(
    redis_client: redis.Redis, prefix: str
) -> None:
    jobs = JobRepository(redis_client, prefix=prefix, ttl_seconds=60)
    for job_id in ("job_followed", "job_other"):
        jobs.create(_record(job_id), idempotency_key=None, body_hash="h")

    async def follow() -> tuple[bool, bool]:
        hub = JobChanges(AsyncRedis.from_url(REDIS_URL), prefix=prefix)
        await hub.start()
        try:
            assert hub.poll_seconds == changes.SAFETY_POLL_SECONDS
            with hub.watch("job_followed") as followed, hub.watch("job_other") as other:
                await asyncio.to_thread(jobs.start, "job_followed", max_lost_runs=3)
                await asyncio.wait_for(followed.wait(), TOLD_WITHIN_SECONDS)
                # Woken again at the next change; the other job's follower never.
                followed.clear()
                await asyncio.to_thread(jobs.set_progress, "job_followed", 0.5)
                await asyncio.wait_for(followed.wait(), TOLD_WITHIN_SECONDS)
                return followed.is_set(), other.is_set()
        finally:
            await hub.stop()

    assert asyncio.run(follow()) == (True, False)


def test_without_a_subscription_followers_poll_often() -> None:
    async def unreachable() -> float:
        hub = JobChanges(AsyncRedis.from_url("redis://127.0.0.1:1/0"), prefix="nowhere")
        await hub.start()
        try:
            return hub.poll_seconds
        finally:
            await hub.stop()

    assert asyncio.run(unreachable()) == changes.FALLBACK_POLL_SECONDS
