"""Issue 12.4: the declared SHA-256 is verified, on each backend where it can be.

The local store hashes the bytes as it assembles them, so completion refuses a mismatch and
keeps nothing. On S3 the API never reads the bytes: completion cannot check, the worker's input
stream does before use, and a mismatching object is deleted there.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import pytest

from server.integrations.s3 import S3Store
from server.integrations.storage import ObjectNotFound
from server.jobs.inputs import CHECKSUM_MISMATCH, InputError, InputStream
from tests.server.api.conftest import (
    Api,
    ApiFactory,
    auth,
    complete,
    error_code,
    put_parts,
    upload,
)
from tests.servers import moto_server

DATA = bytes(range(256)) * 4096  # 1 MiB, one part
DECLARED_OTHER = hashlib.sha256(b"something else").hexdigest()


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        yield url


@pytest.fixture
def s3_api(make_api: ApiFactory, moto_url: str) -> Api:
    public = moto_url.replace("127.0.0.1", "localhost")
    store = S3Store(
        moto_url, "testing", "testing", f"b-{uuid.uuid4().hex[:12]}", public_endpoint=public
    )
    store.ensure_bucket()
    return make_api(store=store)


def _upload_declaring(api: Api, sha256: str) -> tuple[str, dict[int, str]]:
    body = {"name": "cover.wav", "size": len(DATA), "sha256": sha256}
    response = api.client.post("/v1/uploads", json=body, headers=auth(api.alice))
    assert response.status_code == 201, response.text
    upload_id = str(response.json()["upload_id"])
    return upload_id, put_parts(api, api.alice, upload_id, DATA, [1])


def test_local_store_refuses_a_mismatching_digest_at_completion(api: Api) -> None:
    upload_id, etags = _upload_declaring(api, DECLARED_OTHER)

    response = complete(api, api.alice, upload_id, etags)

    assert response.status_code == 422, response.text
    assert error_code(response) == "checksum_mismatch"
    status = api.client.get(f"/v1/uploads/{upload_id}", headers=auth(api.alice))
    assert status.status_code == 404  # refused: the upload is closed, nothing was kept
    record = api.uploads.get_upload(api.tokens.authenticate(api.alice).id, upload_id)
    with pytest.raises(ObjectNotFound):
        api.deps.store.head(record.key)
    again = complete(api, api.alice, upload_id, etags)
    assert again.status_code == 409, again.text


def test_local_store_reports_the_digest_it_computed(api: Api) -> None:
    ref = upload(api, api.alice, DATA)

    assert ref.sha256 == hashlib.sha256(DATA).hexdigest()


def test_s3_mismatch_is_refused_and_deleted_by_the_worker_before_use(s3_api: Api) -> None:
    upload_id, etags = _upload_declaring(s3_api, DECLARED_OTHER)
    response = complete(s3_api, s3_api.alice, upload_id, etags)
    assert response.status_code == 200, response.text  # the API cannot read the bytes
    obj = s3_api.uploads.get_object(
        s3_api.tokens.authenticate(s3_api.alice).id, response.json()["id"]
    )

    with pytest.raises(InputError) as caught, InputStream(s3_api.deps.store, obj, "cover") as src:
        src.verify()

    assert caught.value.code == CHECKSUM_MISMATCH
    with pytest.raises(ObjectNotFound):
        s3_api.deps.store.head(obj.key)


def test_s3_matching_digest_round_trips(s3_api: Api) -> None:
    ref = upload(s3_api, s3_api.alice, DATA)
    obj = s3_api.uploads.get_object(s3_api.tokens.authenticate(s3_api.alice).id, ref.id)

    with InputStream(s3_api.deps.store, obj, "cover") as source:
        assert source.stream.read() == DATA
        source.verify()

    assert s3_api.deps.store.head(obj.key).size == len(DATA)
