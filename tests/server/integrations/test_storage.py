"""The shared pieces of the storage interface: keys, part lists, ETags, the streaming reader."""

from __future__ import annotations

import io

import pytest

import server.integrations.storage as storage
from server.integrations.storage import (
    ChunkIterator,
    InvalidKey,
    InvalidPart,
    ObjectReader,
    content_disposition,
    normalize_etag,
    validate_key,
    validate_part_list,
)


def test_exported_names_exist() -> None:
    for name in storage.__all__:
        assert hasattr(storage, name), name


def test_limits_are_s3s() -> None:
    assert storage.MIN_PART_SIZE == 5 * 1024**2
    assert storage.MAX_PARTS == 10_000
    assert storage.MAX_OBJECT_SIZE == 5 * 1024**4


def test_error_codes_and_statuses() -> None:
    assert (storage.StorageError("x").code, storage.StorageError("x").status) == (
        "storage_error",
        502,
    )
    unavailable = storage.StorageUnavailable("x")
    assert (unavailable.code, unavailable.status) == ("storage_unavailable", 503)
    assert isinstance(unavailable, storage.StorageError)
    assert (storage.ObjectNotFound("x").code, storage.ObjectNotFound("x").status) == (
        "not_found",
        404,
    )
    assert (InvalidPart("x").code, InvalidPart("x").status) == ("invalid_part", 400)
    assert isinstance(storage.UploadNotFound("x"), storage.ObjectNotFound)


def test_server_keys_are_valid() -> None:
    assert validate_key("t/acme/uploads/0123/cover.wav") == "t/acme/uploads/0123/cover.wav"


@pytest.mark.parametrize(
    "key",
    ["", "../etc/passwd", "a/../../b", "/abs/key", "a\\b", "a\x00b", "a//b", "a/", ".multipart/x",
     "a/./b", "a\nb", "x" * 1025],
)  # fmt: skip
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidKey):
        validate_key(key)


def test_part_list_must_ascend_and_not_be_empty() -> None:
    assert validate_part_list([(1, '"a"'), (3, "b")]) == [(1, "a"), (3, "b")]
    for bad in ([], [(2, "a"), (1, "b")], [(1, "a"), (1, "a")], [(0, "a")], [(10_001, "a")]):
        with pytest.raises(InvalidPart):
            validate_part_list(bad)


def test_etags_are_unquoted() -> None:
    assert normalize_etag('"abc"') == "abc"
    assert normalize_etag('W/"abc-2"') == "abc-2"
    assert normalize_etag("abc") == "abc"


def test_content_disposition_is_safe() -> None:
    assert content_disposition("cover.wav") == 'attachment; filename="cover.wav"'
    header = content_disposition('../é"\r\nx.wav')
    assert "\r" not in header and "\n" not in header and "/" not in header.split("''")[0]
    assert header.startswith('attachment; filename="..')
    assert "filename*=UTF-8''..%C3%A9x.wav" in header


def _reader(data: bytes, chunk: int = 7) -> tuple[ObjectReader, list[int]]:
    opened: list[int] = []

    def opener(position: int) -> ChunkIterator:
        opened.append(position)
        pieces = (data[i : i + chunk] for i in range(position, len(data), chunk))
        return ChunkIterator(pieces, lambda: None)

    return ObjectReader(opener, len(data)), opened


def test_object_reader_reads_full_requests_across_chunks() -> None:
    data = bytes(range(100))
    reader, opened = _reader(data)
    assert reader.read(10) == data[:10]
    assert reader.read(25) == data[10:35]
    assert reader.read() == data[35:]
    assert reader.read(5) == b""
    assert opened == [0]


def test_object_reader_seeks_by_reopening() -> None:
    data = bytes(range(100))
    reader, opened = _reader(data)
    reader.seek(90)
    assert reader.read(4) == data[90:94]
    reader.seek(-20, io.SEEK_END)
    assert reader.tell() == 80
    assert reader.read(3) == data[80:83]
    reader.seek(2, io.SEEK_CUR)  # inside the buffered chunk: no new request
    assert reader.read(1) == data[85:86]
    assert opened == [90, 80]  # lazily: nothing opened before the first read
    with io.BufferedReader(reader) as buffered:
        buffered.seek(0)
        assert buffered.read() == data


def test_chunk_iterator_closes_once_even_unstarted() -> None:
    closed: list[bool] = []
    chunks = ChunkIterator(iter([b"a", b"b"]), lambda: closed.append(True))
    chunks.close()
    chunks.close()
    assert closed == [True]
    assert list(chunks) == []

    with ChunkIterator(iter([b"a"]), lambda: closed.append(True)) as exhausted:
        assert list(exhausted) == [b"a"]
    assert closed == [True, True]
