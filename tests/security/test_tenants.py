"""A token of tenant A never reads, lists, completes, aborts, downloads or cancels anything of
tenant B, on EVERY endpoint: the operations come from the app's OpenAPI, so an endpoint added
without a scenario here fails :func:`test_every_operation_has_an_isolation_scenario`.

Bob (tenant B) attacks what Alice (tenant A) owns: an upload in progress, a finished object,
a queued job and a succeeded job with a downloadable result. Another tenant's thing answers
exactly as a thing that does not exist (404 ``not_found``), and is left untouched for its owner.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from subtone.protocol import ObjectRef
from tests.server.api.conftest import (
    Api,
    auth,
    complete,
    embed_body,
    error_code,
    put_parts,
    start_upload,
    upload,
)

from .helpers import operations

DATA = b"alice's private cover bytes"


@dataclass
class World:
    """What Alice owns when Bob starts."""

    open_upload: str
    """An upload with one part sent, not completed."""
    etags: dict[int, str]
    obj: ObjectRef
    queued_job: str
    done_job: str
    """Succeeded, with ``result`` as its result."""
    result: ObjectRef
    alice_tenant: str


@pytest.fixture
def world(api: Api) -> World:
    upload_id = str(start_upload(api, api.alice, DATA, "alice-open.wav")["upload_id"])
    etags = put_parts(api, api.alice, upload_id, DATA, [1])
    obj = upload(api, api.alice, DATA, "alice-done.wav")
    queued = api.client.post(
        "/v1/jobs", json=embed_body(obj.id, obj.id), headers=auth(api.alice)
    ).json()["id"]
    done = api.client.post(
        "/v1/jobs",
        json=embed_body(obj.id, obj.id),
        headers=auth(api.alice) | {"Idempotency-Key": "alice-done"},
    ).json()["id"]
    result = upload(api, api.alice, b"alice's result", "alice-result.wav")
    api.jobs.start(done, max_lost_runs=3)
    api.jobs.succeed(done, result.id)
    assert api.client.get(f"/v1/jobs/{done}", headers=auth(api.alice)).json()["download_url"]
    tenant = api.tokens.authenticate(api.alice).id
    return World(upload_id, etags, obj, queued, done, result, tenant)


def _not_found(response) -> None:
    assert response.status_code == 404, response.text
    assert error_code(response) == "not_found"


def _alice_upload_untouched(api: Api, world: World) -> None:
    status = api.client.get(f"/v1/uploads/{world.open_upload}", headers=auth(api.alice)).json()
    assert status["state"] == "uploading" and [p["part_number"] for p in status["parts"]] == [1]


def _alice_job(api: Api, job_id: str) -> dict:
    response = api.client.get(f"/v1/jobs/{job_id}", headers=auth(api.alice))
    assert response.status_code == 200
    return response.json()


def _no_alice_data(api: Api, world: World, text: str) -> None:
    for secret in (world.alice_tenant, world.open_upload, world.obj.id, world.queued_job,
                   world.done_job, world.result.id, "alice-"):  # fmt: skip
        assert secret not in text


# --- one scenario per operation ------------------------------------------------------------


def create_upload(api: Api, world: World) -> None:
    """Bob's new upload lives under Bob's tenant, whatever name he gives."""
    bob = api.tokens.authenticate(api.bob).id
    created = start_upload(api, api.bob, DATA, f"../../{world.alice_tenant}/uploads/x")
    record = api.uploads.get_upload(bob, str(created["upload_id"]))
    assert record.key.startswith(f"t/{bob}/uploads/{created['upload_id']}/")
    assert world.alice_tenant not in record.key.split("/", 2)[1]


def presign_parts(api: Api, world: World) -> None:
    r = api.client.post(
        f"/v1/uploads/{world.open_upload}/parts",
        json={"part_numbers": [1, 2]},
        headers=auth(api.bob),
    )
    _not_found(r)
    _alice_upload_untouched(api, world)


def get_upload(api: Api, world: World) -> None:
    _not_found(api.client.get(f"/v1/uploads/{world.open_upload}", headers=auth(api.bob)))


def abort_upload(api: Api, world: World) -> None:
    _not_found(api.client.delete(f"/v1/uploads/{world.open_upload}", headers=auth(api.bob)))
    _alice_upload_untouched(api, world)


def complete_upload(api: Api, world: World) -> None:
    _not_found(complete(api, api.bob, world.open_upload, world.etags))
    _alice_upload_untouched(api, world)


def create_job(api: Api, world: World) -> None:
    """Alice's objects are no inputs for Bob; her Idempotency-Key does not give him her job."""
    sent = list(api.queue.sent)
    for inputs in ((world.obj.id, world.obj.id), (world.result.id, world.result.id)):
        _not_found(api.client.post("/v1/jobs", json=embed_body(*inputs), headers=auth(api.bob)))
    assert api.queue.sent == sent
    own = upload(api, api.bob, b"bob's cover")
    r = api.client.post(
        "/v1/jobs",
        json=embed_body(own.id, own.id),
        headers=auth(api.bob) | {"Idempotency-Key": "alice-done"},
    )
    assert r.status_code == 202, r.text
    assert r.json()["id"] not in (world.done_job, world.queued_job)


