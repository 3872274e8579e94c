"""Storage refusing writes: the local store's disk fills up (a small tmpfs of the test's own)
while a job writes its result, and while a client uploads."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from desktop.core.api import ApiClient
from desktop.core.uploader import Uploader
from subtone.errors import SubtoneError
from subtone.protocol import JobState
from tests.e2e.faults.support import finished, make_cover, open_uploads, submit_embed, submit_plane
from tests.planes import random_plane
from tests.stack import rabbit_vhost, running_stack

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
DISK_MIB = 32


@pytest.fixture
def small_disk(tmp_path: Path):
    mount = tmp_path / "objects"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MIB}m", "tmpfs", str(mount)],
        capture_output=True, text=True,
    )  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip()}): needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=False)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_a_full_disk_fails_the_job_and_the_upload_plainly_and_publishes_nothing(
    tmp_path, small_disk
):
    with (
        rabbit_vhost() as broker,
        running_stack(
            tmp_path / "stack", broker, LOCALSTORE_ROOT=small_disk, PART_SIZE_BYTES=5 * MiB
        ) as stack,
    ):
        # The plane (16 MB, its parts written in place) and the payload (8 MB) fit on the
        # disk; with the result they do not: a payload this large needs k <= 2, where a
        # quarter or more of the samples flip, so the patch is a bitmap as large as the plane
        # (coding the gaps between flips pays only where they are sparse).
        lsb = random_plane(tmp_path / "cover.plane", 128_000_000)
        submitted = submit_plane(stack, lsb, secret=os.urandom(8_000_000))
        done = finished(stack, submitted.job_id)
        assert done.state is JobState.FAILED, done
        assert done.error is not None and done.error.code == "storage_full"
        assert "Storage is full" in done.error.message
        assert str(small_disk) not in done.error.message  # no server paths to the user
        assert not [p for p in files_under(small_disk) if submitted.job_id in str(p)]
        assert open_uploads(stack) == []  # the result's parts were aborted, space given back
        assert not [p for p in files_under(small_disk) if p.name.endswith(".tmp")]

        # A client uploading into the full disk is told so, and is not left retrying.
        filler = small_disk / "filler"
        free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
        filler.write_bytes(b"\0" * max(0, free - MiB))
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(6 * MiB))
        with (
            ApiClient(stack.url, stack.token) as client,
            Uploader(client) as uploader,
            pytest.raises(SubtoneError) as refused,
        ):
            uploader.upload_file(big)
        assert refused.value.code == "storage_full", refused.value
        assert "Storage is full" in refused.value.message

        # Space back: the stack serves again.
        filler.unlink()
        small = submit_embed(stack, make_cover(tmp_path / "small.wav", 3, seed=2))
        assert finished(stack, small.job_id).state is JobState.SUCCEEDED
