"""Tenants never see each other: another tenant's upload, object or job does not exist."""

from __future__ import annotations

import pytest

from .conftest import Api, auth, embed_body, error_code, put_parts, start_upload, upload

DATA = b"alice's cover"


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("POST", "/parts", {"part_numbers": [1]}),
        ("POST", "/complete", {"parts": [{"part_number": 1, "etag": "abc"}]}),
        ("DELETE", "", None),
    ],
)
def test_another_tenants_upload_is_404(
    api: Api, method: str, suffix: str, body: dict[str, object] | None
) -> None:
    upload_id = str(start_upload(api, api.alice, DATA)["upload_id"])
    put_parts(api, api.alice, upload_id, DATA, [1])
    response = api.client.request(
        method, f"/v1/uploads/{upload_id}{suffix}", json=body, headers=auth(api.bob)
    )
    assert response.status_code == 404
    assert error_code(response) == "not_found"
    # Untouched for its owner.
    status = api.client.get(f"/v1/uploads/{upload_id}", headers=auth(api.alice)).json()
    assert status["state"] == "uploading" and len(status["parts"]) == 1


@pytest.mark.parametrize(
    ("method", "suffix"), [("GET", ""), ("GET", "/events"), ("POST", "/cancel")]
)
def test_another_tenants_job_is_404(api: Api, method: str, suffix: str) -> None:
    ref = upload(api, api.alice, DATA)
    job = api.client.post(
        "/v1/jobs", json=embed_body(ref.id, ref.id), headers=auth(api.alice)
    ).json()
    response = api.client.request(method, f"/v1/jobs/{job['id']}{suffix}", headers=auth(api.bob))
    assert response.status_code == 404
    assert error_code(response) == "not_found"
    own = api.client.get(f"/v1/jobs/{job['id']}", headers=auth(api.alice)).json()
    assert own["state"] == "queued"


def test_another_tenants_jobs_are_not_listed(api: Api) -> None:
    ref = upload(api, api.alice, DATA)
    api.client.post("/v1/jobs", json=embed_body(ref.id, ref.id), headers=auth(api.alice))
    assert api.client.get("/v1/jobs", headers=auth(api.bob)).json() == {"jobs": []}


def test_another_tenants_object_is_not_an_input(api: Api) -> None:
    ref = upload(api, api.alice, DATA)
    response = api.client.post("/v1/jobs", json=embed_body(ref.id, ref.id), headers=auth(api.bob))
    assert response.status_code == 404
    assert error_code(response) == "not_found"
    assert api.queue.sent == []


def test_object_keys_are_namespaced_by_tenant(api: Api) -> None:
    alice = api.tokens.authenticate(api.alice).id
    bob = api.tokens.authenticate(api.bob).id
    ref_a = upload(api, api.alice, DATA, "same.wav")
    ref_b = upload(api, api.bob, DATA, "same.wav")
    key_a = api.uploads.get_object(alice, ref_a.id).key
    key_b = api.uploads.get_object(bob, ref_b.id).key
    assert key_a.startswith(f"t/{alice}/") and key_b.startswith(f"t/{bob}/")
