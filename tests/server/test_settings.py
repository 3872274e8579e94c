"""The settings' own checks."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from server.settings import Environment, Settings, StorageBackend

PRODUCTION = {"ENV": Environment.PRODUCTION, "SIGNING_SECRET": SecretStr("s" * 64)}


@pytest.mark.parametrize("env", [{}, PRODUCTION])
def test_s3_without_keys_takes_the_role(env: dict[str, object]) -> None:
    settings = Settings(STORAGE_BACKEND=StorageBackend.S3, **env)  # type: ignore[arg-type]
    assert settings.S3_ACCESS_KEY == ""
    assert settings.S3_SECRET_KEY.get_secret_value() == ""


def test_s3_with_both_keys() -> None:
    settings = Settings(
        STORAGE_BACKEND=StorageBackend.S3,
        S3_ACCESS_KEY="subtone",
        S3_SECRET_KEY=SecretStr("key"),
        **PRODUCTION,  # type: ignore[arg-type]
    )
    assert settings.S3_ACCESS_KEY == "subtone"


@pytest.mark.parametrize(
    "keys",
    [{"S3_ACCESS_KEY": "subtone"}, {"S3_SECRET_KEY": SecretStr("key")}],
    ids=["access-key-only", "secret-key-only"],
)
@pytest.mark.parametrize("env", [{}, PRODUCTION], ids=["development", "production"])
def test_s3_with_one_key_is_refused(keys: dict[str, object], env: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="SUBTONE_S3_ACCESS_KEY and SUBTONE_S3_SECRET_KEY go"):
        Settings(STORAGE_BACKEND=StorageBackend.S3, **keys, **env)  # type: ignore[arg-type]


def test_the_local_store_needs_no_keys() -> None:
    assert Settings(S3_ACCESS_KEY="left-over").STORAGE_BACKEND is StorageBackend.LOCAL
