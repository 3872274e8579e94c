"""The network between the client and storage drops and stalls in the middle of an upload
(a TCP proxy of the test's own on loopback, in front of the local store)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from desktop.core.api import ApiClient
from desktop.core.uploader import Uploader, UploadResult
from server.integrations.localstore import LocalStore
from tests.e2e.faults.services import faulty_proxy
from tests.e2e.faults.support import make_cover, wait_until
from tests.stack import distinct_ports, rabbit_vhost, running_stack

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
PART = 5 * MiB
URL_TTL_SECONDS = 3


def stored_parts(root) -> int:
    """Parts stored (each has its sidecar once stored, in place or in a file of its own)."""
    return sum(1 for p in (root / ".multipart").glob("*/*.json") if p.stem.isdigit())


def test_an_upload_rides_out_a_dropped_and_a_stalled_network(tmp_path, caplog):
    ports = distinct_ports()
    with (
        faulty_proxy(ports.localstore) as proxy,
        rabbit_vhost() as broker,
        running_stack(
            tmp_path / "stack",
            broker,
            ports=ports,
            LOCALSTORE_PUBLIC_URL=proxy.url,  # every pre-signed URL goes through the proxy
            PART_SIZE_BYTES=PART,
            PRESIGN_TTL_SECONDS=URL_TTL_SECONDS,
        ) as stack,
    ):
        cover = make_cover(tmp_path / "cover.wav", 60)  # 12 parts
        size = cover.stat().st_size
        root = stack.settings.localstore_root
        outcome: list[UploadResult | BaseException] = []

        def upload() -> None:
            with (
                ApiClient(stack.url, stack.token) as client,
                Uploader(client, parallel_parts=2) as uploader,
            ):
                try:
                    outcome.append(uploader.upload_file(cover))
                except BaseException as e:
                    outcome.append(e)

        with caplog.at_level(logging.DEBUG, logger="desktop.core.uploader"):
            thread = threading.Thread(target=upload)
            thread.start()
            wait_until(lambda: stored_parts(root) >= 3, "three parts stored")
            proxy.cut(refuse_seconds=1.0)  # every connection reset, new ones refused a while
            wait_until(lambda: stored_parts(root) >= 6, "the upload to go on after the drop")
            # Then the network stalls: the parts in flight are reset, and their retries
            # connect but carry nothing until their pre-signed URLs have expired on the way.
            proxy.stall()
            proxy.cut()
            time.sleep(URL_TTL_SECONDS + 2)  # the fault itself: a stall longer than the TTL
            proxy.resume()
            thread.join(120)

        (result,) = outcome
        assert isinstance(result, UploadResult), result
        store = LocalStore(root, stack.supervisor.signing_secret())
        uploaded = store.head(_object_key(stack, result.object.id))
        assert uploaded.size == size
        assert b"".join(store.read(uploaded.key)) == cover.read_bytes()
        # Only the parts in flight when the network failed were sent again (two at a time,
        # three times: the drop, the stall's reset, the expired URLs), never the ones storage
        # already held.
        assert size <= proxy.bytes_up < size + 6 * PART + MiB, (proxy.bytes_up, size)
        failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
        assert any("did not reach storage" in m for m in failures), failures
        assert any("expired" in m for m in failures), failures  # a fresh URL was asked for


def _object_key(stack, object_id: str) -> str:
    from server.uploads.repository import UploadRepository

    found = UploadRepository(stack.redis, prefix=stack.settings.REDIS_PREFIX,
                             ttl_seconds=60).find_object(object_id)  # fmt: skip
    assert found is not None
    return found.key
