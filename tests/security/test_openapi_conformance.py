"""schemathesis against the API's own OpenAPI: no 5xx, and every answer is documented.

Each operation is fuzzed with schema-valid (positive) and schema-invalid (negative) requests,
with a valid token and without one, against the app served by uvicorn on real Redis and the
real local store process. Every schemathesis check but one runs (see :data:`NOT_CHECKED`): no server
error, the status code, content type, headers and body match what the operation documents,
invalid data is refused, a missing token is refused.
``SUBTONE_SCHEMATHESIS_EXAMPLES`` (default 15 per operation, mode and token) runs it longer.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from .helpers import operations

EXAMPLES = int(os.environ.get("SUBTONE_SCHEMATHESIS_EXAMPLES", "15"))
BODY_TOO_LARGE = 413
NOT_CHECKED = [positive_data_acceptance]
"""A schema-valid request may still break a rule the schema cannot state (a size over
``MAX_UPLOAD_BYTES``, the input names of a job kind, ids that exist): its documented 4xx is
checked like every other answer here. ``test_openapi_cli.py`` runs schemathesis's own runner
with every check on, this one included, naming those answers operation by operation in
``schemathesis.toml``."""


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
@pytest.mark.parametrize(("method", "path"), operations())
def test_operation_conforms_to_its_schema(
    make_api: Any, method: str, path: str, mode: GenerationMode, with_token: bool
) -> None:
    api = make_api()
    schema = schemathesis.openapi.from_dict(api.app.openapi())
    operation = schema[path][method]
    raw = operation.definition.raw
    if mode is GenerationMode.NEGATIVE and not (raw.get("parameters") or raw.get("requestBody")):
        pytest.skip("nothing in this request can be made invalid")
    headers = {"Authorization": f"Bearer {api.alice}"} if with_token else {}
    base_url = str(api.client.base_url)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case) -> None:
        if not with_token:
            case.headers = {
                k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"
            }
        response = case.call(base_url=base_url, headers=headers)
        excluded = NOT_CHECKED
        if mode is GenerationMode.NEGATIVE and response.status_code == BODY_TOO_LARGE:
            # An invalid body so large that the API's body limit refuses it before anything
            # else looks at it: a rejection, though not one of the check's default codes.
            excluded = [*NOT_CHECKED, negative_data_rejection]
        case.validate_response(response, headers=headers, excluded_checks=excluded)

    check()
