"""How long storage keeps objects: MinIO (compose/minio/init.sh) and S3 (bucket-lifecycle.json)
follow the server's SUBTONE_UPLOAD_TTL_SECONDS, the setting that governs objects.

The server keeps an upload resumable, and finished objects (covers, secrets, results), for
UPLOAD_TTL_SECONDS; JOB_TTL_SECONDS is how long Redis keeps job *records*, not objects.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from server.settings import Settings
from tests.deploy.conftest import COMPOSE_DIR, COMPOSE_FILE, K8S_DIR, compose_config

DAY_SECONDS = 86400
INIT_SCRIPT = COMPOSE_DIR / "minio" / "init.sh"
S3_LIFECYCLE = K8S_DIR / "components" / "s3" / "bucket-lifecycle.json"
S3_BUCKET = "subtone-example"
# A stand-in for MinIO's client: it logs its arguments; `ilm rule ls` fails (no rules yet)
# unless MC_HAS_RULES is set.
FAKE_MC = """#!/bin/sh
printf '%s\\n' "$*" >>"$MC_LOG"
case "$*" in
  "ilm rule ls "*) [ -n "${MC_HAS_RULES:-}" ] ;;
  *) exit 0 ;;
esac
"""


def expiry_days(ttl_seconds: int) -> int:
    """Whole days that keep an object at least ``ttl_seconds`` (ILM and S3 count days)."""
    return math.ceil(ttl_seconds / DAY_SECONDS)


def run_init(tmp_path: Path, ttl_seconds: int, *, has_rules: bool = False) -> list[str]:
    """Run compose/minio/init.sh against the fake mc; the mc commands it ran, in order."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    mc = bin_dir / "mc"
    mc.write_text(FAKE_MC)
    mc.chmod(0o755)
    log = tmp_path / "mc.log"
    log.unlink(missing_ok=True)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "MC_LOG": str(log),
        "TMPDIR": str(tmp_path),
        "MINIO_ROOT_USER": "root",
        "MINIO_ROOT_PASSWORD": "root-password",
        "SUBTONE_S3_BUCKET": "subtone",
        "SUBTONE_S3_ACCESS_KEY": "subtone",
        "SUBTONE_S3_SECRET_KEY": "secret-key",
        "SUBTONE_UPLOAD_TTL_SECONDS": str(ttl_seconds),
    }
    if has_rules:
        env["MC_HAS_RULES"] = "1"
    result = subprocess.run(
        ["sh", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return log.read_text().splitlines()


def ilm_commands(commands: list[str]) -> list[str]:
    return [c for c in commands if c.startswith("ilm rule ") and not c.startswith("ilm rule ls")]


def test_minio_init_gets_the_apis_object_lifetime() -> None:
    services: dict[str, Any] = compose_config(COMPOSE_FILE)["services"]
    ttl = services["api"]["environment"]["SUBTONE_UPLOAD_TTL_SECONDS"]
    assert services["minio-init"]["environment"]["SUBTONE_UPLOAD_TTL_SECONDS"] == ttl
    assert services["worker"]["environment"]["SUBTONE_UPLOAD_TTL_SECONDS"] == ttl


@pytest.mark.parametrize(
    "ttl_seconds", [Settings().UPLOAD_TTL_SECONDS, DAY_SECONDS, DAY_SECONDS + 1, 3600]
)
def test_minio_objects_expire_once_the_server_no_longer_keeps_them(
    ttl_seconds: int, tmp_path: Path
) -> None:
    days = expiry_days(ttl_seconds)
    assert ilm_commands(run_init(tmp_path, ttl_seconds)) == [
        f"ilm rule add --expire-days {days} local/subtone"
    ]
    assert days * DAY_SECONDS >= ttl_seconds > (days - 1) * DAY_SECONDS


def test_minio_init_run_again_replaces_the_rule_instead_of_adding_one(tmp_path: Path) -> None:
    ttl = Settings().UPLOAD_TTL_SECONDS
    assert ilm_commands(run_init(tmp_path, ttl, has_rules=True)) == [
        "ilm rule rm --all --force local/subtone",
        f"ilm rule add --expire-days {expiry_days(ttl)} local/subtone",
    ]


def test_minio_init_refuses_to_run_without_the_lifetime(tmp_path: Path) -> None:
    result = subprocess.run(
        ["sh", str(INIT_SCRIPT)],
        env={"PATH": os.environ["PATH"], "SUBTONE_S3_BUCKET": "b", "SUBTONE_S3_ACCESS_KEY": "a"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0


def test_s3_objects_expire_once_the_server_no_longer_keeps_them() -> None:
    rules = {r["ID"]: r for r in json.loads(S3_LIFECYCLE.read_text())["Rules"]}
    ttl = Settings().UPLOAD_TTL_SECONDS
    expire = rules["subtone-expire-objects"]
    assert expire["Status"] == "Enabled" and expire["Filter"] == {}
    assert expire["Expiration"]["Days"] == expiry_days(ttl)
    abort = rules["subtone-abort-stale-uploads"]
    assert abort["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] * DAY_SECONDS >= ttl


def test_s3_accepts_the_lifecycle_configuration() -> None:
    """boto3 checks it against S3's API model, moto applies it and hands it back."""
    lifecycle = json.loads(S3_LIFECYCLE.read_text())
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=S3_BUCKET)
        s3.put_bucket_lifecycle_configuration(Bucket=S3_BUCKET, LifecycleConfiguration=lifecycle)
        stored = s3.get_bucket_lifecycle_configuration(Bucket=S3_BUCKET)["Rules"]
    assert sorted(stored, key=lambda r: r["ID"]) == sorted(
        lifecycle["Rules"], key=lambda r: r["ID"]
    )
