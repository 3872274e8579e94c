"""The standalone supervisor's decisions, without starting the stack (the integration tests
start it for real)."""

from __future__ import annotations

import shutil

import pytest

from server.settings import Settings
from server.standalone.broker import ensure_consumer_timeout, rabbitmq_consumer_timeout_ms
from server.standalone.processes import run_or_explain
from server.standalone.programs import redis_program
from server.standalone.stack import Ports, StandaloneError, State
from server.standalone.supervisor import Supervisor


def test_ports_come_from_the_settings_then_the_options(tmp_path):
    settings = Settings(
        DATA_DIR=tmp_path, API_PORT=9100, LOCALSTORE_PORT=9102, TRITON_URL="127.0.0.1:9101"
    )
    assert Ports.from_settings(settings) == Ports(
        api=9100, triton_grpc=9101, localstore=9102, triton_http=8603, triton_metrics=8604
    )
    assert Ports.from_settings(settings, api=9200, triton_http=9203).api == 9200
    assert Ports.from_settings(settings, api=9200, triton_http=9203).triton_http == 9203


def test_down_and_status_find_the_ports_up_used(tmp_path):
    settings = Settings(DATA_DIR=tmp_path)
    used = Ports(api=9300, triton_grpc=9301, localstore=9302, triton_http=9303, triton_metrics=9304)
    home = tmp_path / "standalone"
    home.mkdir()
    State(ports=used.__dict__).save(home / "state.json")

    assert Supervisor(settings).ports == used
    assert Supervisor(settings).api_url.endswith(":9300")


def test_a_failing_system_command_is_explained_not_raised(tmp_path):
    with pytest.raises(StandaloneError) as e:
        run_or_explain(["sh", "-c", "echo 'no permission to bind' >&2; exit 3"], "start Redis")
    assert e.value.code == "service_start_failed"
    assert "Could not start Redis" in e.value.message
    assert "exited with 3" in e.value.message
    assert "no permission to bind" in e.value.message


def test_a_missing_redis_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server anywhere
    settings = Settings(DATA_DIR=tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
    with pytest.raises(StandaloneError) as e:
        redis_program(settings, Supervisor(settings).layout)
    assert e.value.code == "redis_missing"
    assert "apt-get install redis-server" in e.value.message


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="no rabbitmqctl here")
def test_a_consumer_timeout_below_the_job_limit_is_reported(tmp_path):
    current = rabbitmq_consumer_timeout_ms()
    assert current is not None, "the machine's RabbitMQ answers rabbitmqctl"
    limit = current // 1000  # a job limit the broker's timeout does not cover
    settings = Settings(
        DATA_DIR=tmp_path, JOB_TIME_LIMIT_SECONDS=limit, CONSUMER_TIMEOUT_SECONDS=limit + 60
    )
    said: list[str] = []
    ensure_consumer_timeout(settings, said.append, owned=False)
    assert len(said) == 1 and "consumer_timeout" in said[0] and "rabbitmq.conf" in said[0]

    covered = Settings(
        DATA_DIR=tmp_path, JOB_TIME_LIMIT_SECONDS=60, CONSUMER_TIMEOUT_SECONDS=current // 1000
    )
    quiet: list[str] = []
    ensure_consumer_timeout(covered, quiet.append, owned=False)
    assert quiet == []