def list_jobs(api: Api, world: World) -> None:
    r = api.client.get("/v1/jobs", headers=auth(api.bob))
    assert r.status_code == 200
    assert r.json() == {"jobs": []}
    _no_alice_data(api, world, r.text)


def get_job(api: Api, world: World) -> None:
    """Neither job, nor the download URL of the succeeded one, reaches Bob."""
    for job_id in (world.queued_job, world.done_job):
        _not_found(api.client.get(f"/v1/jobs/{job_id}", headers=auth(api.bob)))


def job_events(api: Api, world: World) -> None:
    for job_id in (world.queued_job, world.done_job):
        _not_found(api.client.get(f"/v1/jobs/{job_id}/events", headers=auth(api.bob)))


def cancel_job(api: Api, world: World) -> None:
    for job_id in (world.queued_job, world.done_job):
        _not_found(api.client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(api.bob)))
    assert _alice_job(api, world.queued_job)["state"] == "queued"
    assert _alice_job(api, world.done_job)["state"] == "succeeded"


def public(path: str) -> Callable[[Api, World], None]:
    """An unauthenticated operation: it must say nothing about any tenant's data."""

    def scenario(api: Api, world: World) -> None:
        r = api.client.get(path, headers=auth(api.bob))
        assert r.status_code == 200
        _no_alice_data(api, world, r.text)

    return scenario


SCENARIOS: dict[tuple[str, str], Callable[[Api, World], None]] = {
    ("POST", "/v1/uploads"): create_upload,
    ("POST", "/v1/uploads/{upload_id}/parts"): presign_parts,
    ("GET", "/v1/uploads/{upload_id}"): get_upload,
    ("DELETE", "/v1/uploads/{upload_id}"): abort_upload,
    ("POST", "/v1/uploads/{upload_id}/complete"): complete_upload,
    ("POST", "/v1/jobs"): create_job,
    ("GET", "/v1/jobs"): list_jobs,
    ("GET", "/v1/jobs/{job_id}"): get_job,
    ("GET", "/v1/jobs/{job_id}/events"): job_events,
    ("POST", "/v1/jobs/{job_id}/cancel"): cancel_job,
    ("GET", "/healthz"): public("/healthz"),
    ("GET", "/readyz"): public("/readyz"),
    ("GET", "/metrics"): public("/metrics"),
    ("GET", "/version"): public("/version"),
}


def test_every_operation_has_an_isolation_scenario() -> None:
    assert set(operations()) == set(SCENARIOS)


@pytest.mark.parametrize(("method", "path"), sorted(SCENARIOS), ids=lambda v: v)
def test_another_tenant_gets_nothing(api: Api, world: World, method: str, path: str) -> None:
    SCENARIOS[(method, path)](api, world)
    # Whatever Bob tried, Alice still has all of it.
    _alice_upload_untouched(api, world)
    assert _alice_job(api, world.done_job)["result"]["id"] == world.result.id


# --- no token, a bad token ------------------------------------------------------------------


def _concrete(path: str) -> str:
    return path.replace("{upload_id}", "up_" + "a" * 20).replace("{job_id}", "job_" + "a" * 20)


BAD_TOKENS = [
    None,
    "",
    "st_",
    "st_" + "x" * 43,
    "st_" + "x" * 5000,
    "not-a-subtone-token",
    "st_\u00e9\u00e9",
]


@pytest.mark.parametrize(("method", "path"), operations("/v1/"), ids=lambda v: v)
def test_every_v1_operation_refuses_a_missing_or_bad_token(
    api: Api, method: str, path: str
) -> None:
    for token in BAD_TOKENS:
        headers = {} if token is None else {"Authorization": f"Bearer {token}".strip().encode()}
        r = api.client.request(method, _concrete(path), headers=headers, json={})
        assert r.status_code == 401, (token, r.text)
        assert error_code(r) == "unauthorized"
        assert r.headers["WWW-Authenticate"] == "Bearer"


def test_other_auth_schemes_and_a_revoked_token_are_refused(api: Api) -> None:
    assert (
        api.client.get("/v1/jobs", headers={"Authorization": f"Basic {api.alice}"}).status_code
        == 401
    )
    assert api.client.get("/v1/jobs", headers={"Authorization": api.alice}).status_code == 401
    token, _ = api.tokens.create(f"carol-{uuid.uuid4().hex[:6]}")
    assert api.client.get("/v1/jobs", headers=auth(token)).status_code == 200
    api.tokens.revoke(api.tokens.authenticate(token).name)
    r = api.client.get("/v1/jobs", headers=auth(token))
    assert r.status_code == 401 and error_code(r) == "unauthorized"
