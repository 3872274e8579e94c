"""Uploads straight to storage by pre-signed URLs, through the API and the local store process."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from server.integrations.storage import MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, GiB, MiB
from server.uploads.service import object_key, plan_parts, preferred_part_size

from .conftest import (
    PART_SIZE,
    Api,
    ApiFactory,
    auth,
    complete,
    error_code,
    put_parts,
    start_upload,
)

DATA = bytes(range(256)) * (PART_SIZE // 256) + b"the tail"
"""Two parts: a full one and a short last one."""


def _presign(api: Api, token: str, upload_id: str, numbers: list[int]) -> httpx.Response:
    return api.client.post(
        f"/v1/uploads/{upload_id}/parts", json={"part_numbers": numbers}, headers=auth(token)
    )


def _status(api: Api, token: str, upload_id: str) -> httpx.Response:
    return api.client.get(f"/v1/uploads/{upload_id}", headers=auth(token))


def test_the_whole_flow_by_presigned_urls(api: Api) -> None:
    created = start_upload(api, api.alice, DATA, "my cover.wav")
    assert (created["part_size"], created["part_count"]) == (PART_SIZE, 2)
    upload_id = str(created["upload_id"])

    etags = put_parts(api, api.alice, upload_id, DATA, [1, 2])
    response = complete(api, api.alice, upload_id, etags)

    assert response.status_code == 200, response.text
    ref = response.json()
    assert ref["id"].startswith("obj_")
    assert ref["name"] == "my cover.wav"
    assert ref["size"] == len(DATA)
    assert ref["sha256"] == hashlib.sha256(DATA).hexdigest()
    record = api.uploads.get_object(api.tokens.authenticate(api.alice).id, ref["id"])
    assert record.key.endswith(f"/uploads/{upload_id}/my_cover.wav")
    with api.deps.store.read(record.key) as chunks:
        assert b"".join(chunks) == DATA
    status = _status(api, api.alice, upload_id).json()
    assert status["state"] == "completed"
    assert status["object"] == ref
    assert status["parts"] == []


def test_resume_lists_the_parts_storage_holds(api: Api) -> None:
    upload_id = str(start_upload(api, api.alice, DATA)["upload_id"])
    first = put_parts(api, api.alice, upload_id, DATA, [1])

    status = _status(api, api.alice, upload_id).json()
    assert status["state"] == "uploading"
    assert status["part_count"] == 2
    assert status["parts"] == [{"part_number": 1, "etag": first[1].strip('"'), "size": PART_SIZE}]

    rest = put_parts(api, api.alice, upload_id, DATA, [2])
    stored = {
        p["part_number"]: p["etag"] for p in _status(api, api.alice, upload_id).json()["parts"]
    }
    assert complete(api, api.alice, upload_id, stored).status_code == 200
    assert stored[2] == rest[2].strip('"')


def test_complete_with_a_wrong_etag_names_the_part(api: Api) -> None:
    upload_id = str(start_upload(api, api.alice, DATA)["upload_id"])
    etags = put_parts(api, api.alice, upload_id, DATA, [1, 2])
    etags[2] = '"0123456789abcdef0123456789abcdef"'
    response = complete(api, api.alice, upload_id, etags)
    assert response.status_code == 400
    assert error_code(response) == "invalid_part"
    assert "Part 2" in response.json()["error"]["message"]


def test_complete_with_a_part_never_uploaded(api: Api) -> None:
    upload_id = str(start_upload(api, api.alice, DATA)["upload_id"])
    etags = put_parts(api, api.alice, upload_id, DATA, [1])
    etags[2] = "0123456789abcdef0123456789abcdef"
    response = complete(api, api.alice, upload_id, etags)
    assert response.status_code == 400
    assert error_code(response) == "invalid_part"
    assert "Part 2 is not in storage" in response.json()["error"]["message"]


def test_complete_with_a_part_missing_from_the_list(api: Api) -> None:
    upload_id = str(start_upload(api, api.alice, DATA)["upload_id"])
    etags = put_parts(api, api.alice, upload_id, DATA, [1, 2])
    del etags[1]
    response = complete(api, api.alice, upload_id, etags)
    assert response.status_code == 400
    assert error_code(response) == "invalid_part"
    assert "part 1 is missing" in response.json()["error"]["message"]


def test_parts_that_do_not_add_up_to_the_size(api: Api) -> None:
    upload_id = str(start_upload(api, api.alice, DATA)["upload_id"])
    shorter = DATA[:-11]  # a longer part is refused at PUT (tests/security/test_storage.py)
    etags = put_parts(api, api.alice, upload_id, shorter, [1, 2])
    response = complete(api, api.alice, upload_id, etags)
    assert response.status_code == 400
    assert error_code(response) == "size_mismatch", response.text


def test_completing_twice_gives_the_same_object(api: Api) -> None:
    upload_id = str(start_upload(api, api.alice, DATA)["upload_id"])
    etags = put_parts(api, api.alice, upload_id, DATA, [1, 2])
    first = complete(api, api.alice, upload_id, etags)
    second = complete(api, api.alice, upload_id, etags)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()


def test_a_part_out_of_range_is_400(api: Api) -> None:
    upload_id = str(start_upload(api, api.alice, DATA)["upload_id"])
    response = _presign(api, api.alice, upload_id, [1, 3])
    assert response.status_code == 400
    assert error_code(response) == "part_out_of_range"


def test_too_many_parts_at_once_is_400(make_api: ApiFactory) -> None:
    api = make_api(MAX_PARTS_PER_PRESIGN=1)
    upload_id = str(start_upload(api, api.alice, DATA)["upload_id"])
    response = _presign(api, api.alice, upload_id, [1, 2])
    assert response.status_code == 400
    assert error_code(response) == "too_many_parts"


def test_an_upload_over_the_limit_is_413(api: Api) -> None:
    body = {"name": "big.wav", "size": api.settings.MAX_UPLOAD_BYTES + 1, "sha256": "0" * 64}
    response = api.client.post("/v1/uploads", json=body, headers=auth(api.alice))
    assert response.status_code == 413
    assert error_code(response) == "upload_too_large"


def test_abort_is_idempotent_and_closes_the_upload(api: Api) -> None:
    upload_id = str(start_upload(api, api.alice, DATA)["upload_id"])
    put_parts(api, api.alice, upload_id, DATA, [1])
    for _ in range(2):
        response = api.client.delete(f"/v1/uploads/{upload_id}", headers=auth(api.alice))
        assert response.status_code == 204
        assert response.content == b""
    assert _status(api, api.alice, upload_id).status_code == 404  # deleted: gone
    response = _presign(api, api.alice, upload_id, [1])
    assert response.status_code == 409
    assert error_code(response) == "upload_not_open"


def test_a_completed_upload_cannot_be_aborted(api: Api) -> None:
    upload_id = str(start_upload(api, api.alice, b"small")["upload_id"])
    etags = put_parts(api, api.alice, upload_id, b"small", [1])
    assert complete(api, api.alice, upload_id, etags).status_code == 200
    response = api.client.delete(f"/v1/uploads/{upload_id}", headers=auth(api.alice))
    assert response.status_code == 409
    assert error_code(response) == "upload_completed"


def test_an_unknown_upload_is_404(api: Api) -> None:
    response = _status(api, api.alice, "up_doesnotexist00")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


@pytest.mark.parametrize(
    ("size", "preferred", "part_size", "part_count"),
    [
        (1, 16 * MiB, 16 * MiB, 1),
        (100 * MiB, MiB, MIN_PART_SIZE, 20),
        (100 * 1024 * MiB, 16 * MiB, 16 * MiB, 6400),
        (500 * 1024 * MiB, 16 * MiB, 52 * MiB, 9847),
        (16 * MiB + 1, 16 * MiB, 16 * MiB, 2),
    ],
)
def test_plan_parts(size: int, preferred: int, part_size: int, part_count: int) -> None:
    assert plan_parts(size, preferred) == (part_size, part_count)
    assert part_count <= MAX_PARTS and part_size % MiB == 0


def _create(api: Api, size: int, part_size: object = None) -> httpx.Response:
    body: dict[str, object] = {"name": "cover.wav", "size": size, "sha256": "0" * 64}
    if part_size is not None:
        body["part_size"] = part_size
    return api.client.post("/v1/uploads", json=body, headers=auth(api.alice))


@pytest.mark.parametrize(
    ("size", "requested", "part_size", "part_count"),
    [
        (64 * MiB, 8 * MiB, 8 * MiB, 8),  # honoured
        (64 * MiB, MiB, MIN_PART_SIZE, 13),  # below S3's minimum: raised to it
        (64 * MiB, 6 * MiB + 1, 7 * MiB, 10),  # whole MiB, rounded up
        (64 * MiB, 8 * GiB, MAX_PART_SIZE, 1),  # above S3's maximum: lowered to it
        (100 * GiB, MIN_PART_SIZE, 11 * MiB, 9310),  # 10,000 parts at most
        (64 * MiB, None, PART_SIZE, 13),  # absent: the server's setting
    ],
)
def test_the_client_may_ask_for_a_part_size(
    make_api: ApiFactory, size: int, requested: int | None, part_size: int, part_count: int
) -> None:
    api = make_api(MAX_UPLOAD_BYTES=200 * GiB)
    response = _create(api, size, requested)
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["part_size"], created["part_count"]) == (part_size, part_count)
    status = _status(api, api.alice, created["upload_id"]).json()
    assert (status["part_size"], status["part_count"]) == (part_size, part_count)


@pytest.mark.parametrize("bad", [0, -5, "big", 1.5])
def test_a_part_size_that_is_not_a_positive_integer_is_422(api: Api, bad: object) -> None:
    response = _create(api, 64 * MiB, bad)
    assert response.status_code == 422
    assert error_code(response) == "invalid_request"


def test_preferred_part_size_clamps_to_s3_limits() -> None:
    assert preferred_part_size(None, 16 * MiB) == 16 * MiB
    assert preferred_part_size(1, 16 * MiB) == MIN_PART_SIZE
    assert preferred_part_size(32 * MiB, 16 * MiB) == 32 * MiB
    assert preferred_part_size(6 * GiB, 16 * MiB) == MAX_PART_SIZE


@pytest.mark.parametrize(
    ("name", "tail"),
    [
        ("cover.wav", "cover.wav"),
        ("../../etc/passwd", "etc_passwd"),
        (".hidden", "hidden"),
        ("chanson d'été.wav", "chanson_d_t_.wav"),
        ("...", "file"),
    ],
)
def test_object_keys_are_made_by_the_server(name: str, tail: str) -> None:
    assert object_key("tn_abc", "up_123", name) == f"t/tn_abc/uploads/up_123/{tail}"
