"""The multipart writer over the local folder store: whole objects or nothing."""

from __future__ import annotations

import hashlib
import os

import pytest

from server.integrations.storage import MAX_PARTS, MiB, StorageUnavailable
from server.jobs.output import MultipartWriter, OutputClosed, part_size_for

KEY = "t/alice/results/job_x/stego.wav"
PART = 64 * 1024


def test_writes_become_parts_and_complete_publishes_the_object(store):
    data = os.urandom(5 * PART + 123)
    with MultipartWriter(store, KEY, content_type="audio/wav", part_size=PART) as out:
        for start in range(0, len(data), 10_000):
            out.write(data[start : start + 10_000])
        assert out.parts == 5  # the full parts went out while writing
        info = out.complete()

    assert info.size == out.size == len(data)
    assert out.sha256 == hashlib.sha256(data).hexdigest()
    assert b"".join(store.read(KEY)) == data
    assert store.head(KEY).content_type == "audio/wav"
    assert store.list_multipart_uploads("t/") == []


def test_an_error_inside_aborts_and_publishes_nothing(store):
    with (
        pytest.raises(RuntimeError),
        MultipartWriter(store, KEY, content_type="x", part_size=PART) as out,
    ):
        out.write(os.urandom(3 * PART))
        raise RuntimeError("the codec failed")

    assert store.list_multipart_uploads("t/") == []
    assert not (store.root / KEY).exists()


def test_leaving_without_completing_aborts(store):
    with MultipartWriter(store, KEY, content_type="x", part_size=PART) as out:
        out.write(b"half a result")

    assert store.list_multipart_uploads("t/") == []
    with pytest.raises(OutputClosed):
        out.write(b"more")


def test_a_failed_part_upload_surfaces_on_a_later_write_and_aborts(store):
    class Flaky:
        def __getattr__(self, name):
            return getattr(store, name)

        def upload_part(self, *args):
            raise StorageUnavailable("gone (test)")

    with (
        pytest.raises(StorageUnavailable),
        MultipartWriter(Flaky(), KEY, content_type="x", part_size=PART) as out,
    ):
        out.write(os.urandom(3 * PART))

    assert store.list_multipart_uploads("t/") == []


def test_an_empty_output_is_an_empty_object(store):
    with MultipartWriter(store, KEY, content_type="x", part_size=PART) as out:
        assert out.complete().size == 0
    assert b"".join(store.read(KEY)) == b""


def test_a_result_smaller_than_a_part_is_one_put_and_no_multipart_upload(store):
    """A short secret's patch or payload: no upload is made, so none is ever left over."""
    calls: list[str] = []

    class Counting:
        def __getattr__(self, name):
            calls.append(name)
            return getattr(store, name)

    data = os.urandom(PART - 1)
    with MultipartWriter(Counting(), KEY, content_type="x", part_size=PART) as out:
        out.write(data)
        assert store.list_multipart_uploads("t/") == []
        info = out.complete()

    assert calls == ["put_bytes"]
    assert info.size == len(data) and b"".join(store.read(KEY)) == data
    assert store.head(KEY).sha256 == out.sha256


def test_leaving_a_small_result_unfinished_stores_nothing(store):
    with MultipartWriter(store, KEY, content_type="x", part_size=PART) as out:
        out.write(b"a few bytes")
    assert not (store.root / KEY).exists()
    assert store.list_multipart_uploads("t/") == []


def test_the_part_size_grows_only_when_parts_would_run_out():
    assert part_size_for(100 * MiB, 16 * MiB) == 16 * MiB
    huge = 16 * MiB * MAX_PARTS * 2
    assert part_size_for(huge, 16 * MiB) * MAX_PARTS >= huge
