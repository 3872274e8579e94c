"""CI only (scripts/compose-check.sh): this token's jobs, read from the API.

The check's questions about jobs, asked of ``GET /v1/jobs`` and ``GET /v1/jobs/{id}`` with
``SUBTONE_URL`` and ``SUBTONE_TOKEN`` (as the CLI reads them), with nothing but the standard
library. An answer the API did not give is an error (exit 1, the reason on stderr), never an
empty list or a zero::

    jobs.py ids                     every job id, newest first
    jobs.py count STATE             how many jobs are in STATE
    jobs.py show ID                 "STATE attempts=N": the job's state and how many runs started
    jobs.py new KNOWN               "ID STATE attempts=N" of each job not in the file KNOWN
    jobs.py wait-running KNOWN S    the id of a job not in the file KNOWN (one id a line), once
                                    it is running; exit 1 if it finishes first or S seconds pass
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.25
TIMEOUT_SECONDS = 10
FINISHED = {"succeeded", "failed", "cancelled"}


class ApiFailed(Exception):
    pass


def _get(path: str) -> Any:
    url = os.environ["SUBTONE_URL"].rstrip("/") + path
    request = urllib.request.Request(  # noqa: S310 - the check's own http:// URL
        url, headers={"Authorization": f"Bearer {os.environ['SUBTONE_TOKEN']}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return json.load(response)
    except urllib.error.HTTPError as e:
        raise ApiFailed(f"GET {path}: HTTP {e.code} {e.read()[:300]!r}") from e
    except (OSError, ValueError) as e:
        raise ApiFailed(f"GET {path}: {e}") from e


def _jobs() -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = _get("/v1/jobs")["jobs"]
    return jobs


def _show(job: dict[str, Any]) -> str:
    return f"{job['state']} attempts={job['attempts']}"


def wait_running(known_file: str, seconds: float) -> str:
    known = set(Path(known_file).read_text().split())
    deadline = time.monotonic() + seconds
    while True:
        new = [job for job in _jobs() if job["id"] not in known]
        if new:
            job = new[-1]  # the oldest new one
            if job["state"] == "running":
                return str(job["id"])
            if job["state"] in FINISHED:
                raise ApiFailed(f"job {job['id']} was {_show(job)} before it was seen running")
        if time.monotonic() > deadline:
            states = ", ".join(f"{job['id']} {_show(job)}" for job in new) or "no new job"
            raise ApiFailed(f"no job running after {seconds:.0f} s ({states})")
        time.sleep(POLL_SECONDS)


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    try:
        if command == "ids" and not args:
            print("\n".join(job["id"] for job in _jobs()))
        elif command == "count" and len(args) == 1:
            print(sum(job["state"] == args[0] for job in _jobs()))
        elif command == "new" and len(args) == 1:
            known = set(Path(args[0]).read_text().split())
            for job in _jobs():
                if job["id"] not in known:
                    print(job["id"], _show(job))
        elif command == "show" and len(args) == 1:
            print(_show(_get(f"/v1/jobs/{args[0]}")))
        elif command == "wait-running" and len(args) == 2:
            print(wait_running(args[0], float(args[1])))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except ApiFailed as e:
        print(f"jobs.py {command}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
