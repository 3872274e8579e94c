"""Bytes on the wire: what this client sent and received over HTTP, for ``subtone --stats``.

:class:`CountingTransport` wraps httpx's transport and adds up each request's and response's
start line, headers and body as they cross it (bodies as sent and as read: a response that
is not read is not counted). Where the same transport serves the API and storage (the
client's uploads and downloads), the totals are everything the client moved.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx

__all__ = ["CountingTransport", "Traffic"]


class Traffic:
    """Thread-safe totals of bytes sent and received."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent_bytes = 0
        self.received_bytes = 0

    def add(self, *, sent: int = 0, received: int = 0) -> None:
        with self._lock:
            self.sent_bytes += sent
            self.received_bytes += received

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {"sent_bytes": self.sent_bytes, "received_bytes": self.received_bytes}


def _head_bytes(first_line: str, headers: httpx.Headers) -> int:
    return len(first_line) + 2 + sum(len(k) + len(v) + 4 for k, v in headers.raw) + 2


class _CountedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, traffic: Traffic) -> None:
        self._inner = inner
        self._traffic = traffic

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._traffic.add(received=len(chunk))
            yield chunk

    def close(self) -> None:
        self._inner.close()


class CountingTransport(httpx.BaseTransport):
    """``inner`` (httpx's own by default), counting every byte into ``traffic``."""

    def __init__(self, traffic: Traffic, inner: httpx.BaseTransport | None = None) -> None:
        self.traffic = traffic
        self._inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        line = f"{request.method} {request.url.raw_path.decode()} HTTP/1.1"
        body = int(request.headers.get("content-length", "0") or 0)
        self.traffic.add(sent=_head_bytes(line, request.headers) + body)
        response = self._inner.handle_request(request)
        status = f"HTTP/1.1 {response.status_code} {response.reason_phrase}"
        self.traffic.add(received=_head_bytes(status, response.headers))
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _CountedStream(response.stream, self.traffic)
        return response

    def close(self) -> None:
        self._inner.close()
