"""The soak (``bench/soak.py``) for three minutes (the issue's CI run) with two clients: while
the worker, Triton, the stack's own Redis (AOF) and its own RabbitMQ node are SIGKILLed in
turn, nothing is lost, nothing is stuck, every result decodes exactly, every program comes
back with no command typed, and ``down`` leaves no process of the stack (no beam, epmd or
redis-server). The machine's RabbitMQ is never touched.

Shorter or longer: ``SUBTONE_SOAK_MINUTES=1 pytest tests/e2e/soak``, or
``python bench/soak.py --minutes 60`` (8 clients).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

from server.standalone.rabbitnode import rabbitmq_scripts

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("redis-server") is None
        or rabbitmq_scripts() is None
        or shutil.which("epmd") is None,
        reason="needs redis-server and RabbitMQ (its scripts and epmd) on this machine",
    ),
]

SOAK = Path(__file__).resolve().parents[3] / "bench" / "soak.py"
MINUTES = float(os.environ.get("SUBTONE_SOAK_MINUTES", "3"))
CLIENTS = int(os.environ.get("SUBTONE_SOAK_CLIENTS", "2"))
KILLED = {"worker", "triton", "redis", "rabbitmq"}


def _load_soak():
    spec = importlib.util.spec_from_file_location("bench_soak", SOAK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(int(MINUTES * 60) + 600)
def test_nothing_is_lost_or_stuck_while_the_stack_is_killed(tmp_path: Path) -> None:
    soak = _load_soak()
    result = soak.soak(
        MINUTES, CLIENTS, own_rabbitmq=True, op_timeout=120.0, seed=12, out=tmp_path / "soak.json"
    )
    assert result["lost"] == []
    assert result["stuck"] == []
    assert result["server_jobs_unfinished"] == []
    assert result["server_jobs_failed_without_code"] == []
    assert result["decoded_wrong"] == 0
    assert result["encoded"] > 0 and result["decoded_exact"] > 0
    assert set(result["chaos_targets"]) == KILLED
    if MINUTES >= 3:  # time for a round of kills: each program at least once
        assert set(result["kills_by_program"]) == KILLED, result["kills_by_program"]
    assert result["kills"], "the chaos loop killed nothing"
    assert result["kills_not_back"] == []
    assert result["programs_down"] == [] and result["api_ready"]
    assert result["left_running"] == []
    assert result["ok"]
