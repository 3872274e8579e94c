"""The local store process: PUT a part, GET or HEAD an object, by signed URL only.

It speaks the same pre-signed protocol as S3 as far as a client can tell: the client PUTs a
part's bytes to the URL the API gave it and keeps the ``ETag`` header, or GETs a result with an
optional ``Range``. Errors are the project's JSON ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from server.integrations.localstore import (
    OBJECT_URL_PREFIX,
    Grant,
    InPlacePartWriter,
    LocalStore,
    PartWriter,
)
from server.integrations.storage import (
    ObjectInfo,
    PartTooLarge,
    content_disposition,
)
from subtone.errors import SubtoneError

__all__ = ["RangeNotSatisfiable", "create_app", "parse_range"]

WRITE_BATCH_BYTES = 1 << 20
"""A part's body is written (and hashed) in batches of this size, off the event loop."""
_BYTE_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
"""One range; several (``bytes=0-1,5-6``) do not match and get the whole object."""


class RangeNotSatisfiable(SubtoneError):
    code = "invalid_range"
    status = 416

    def __init__(self, size: int) -> None:
        super().__init__(f"the range is outside the object's {size} bytes")
        self.content_range = f"bytes */{size}"


def create_app(store: LocalStore) -> Starlette:
    """The ASGI app serving ``store``'s signed URLs and ``/healthz``."""

    async def healthz(request: Request) -> Response:
        store.ping()
        return JSONResponse({"status": "ok"})

    async def object_endpoint(request: Request) -> Response:
        key: str = request.path_params["key"]
        grant = store.verify(request.method, key, request.query_params)
        if request.method == "PUT":
            return await _put_part(store, request, key, grant)
        return _get_object(store, request, key, grant.filename)

    async def on_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SubtoneError)
        headers = {}
        if isinstance(exc, RangeNotSatisfiable):
            headers["Content-Range"] = exc.content_range
        return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route(OBJECT_URL_PREFIX + "{key:path}", object_endpoint, methods=["GET", "HEAD", "PUT"]),
    ]
    return Starlette(routes=routes, exception_handlers={SubtoneError: on_error})


async def _put_part(store: LocalStore, request: Request, key: str, grant: Grant) -> Response:
    """Stream the body into the part, refusing more bytes than the URL was signed for (the
    part's planned size) as soon as the declared length or the bytes received show it."""
    limit = store.part_limit(grant.max_bytes)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PartTooLarge(f"this part can hold at most {limit} bytes")
    with store.part_writer(key, grant.upload_id, grant.part_number, max_bytes=limit) as writer:
        await _write_body(writer, request.stream())
        part = writer.commit()
    # Answered once the upload's running digest has passed over the part (when it can): the
    # answer to the last part then comes with the whole object's SHA-256 ready for completion.
    await asyncio.to_thread(store.advance_digest, key, grant.upload_id)
    return Response(status_code=200, headers={"ETag": f'"{part.etag}"'})


async def _write_body(writer: PartWriter | InPlacePartWriter, body: AsyncIterator[bytes]) -> None:
    """Write a request body into a part a batch at a time, in a worker thread: hashing and
    writing release the GIL, so the event loop goes on receiving (this request's next batch,
    other requests' parts) while they run, and parallel parts are written on all cores. One
    batch is in flight at a time, so the part is written in order; leaving (an error, a
    client gone) waits for it, so the writer is never closed under a thread still using it."""
    buffer = bytearray()
    pending: asyncio.Future[None] | None = None
    try:
        async for chunk in body:
            buffer += chunk
            if len(buffer) >= WRITE_BATCH_BYTES:
                if pending is not None:
                    await pending
                batch, buffer = buffer, bytearray()
                pending = asyncio.ensure_future(asyncio.to_thread(writer.write, batch))
        if pending is not None:
            await pending
        if buffer:
            writer.write(buffer)
    finally:
        if pending is not None and not pending.done():
            await asyncio.wait({pending})


def _get_object(store: LocalStore, request: Request, key: str, filename: str) -> Response:
    info = store.head(key)
    headers = _object_headers(info, filename)
    byte_range = parse_range(request.headers.get("range"), info.size)
    status = 200
    start, length = 0, info.size
    if byte_range is not None:
        start, end = byte_range
        length = end - start + 1
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    chunks: Iterator[bytes] = store.read(key, start, length)
    return StreamingResponse(chunks, status_code=status, headers=headers)


def _object_headers(info: ObjectInfo, filename: str) -> dict[str, str]:
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{info.etag}"',
        "Content-Type": info.content_type,
    }
    if filename:
        headers["Content-Disposition"] = content_disposition(filename)
    return headers


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single ``bytes=`` range as inclusive ``(start, end)``; None means the whole object.

    Headers this does not understand (other units, several ranges, bad syntax) are ignored,
    as RFC 9110 allows; a well-formed range outside the object raises
    :class:`RangeNotSatisfiable`.
    """
    found = _BYTE_RANGE.fullmatch(header.strip()) if header else None
    if found is None or found.group(0) == "bytes=-":
        return None
    first, last = found.group(1), found.group(2)
    if not first:  # a suffix: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if end < start and last:
        return None
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, min(end, size - 1)
