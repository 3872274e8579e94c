"""Upload sessions on disk: found again by a new store on the same file."""

from __future__ import annotations

from pathlib import Path

from desktop.core.sessions import FileIdentity, SessionStore, UploadSession

FILE = FileIdentity(path="/data/cover.wav", size=10_000, mtime_ns=123, sha256="a" * 64)
SERVER = "http://api.test"


def session(upload_id: str = "up_000000000001", file: FileIdentity = FILE) -> UploadSession:
    return UploadSession(
        upload_id=upload_id, server=SERVER, file=file, part_size=4096, part_count=3
    )


def test_a_saved_session_is_found_by_a_new_store(tmp_path: Path):
    path = tmp_path / "deep" / "state" / "uploads.sqlite3"
    SessionStore(path).save(session())

    found = SessionStore(path).find(SERVER, FILE)

    assert found is not None and found.upload_id == "up_000000000001"
    assert found.part_count == 3 and found.created_at > 0
    assert (path.parent.stat().st_mode & 0o777) == 0o700


def test_only_the_same_file_on_the_same_server_matches(tmp_path: Path):
    store = SessionStore(tmp_path / "s.sqlite3")
    store.save(session())
    assert store.find("http://other.test", FILE) is None
    for change in ({"size": 1}, {"mtime_ns": 1}, {"sha256": "b" * 64}, {"path": "/x"}):
        other = FileIdentity(**(FILE.__dict__ | change))
        assert store.find(SERVER, other) is None


def test_parts_and_completion_are_recorded(tmp_path: Path):
    store = SessionStore(tmp_path / "s.sqlite3")
    store.save(session())
    store.record_part("up_000000000001", 2, '"e2"')
    store.record_part("up_000000000001", 1, '"e1"')
    store.mark_completed("up_000000000001", "obj_000000000009")

    found = store.get("up_000000000001")

    assert found is not None
    assert found.etags == {1: '"e1"', 2: '"e2"'}
    assert found.object_id == "obj_000000000009"


def test_forget_and_prune(tmp_path: Path):
    store = SessionStore(tmp_path / "s.sqlite3")
    store.save(session("up_000000000001"))
    store.save(session("up_000000000002"))
    store.forget("up_000000000001")
    assert [s.upload_id for s in store.all()] == ["up_000000000002"]
    assert store.prune(older_than_seconds=-1) == 1
    assert store.all() == []


def test_old_sessions_are_dropped_when_a_store_opens(tmp_path: Path):
    SessionStore(tmp_path / "s.sqlite3").save(session())
    assert SessionStore(tmp_path / "s.sqlite3", max_age_seconds=3600).all() != []
    assert SessionStore(tmp_path / "s.sqlite3", max_age_seconds=-1).all() == []
