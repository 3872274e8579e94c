"""The app around the endpoints: probes, metrics, error bodies, body limit, OpenAPI."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
import redis
from redis.asyncio import Redis as AsyncRedis

from server.app import create_app
from server.deps import build_async_redis, build_redis
from server.integrations.s3 import S3Store
from server.jobs.heartbeat import WorkerHeartbeats
from server.middleware import INTERNAL_ERROR_MESSAGE
from server.settings import Settings
from subtone.protocol import PROTOCOL_VERSION
from subtone.version import __version__

from .conftest import Api, ApiFactory, ServerThread, auth, embed_body, error_code, upload


def test_healthz(api: Api) -> None:
    response = api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_version_says_the_servers_version_and_protocol_without_a_token(api: Api) -> None:
    response = api.client.get("/version")
    assert response.status_code == 200
    assert response.json() == {"server": __version__, "protocol": PROTOCOL_VERSION}


def test_readyz_when_everything_answers(api: Api) -> None:
    response = api.client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "ready": True,
        "checks": {"redis": "ok", "broker": "ok", "storage": "ok", "triton": "ok", "workers": "ok"},
    }


def test_readyz_is_not_ready_while_no_worker_consumes_the_queue(api: Api) -> None:
    """Workers beat in Redis per queue; with none beating the API cannot get a job done."""
    beats = WorkerHeartbeats(api.deps.redis, prefix=api.settings.REDIS_PREFIX)
    beats.leave(api.settings.QUEUE_NAME, "test-worker")
    response = api.client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["workers"].startswith("unavailable")
    assert checks["redis"] == checks["broker"] == checks["storage"] == "ok"
    assert api.client.get("/healthz").status_code == 200  # liveness is not readiness

    beats.beat("another-queue", "w1")  # a worker of another queue does not count
    assert api.client.get("/readyz").status_code == 503
    beats.beat(api.settings.QUEUE_NAME, "w2")
    assert api.client.get("/readyz").status_code == 200


def test_a_worker_whose_heartbeat_lapsed_is_gone(api: Api) -> None:
    beats = WorkerHeartbeats(api.deps.redis, prefix=api.settings.REDIS_PREFIX, ttl_seconds=0.2)
    queue = f"{api.settings.QUEUE_NAME}-lapsing"
    beats.beat(queue, "w1")
    assert beats.count(queue) == 1
    time.sleep(0.4)
    assert beats.count(queue) == 0


def test_readyz_can_leave_the_workers_to_the_autoscaler(make_api: ApiFactory) -> None:
    api = make_api(READYZ_CHECKS_WORKERS=False)
    WorkerHeartbeats(api.deps.redis, prefix=api.settings.REDIS_PREFIX).leave(
        api.settings.QUEUE_NAME, "test-worker"
    )
    assert api.client.get("/readyz").status_code == 200


def test_readyz_names_a_dependency_that_is_down(api: Api) -> None:
    api.triton.down = True
    response = api.client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    assert body["checks"]["triton"].startswith("unavailable")
    assert body["checks"]["redis"] == body["checks"]["broker"] == "ok"


def test_readyz_names_the_broker_when_the_queue_is_down(api: Api) -> None:
    api.queue.down = True
    response = api.client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("unavailable")


def test_readyz_can_leave_triton_to_the_workers(make_api: ApiFactory) -> None:
    """Where Triton scales to zero (KEDA), a sleeping Triton does not make the API unready."""
    api = make_api(READYZ_CHECKS_TRITON=False)
    api.triton.down = True
    response = api.client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {
        "redis": "ok",
        "broker": "ok",
        "storage": "ok",
        "workers": "ok",
    }


def test_metrics_expose_latency_by_route_template_jobs_and_queue(api: Api) -> None:
    cover = upload(api, api.alice, b"c" * 100)
    job = api.client.post(
        "/v1/jobs", json=embed_body(cover.id, cover.id), headers=auth(api.alice)
    ).json()
    api.client.get(f"/v1/jobs/{job['id']}", headers=auth(api.alice))
    api.client.get("/no/such/route")

    text = api.client.get("/metrics").text

    assert "# TYPE subtone_http_request_duration_seconds histogram" in text
    assert (
        'subtone_http_request_duration_seconds_count{method="GET",route="/v1/jobs/{job_id}",'
        'status="200"} 1.0'
    ) in text
    assert job["id"] not in text
    assert 'route="unmatched",status="404"' in text
    assert 'subtone_jobs{state="queued"} 1.0' in text
    assert 'subtone_queue_depth{queue="' in text


def test_malformed_json_is_400(api: Api) -> None:
    response = api.client.post(
        "/v1/uploads",
        content=b'{"name": "a.wav", "size":',
        headers=auth(api.alice) | {"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert error_code(response) == "malformed_json"
    assert "not valid JSON" in response.json()["error"]["message"]


def test_unknown_fields_are_422_naming_the_field(api: Api) -> None:
    body = {"name": "a.wav", "size": 10, "sha256": "0" * 64, "colour": "blue"}
    response = api.client.post("/v1/uploads", json=body, headers=auth(api.alice))
    assert response.status_code == 422
    assert error_code(response) == "invalid_request"
    assert "colour" in response.json()["error"]["message"]


def test_invalid_values_are_422_with_the_field_path(api: Api) -> None:
    body = {"parts": [{"part_number": 1}]}
    response = api.client.post(
        "/v1/uploads/up_0123456789/complete", json=body, headers=auth(api.alice)
    )
    assert response.status_code == 422
    assert "parts.0.etag: Field required" in response.json()["error"]["message"]


def test_unknown_route_is_404(api: Api) -> None:
    response = api.client.get("/v1/nothing")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_wrong_method_is_405(api: Api) -> None:
    response = api.client.put("/v1/jobs", headers=auth(api.alice))
    assert response.status_code == 405
    assert error_code(response) == "method_not_allowed"
    assert "Allow" in response.headers


def test_declared_body_over_the_limit_is_413(make_api: ApiFactory) -> None:
    api = make_api(MAX_REQUEST_BODY_BYTES=1000)
    response = api.client.post(
        "/v1/uploads",
        content=b"x" * 2000,
        headers=auth(api.alice) | {"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert error_code(response) == "body_too_large"


def test_streamed_body_over_the_limit_is_413(make_api: ApiFactory) -> None:
    api = make_api(MAX_REQUEST_BODY_BYTES=1000)

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b" " * 300

    response = api.client.post(
        "/v1/uploads",
        content=chunks(),
        headers=auth(api.alice) | {"Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert error_code(response) == "body_too_large"


def test_unexpected_errors_are_500_without_details(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(tenant: str) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api.app.state.services.jobs, "list", boom)
    response = api.client.get("/v1/jobs", headers=auth(api.alice))
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": INTERNAL_ERROR_MESSAGE}
    }
    assert "secret internals" in caplog.text


def test_openapi_documents_every_error_response(api: Api) -> None:
    assert api.client.get("/docs").status_code == 200
    schema = api.client.get("/openapi.json").json()
    error_ref = "#/components/schemas/ErrorBody"
    for path, operations in schema["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            for status in ("401", "422", "429", "500", "503"):
                response = operation["responses"][status]
                content = response["content"]["application/json"]["schema"]
                assert content["$ref"] == error_ref, (method, path, status)


def test_creating_the_app_connects_to_nothing() -> None:
    """Clients are built by the lifespan, not when the app is made."""
    settings = Settings(REDIS_URL="redis://127.0.0.1:1/0", BROKER_URL="amqp://127.0.0.1:1/")
    assert create_app(settings).title == "Subtone"


def test_redis_out_of_reach_is_503(api: Api) -> None:
    """A status store that cannot be reached is a retryable 503, not a 500."""
    nowhere = Settings(REDIS_URL="redis://127.0.0.1:1/0")
    unreachable = build_redis(nowhere)
    deps = dataclasses.replace(api.deps, redis=unreachable, aredis=build_async_redis(nowhere))
    server = ServerThread(create_app(api.settings, deps=deps))
    server.start()
    try:
        response = httpx.get(f"{server.url}/v1/jobs", headers=auth(api.alice))
        readiness = httpx.get(f"{server.url}/readyz").json()
    finally:
        server.stop()
        unreachable.close()
    assert response.status_code == 503
    assert error_code(response) == "status_store_unavailable"
    assert readiness["checks"]["redis"].startswith("unavailable")


def test_storage_down_is_a_503_saying_so_and_nothing_is_recorded(make_api: ApiFactory) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = make_api(store=S3Store(f"http://127.0.0.1:{port}", "k", "s", "subtone"))
    body = {"name": "cover.wav", "size": 10 * 1024 * 1024, "sha256": "ab" * 32}
    response = api.client.post("/v1/uploads", json=body, headers=auth(api.alice))
    assert response.status_code == 503
    assert error_code(response) == "storage_unavailable"
    assert "storage" in response.json()["error"]["message"].lower()
    assert api.client.get("/v1/uploads", headers=auth(api.alice)).status_code in (200, 405)
    ready = api.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["storage"].startswith("unavailable")


def test_redis_down_is_a_503_not_a_stack_trace(make_api: ApiFactory) -> None:
    port = _closed_port()
    api = make_api(
        redis=redis.Redis(port=port, socket_connect_timeout=1),
        aredis=AsyncRedis(port=port, socket_connect_timeout=1),
    )
    response = api.client.get("/v1/jobs", headers=auth(api.alice))
    assert response.status_code == 503, response.text
    assert error_code(response) == "status_store_unavailable"
    assert "Traceback" not in response.text


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_405_allows_every_method_of_the_path(api: Api) -> None:
    response = api.client.options("/v1/uploads/up_doesnotexist00", headers=auth(api.alice))
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "DELETE"}
