"""The cap on open job event streams per tenant: 429 ``too_many_streams`` past it, a slot
given back when a stream ends, and the slot of a killed API process lapsing on its own."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from server.jobs.streams import StreamSlots, TooManyStreams
from subtone.protocol import Job

from .conftest import Api, ApiFactory, auth, embed_body, error_code, upload

CAP = 2
FREED_WITHIN_SECONDS = 10.0


def _job(api: Api, token: str) -> Job:
    cover = upload(api, token, b"c" * 1000)
    payload = upload(api, token, b"p" * 100, name="payload.bin")
    response = api.client.post(
        "/v1/jobs", json=embed_body(cover.id, payload.id), headers=auth(token)
    )
    assert response.status_code == 202, response.text
    return Job.model_validate(response.json())


@contextlib.contextmanager
def _stream(api: Api, job_id: str, token: str) -> Iterator[httpx.Response]:
    """An event stream held open (its first event read), closed on exit."""
    with httpx.Client(base_url=str(api.client.base_url), timeout=20.0) as client:
        path = f"/v1/jobs/{job_id}/events"
        with client.stream("GET", path, headers=auth(token)) as response:
            # Kept until the end: dropping the line iterator would close the response.
            lines = response.iter_lines()
            if response.status_code == 200:
                next(lines)
            else:
                response.read()
            yield response
            del lines


def test_streams_past_the_cap_are_429_and_a_closed_one_frees_its_slot(
    make_api: ApiFactory,
) -> None:
    api = make_api(MAX_EVENT_STREAMS_PER_TENANT=CAP)
    job = _job(api, api.alice)
    with contextlib.ExitStack() as open_streams:
        for _ in range(CAP):
            assert open_streams.enter_context(_stream(api, job.id, api.alice)).status_code == 200
        with _stream(api, job.id, api.alice) as refused:
            assert refused.status_code == 429
            assert error_code(refused) == "too_many_streams"
            assert int(refused.headers["Retry-After"]) >= 1
        # Another tenant has slots of its own; polling is not limited by the cap.
        bobs = _job(api, api.bob)
        with _stream(api, bobs.id, api.bob) as other:
            assert other.status_code == 200
        assert api.client.get(f"/v1/jobs/{job.id}", headers=auth(api.alice)).status_code == 200
    # Every stream closed: their slots come back (once the server notices the disconnects).
    deadline = time.monotonic() + FREED_WITHIN_SECONDS
    while True:
        with _stream(api, job.id, api.alice) as again:
            if again.status_code == 200:
                break
        assert time.monotonic() < deadline, "a closed stream kept its slot"
        time.sleep(0.2)


def test_the_slot_of_a_stream_that_never_ended_lapses(
    redis_client: redis.Redis, prefix: str
) -> None:
    now = [1000.0]
    slots = StreamSlots(
        redis_client, prefix=prefix, per_tenant=1, slot_seconds=60, clock=lambda: now[0]
    )
    slots.acquire("tn1")  # its API process is then killed: never renewed, never released
    with pytest.raises(TooManyStreams):
        slots.acquire("tn1")
    now[0] += 61
    slot = slots.acquire("tn1")
    assert slots.open("tn1") == 1
    assert 0 < redis_client.ttl(f"{prefix}:streams:tn1") <= 61
    slot.release()
    assert slots.open("tn1") == 0


def test_a_renewed_slot_outlives_its_first_lease(redis_client: redis.Redis, prefix: str) -> None:
    now = [1000.0]
    slots = StreamSlots(
        redis_client, prefix=prefix, per_tenant=1, slot_seconds=60, clock=lambda: now[0]
    )
    slot = slots.acquire("tn1")
    now[0] += 30
    assert slot.renew_due
    slot.renew()
    assert not slot.renew_due
    now[0] += 45  # past the first lease, within the renewed one
    with pytest.raises(TooManyStreams):
        slots.acquire("tn1")


def test_a_cap_of_zero_is_no_cap(redis_client: redis.Redis, prefix: str) -> None:
    slots = StreamSlots(redis_client, prefix=prefix, per_tenant=0, slot_seconds=60)
    for _ in range(20):
        slots.acquire("tn1")
    assert slots.open("tn1") == 20
