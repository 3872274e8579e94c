"""Jobs: creating (idempotently, on this tenant's objects), reporting, cancelling, following."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest

from server.jobs import changes
from server.kit.clock import utcnow
from server.uploads.repository import ObjectRecord
from subtone.protocol import Job, JobState, ObjectRef

from .conftest import K_POS, Api, ApiFactory, auth, embed_body, error_code, start_upload, upload

RESULT = b"the stego file"
PUSHED_WITHIN_SECONDS = 15.0


def _objects(api: Api, token: str) -> tuple[ObjectRef, ObjectRef]:
    return upload(api, token, b"cover bytes", "cover.wav"), upload(api, token, b"secret", "p.bin")


def _create(
    api: Api, body: dict[str, object], token: str, key: str | None = None
) -> httpx.Response:
    headers = auth(token) | ({"Idempotency-Key": key} if key else {})
    return api.client.post("/v1/jobs", json=body, headers=headers)


def _job(api: Api, token: str) -> Job:
    cover, payload = _objects(api, token)
    response = _create(api, embed_body(cover.id, payload.id), token)
    assert response.status_code == 202, response.text
    return Job.model_validate(response.json())


def _succeed(api: Api, job_id: str) -> ObjectRecord:
    """Play the worker: run the job and record a result object in storage."""
    record = api.jobs.get(job_id)
    assert record is not None
    key = f"t/{record.tenant}/results/{job_id}/stego.wav"
    api.deps.store.put_bytes(key, RESULT, "audio/wav")
    result = ObjectRecord(
        id=f"obj_result{job_id[4:]}",
        tenant=record.tenant,
        key=key,
        name="stego.wav",
        size=len(RESULT),
        sha256=None,
        media_type="audio/wav",
        created_at=utcnow(),
    )
    api.uploads.save_object(result)
    api.jobs.start(job_id, max_lost_runs=3)
    api.jobs.succeed(job_id, result.id)
    return result


def test_a_job_is_saved_queued_and_sent_once(api: Api) -> None:
    cover, payload = _objects(api, api.alice)
    response = _create(api, embed_body(cover.id, payload.id), api.alice, "key-1")
    assert response.status_code == 202
    job = Job.model_validate(response.json())
    assert job.state is JobState.QUEUED and job.progress == 0.0
    assert job.inputs == {"plane": cover.id, "payload": payload.id}
    assert api.queue.sent == [job.id]
    record = api.jobs.get(job.id)
    assert record is not None and record.params == {"k_pos": K_POS}


def test_the_same_key_and_body_give_the_same_job_sent_once(api: Api) -> None:
    cover, payload = _objects(api, api.alice)
    body = embed_body(cover.id, payload.id)
    first = _create(api, body, api.alice, "key-1")
    reordered = {**body, "inputs": {"payload": payload.id, "plane": cover.id}}
    second = _create(api, reordered, api.alice, "key-1")
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert api.queue.sent == [first.json()["id"]]


def test_concurrent_requests_with_one_key_make_one_job_sent_once(api: Api) -> None:
    """Retries racing each other (a client that timed out and sent again at once)."""
    cover, payload = _objects(api, api.alice)
    body = embed_body(cover.id, payload.id)
    start = threading.Barrier(8)
    responses: list[httpx.Response] = []

    def send() -> None:
        with httpx.Client(base_url=str(api.client.base_url)) as client:
            start.wait()
            headers = auth(api.alice) | {"Idempotency-Key": "racing-key"}
            responses.append(client.post("/v1/jobs", json=body, headers=headers))

    senders = [threading.Thread(target=send) for _ in range(8)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join(30)

    assert [r.status_code for r in responses] == [202] * 8
    assert len({r.json()["id"] for r in responses}) == 1
    assert api.queue.sent == [responses[0].json()["id"]]
    assert len(api.jobs.list_for_tenant(api.tokens.authenticate(api.alice).id)) == 1


def test_the_same_key_with_another_body_is_409(api: Api) -> None:
    cover, payload = _objects(api, api.alice)
    assert _create(api, embed_body(cover.id, payload.id), api.alice, "key-1").status_code == 202
    response = _create(api, embed_body(payload.id, cover.id), api.alice, "key-1")
    assert response.status_code == 409
    assert error_code(response) == "idempotency_conflict"
    assert len(api.queue.sent) == 1


def test_keys_are_per_tenant(api: Api) -> None:
    a = _objects(api, api.alice)
    b = _objects(api, api.bob)
    first = _create(api, embed_body(a[0].id, a[1].id), api.alice, "shared-key")
    second = _create(api, embed_body(b[0].id, b[1].id), api.bob, "shared-key")
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] != second.json()["id"]


def test_an_overlong_idempotency_key_is_422(api: Api) -> None:
    cover, payload = _objects(api, api.alice)
    response = _create(api, embed_body(cover.id, payload.id), api.alice, "k" * 201)
    assert response.status_code == 422
    assert "idempotency-key" in response.json()["error"]["message"].lower()


def test_inputs_must_match_the_kind(api: Api) -> None:
    cover, _ = _objects(api, api.alice)
    body: dict[str, object] = {
        "kind": "stego.extract",
        "inputs": {"plane": cover.id, "payload": cover.id},
        "params": {"k_pos": K_POS},
    }
    response = _create(api, body, api.alice)
    assert response.status_code == 422
    assert error_code(response) == "invalid_inputs"
    assert "plane" in response.json()["error"]["message"]
    assert api.queue.sent == []


def test_an_incomplete_upload_is_not_an_input(api: Api) -> None:
    _, payload = _objects(api, api.alice)
    upload_id = str(start_upload(api, api.alice, b"not finished")["upload_id"])
    response = _create(api, embed_body(upload_id, payload.id), api.alice)
    assert response.status_code == 404
    assert error_code(response) == "not_found"
    assert api.queue.sent == []


def test_another_tenants_object_is_not_an_input(api: Api) -> None:
    cover, _ = _objects(api, api.alice)
    _, theirs = _objects(api, api.bob)
    response = _create(api, embed_body(cover.id, theirs.id), api.alice)
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_a_queue_outage_fails_the_job_with_503_and_a_retry_makes_a_new_one(api: Api) -> None:
    cover, payload = _objects(api, api.alice)
    body = embed_body(cover.id, payload.id)
    api.queue.down = True
    response = _create(api, body, api.alice, "key-1")
    assert response.status_code == 503
    assert error_code(response) == "queue_unavailable"
    (failed,) = api.client.get("/v1/jobs", headers=auth(api.alice)).json()["jobs"]
    assert failed["state"] == "failed"
    assert failed["error"]["code"] == "queue_unavailable"

    api.queue.down = False
    retried = _create(api, body, api.alice, "key-1")
    assert retried.status_code == 202
    assert retried.json()["id"] != failed["id"]
    assert api.queue.sent == [retried.json()["id"]]


def test_a_succeeded_job_has_its_result_and_a_download_url(api: Api) -> None:
    job = _job(api, api.alice)
    result = _succeed(api, job.id)
    got = Job.model_validate(api.client.get(f"/v1/jobs/{job.id}", headers=auth(api.alice)).json())
    assert got.state is JobState.SUCCEEDED and got.progress == 1.0
    assert got.result == result.ref()
    assert got.download_url is not None
    download = httpx.get(got.download_url)
    assert download.status_code == 200
    assert download.content == RESULT


def test_a_failed_job_carries_its_error(api: Api) -> None:
    job = _job(api, api.alice)
    api.jobs.start(job.id, max_lost_runs=3)
    api.jobs.fail(job.id, "cover_too_small", "The cover cannot hold this payload.")
    got = api.client.get(f"/v1/jobs/{job.id}", headers=auth(api.alice)).json()
    assert got["state"] == "failed"
    assert got["error"] == {
        "code": "cover_too_small",
        "message": "The cover cannot hold this payload.",
    }
    assert got["download_url"] is None


def test_cancel_a_queued_job(api: Api) -> None:
    job = _job(api, api.alice)
    response = api.client.post(f"/v1/jobs/{job.id}/cancel", headers=auth(api.alice))
    assert response.status_code == 200
    assert response.json()["state"] == "cancelled"


def test_cancelling_a_finished_job_leaves_it(api: Api) -> None:
    job = _job(api, api.alice)
    _succeed(api, job.id)
    response = api.client.post(f"/v1/jobs/{job.id}/cancel", headers=auth(api.alice))
    assert response.status_code == 200
    assert response.json()["state"] == "succeeded"


def test_list_shows_this_tenants_jobs_newest_first(api: Api) -> None:
    first = _job(api, api.alice)
    second = _job(api, api.alice)
    _job(api, api.bob)
    listed = api.client.get("/v1/jobs", headers=auth(api.alice)).json()["jobs"]
    assert [j["id"] for j in listed] == [second.id, first.id]


# --- the event stream ------------------------------------------------------------------------


def _events(api: Api, job_id: str, token: str) -> list[Job]:
    """Every ``job`` event until the server ends the stream."""
    jobs: list[Job] = []
    event = None
    path = f"/v1/jobs/{job_id}/events"
    with api.client.stream("GET", path, headers=auth(token), timeout=20.0) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.partition(":")[2].strip()
            elif line.startswith("data:") and event == "job":
                jobs.append(Job.model_validate_json(line.partition(":")[2].strip()))
    return jobs


def _later(steps: list[Callable[[], object]], gap_seconds: float = 0.7) -> threading.Thread:
    def run() -> None:
        for step in steps:
            time.sleep(gap_seconds)
            step()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_events_follow_the_job_and_end_with_its_final_state(api: Api) -> None:
    job = _job(api, api.alice)
    worker = _later(
        [
            lambda: api.jobs.start(job.id, max_lost_runs=3),
            lambda: api.jobs.set_progress(job.id, 0.5),
            lambda: _succeed(api, job.id),
        ]
    )
    try:
        events = _events(api, job.id, api.alice)
    finally:
        worker.join()
    states = [(e.state, e.progress) for e in events]
    assert states[0] == (JobState.QUEUED, 0.0)
    assert (JobState.RUNNING, 0.5) in states
    assert states[-1] == (JobState.SUCCEEDED, 1.0)
    assert events[-1].download_url is not None
    # Each event tells something new (state, progress, attempts...): pushed changes are not
    # repeated. (The playing worker's second start counts an attempt: same state, new event.)
    told = [e.model_dump_json(exclude={"updated_at", "download_url"}) for e in events]
    assert len(told) == len(set(told)), "an event is sent only on a change"


def test_a_follower_is_told_of_a_change_at_once_not_at_its_next_poll(
    make_api: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's change reaches the stream through Redis pub/sub: with the stream's own
    re-reads (and its slot's renewals) an hour apart, it still ends when the job succeeds."""
    monkeypatch.setattr(changes, "SAFETY_POLL_SECONDS", 3600.0)
    api = make_api(EVENT_STREAM_SLOT_SECONDS=3 * 3600)
    job = _job(api, api.alice)
    seen: list[Job] = []
    follower = threading.Thread(target=lambda: seen.extend(_events(api, job.id, api.alice)))
    follower.start()
    _later([lambda: _succeed(api, job.id)], gap_seconds=1.0).join()
    follower.join(timeout=PUSHED_WITHIN_SECONDS)
    assert not follower.is_alive(), "the stream waited for a poll"
    assert seen[-1].state is JobState.SUCCEEDED


def test_events_of_a_finished_job_end_at_once(api: Api) -> None:
    job = _job(api, api.alice)
    api.jobs.cancel(job.id)
    events = _events(api, job.id, api.alice)
    assert [e.state for e in events] == [JobState.CANCELLED]


def test_events_of_an_unknown_job_are_a_json_404(api: Api) -> None:
    response = api.client.get("/v1/jobs/job_doesnotexist0/events", headers=auth(api.alice))
    assert response.status_code == 404
    assert error_code(response) == "not_found"
