"""schemathesis's own runner with every check on, against the app (issue 12.6).

All phases (examples, coverage, fuzzing, stateful) and every check, ``unsupported_method``,
``allow_header_conformance``, ``use_after_free`` and ``positive_data_acceptance`` included:
zero findings. ``schemathesis.toml`` names, operation by operation, the documented 4xx a
schema-valid request may still get (limits and state the schema cannot state).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CONFIG = Path(__file__).resolve().with_name("schemathesis.toml")
EXAMPLES = int(os.environ.get("SUBTONE_SCHEMATHESIS_EXAMPLES", "15"))


def test_every_check_finds_nothing(make_api: Any, tmp_path: Path) -> None:
    api = make_api()
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(api.app.openapi()))
    command = [
        str(SCHEMATHESIS), "--config-file", str(CONFIG),
        "run", str(spec), "--url", str(api.client.base_url),
        "--checks", "all", "--max-examples", str(EXAMPLES), "--workers", "1",
        "--header", f"Authorization: Bearer {api.alice}", "--no-color",
        "--seed", "1",
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
