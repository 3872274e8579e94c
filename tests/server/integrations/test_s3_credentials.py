"""S3 without keys: the store signs with the credentials of the role the server runs as (IRSA,
EKS Pod Identity, an instance role), and its pre-signed URLs carry the role's session token."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from minio.credentials.credentials import Credentials
from minio.credentials.providers import Provider
from pydantic import SecretStr

from server.integrations.factory import build_store
from server.integrations.s3 import S3Store
from server.integrations.s3_credentials import RETRY_SECONDS, RoleCredentials
from server.integrations.storage import StorageUnavailable
from server.settings import Settings, StorageBackend

AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_REGION",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
)
KEY = "t/acme/results/0001/result.wav"
POD_TOKEN = "pod-identity-token"


@pytest.fixture(autouse=True)
def no_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _s3_settings(**values: object) -> Settings:
    return Settings(
        STORAGE_BACKEND=StorageBackend.S3,
        S3_ENDPOINT="https://s3.eu-west-3.amazonaws.com",
        S3_REGION="eu-west-3",
        S3_BUCKET="subtone-test",
        **values,  # type: ignore[arg-type]
    )


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_without_keys_the_factory_signs_with_the_environments_role(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAROLEEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "role-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "role-session-token")

    query = _query(build_store(_s3_settings()).presign_download(KEY, 300, None))

    assert query["X-Amz-Credential"][0].startswith("ASIAROLEEXAMPLE/")
    assert query["X-Amz-Security-Token"] == ["role-session-token"]


def test_keys_win_over_the_environments_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAROLEEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "role-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "role-session-token")
    store = build_store(_s3_settings(S3_ACCESS_KEY="subtone", S3_SECRET_KEY=SecretStr("key")))

    query = _query(store.presign_download(KEY, 300, None))

    assert query["X-Amz-Credential"][0].startswith("subtone/")
    assert "X-Amz-Security-Token" not in query


@pytest.fixture
def pod_identity_agent() -> Iterator[tuple[str, list[str]]]:
    """A container credentials endpoint as EKS Pod Identity's agent serves it: it answers a
    request that carries the pod's token with a role's temporary credentials."""
    authorizations: list[str] = []

    class Agent(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            authorizations.append(self.headers.get("Authorization", ""))
            body = json.dumps(
                {
                    "AccessKeyId": "ASIAPODIDENTITY",
                    "SecretAccessKey": "pod-secret",
                    "Token": "pod-session-token",
                    "Expiration": "2099-01-01T00:00:00Z",
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Agent)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/credentials", authorizations
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_without_keys_the_store_signs_with_pod_identitys_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pod_identity_agent: tuple[str, list[str]]
) -> None:
    url, authorizations = pod_identity_agent
    token_file = tmp_path / "eks-pod-identity-token"
    token_file.write_text(POD_TOKEN)
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url)
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token_file))
    store = build_store(_s3_settings())

    first = _query(store.presign_upload_part(KEY, "upload-1", 1, 300))
    second = _query(store.presign_download(KEY, 300, "result.wav"))

    for query in (first, second):
        assert query["X-Amz-Credential"][0].startswith("ASIAPODIDENTITY/")
        assert query["X-Amz-Security-Token"] == ["pod-session-token"]
    assert authorizations == [POD_TOKEN], "fetched once, then kept until it expires"


def test_a_role_that_gives_no_credentials_is_storage_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # IRSA whose token file is missing: the look-up fails before any network call.
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(tmp_path / "missing"))
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/subtone")
    store = build_store(_s3_settings())

    with pytest.raises(StorageUnavailable, match="no S3 credentials"):
        store.presign_download(KEY, 300, None)


def test_one_key_without_the_other_is_refused() -> None:
    with pytest.raises(ValueError, match="go together"):
        S3Store("https://s3.eu-west-3.amazonaws.com", "subtone", "", "subtone-test")


T0 = datetime(2030, 1, 1)
HOUR = timedelta(hours=1)


class Clock:
    def __init__(self) -> None:
        self.time = T0

    def __call__(self) -> datetime:
        return self.time


class Role(Provider):
    """A role's credential source: each look-up gives new credentials valid for ``session``
    from the clock's time, or fails while ``down``."""

    def __init__(self, clock: Clock, session: timedelta) -> None:
        self.clock, self.session, self.down, self.calls = clock, session, False, 0

    def retrieve(self) -> Credentials:
        self.calls += 1
        if self.down:
            raise ValueError("STS does not answer")
        return Credentials(
            f"ASIA{self.calls}", "secret", f"token-{self.calls}", self.clock() + self.session
        )


def _role(session: timedelta, min_lifetime: timedelta) -> tuple[Clock, Role, RoleCredentials]:
    clock = Clock()
    role = Role(clock, session)
    return (
        clock,
        role,
        RoleCredentials(min_lifetime.total_seconds(), sources=lambda: role, now=clock),
    )


def test_credentials_are_renewed_while_a_url_signed_with_them_would_outlive_them() -> None:
    clock, role, credentials = _role(session=6 * HOUR, min_lifetime=HOUR)
    first = credentials.retrieve()
    clock.time += 5 * HOUR - timedelta(seconds=1)
    assert credentials.retrieve() is first and role.calls == 1
    clock.time += timedelta(seconds=2)
    renewed = credentials.retrieve()
    assert renewed.session_token == "token-2"
    assert renewed.expiration is not None and renewed.expiration - clock.time == 6 * HOUR


def test_a_source_of_short_sessions_is_asked_at_most_once_a_retry_interval() -> None:
    # IRSA's one-hour sessions against one-hour download URLs: never long enough.
    clock, role, credentials = _role(session=HOUR, min_lifetime=HOUR)
    credentials.retrieve()
    for _ in range(10):
        clock.time += timedelta(seconds=RETRY_SECONDS / 10)
        credentials.retrieve()
    assert role.calls == 2


def test_a_failed_renewal_keeps_the_valid_credentials_then_is_storage_unavailable() -> None:
    clock, role, credentials = _role(session=HOUR, min_lifetime=HOUR / 4)
    held = credentials.retrieve()
    role.down = True
    clock.time += HOUR - timedelta(minutes=1)
    assert credentials.retrieve() is held
    clock.time += timedelta(minutes=1)
    with pytest.raises(StorageUnavailable, match="no S3 credentials"):
        credentials.retrieve()
