"""Schemathesis over ``docs/api/openapi.yaml`` against the real running API server.

Every generated request (valid and invalid) must get an answer the document allows and no
5xx; requests generated to be invalid must be refused (4xx) and change nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.parameters import ParameterLocation

from .api_support import TOKEN, Api, start_api

OPENAPI = Path(__file__).parents[3] / "docs" / "api" / "openapi.yaml"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]  # fmt: skip
AUTH = {"Authorization": f"Bearer {TOKEN}"}


SCHEMA = schemathesis.openapi.from_path(OPENAPI)
OPERATIONS = {op.ok().label: op.ok() for op in SCHEMA.get_all_operations()}
# schemathesis' own pytest plugin does not run under pytest 9 (its from_fixture reads a
# removed attribute): the operations are parametrised here and drawn with hypothesis


def _serving():
    a = start_api()
    yield a
    a.server.close()
    a.core.close()


api = pytest.fixture(scope="module")(_serving)
untouched = pytest.fixture(scope="module", name="untouched")(_serving)  # for invalid input only


@pytest.mark.parametrize("label", sorted(OPERATIONS))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_valid_requests_get_documented_answers_and_no_5xx(api: Api, label, data):
    case = data.draw(OPERATIONS[label].as_strategy(GenerationMode.POSITIVE))
    case.call_and_validate(base_url=api.server.url, headers=AUTH, checks=CHECKS)


@pytest.mark.parametrize("label", sorted(OPERATIONS))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_invalid_requests_are_refused_and_change_nothing(untouched: Api, label, data):
    """negative_data_rejection: a request the document rules out gets a 4xx (schemathesis
    knows when a mutation happened to stay valid, e.g. on a route without parameters)."""
    op = OPERATIONS[label]
    real = "{id}" in label and data.draw(st.booleans())  # also the held recommendations' ids
    fixed = {"path_parameters": {"id": data.draw(st.sampled_from(["r1", "r2"]))}} if real else {}
    case = data.draw(op.as_strategy(GenerationMode.NEGATIVE, **fixed))
    before = untouched.state()
    # when the headers are the invalid part, schemathesis made the Authorization header
    # itself (the document's bearer scheme): adding the right token would make it valid
    header = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    bad_headers = header is not None and header.mode == GenerationMode.NEGATIVE
    response = case.call(base_url=untouched.server.url, headers=None if bad_headers else AUTH)
    case.validate_response(response, checks=[*CHECKS, negative_data_rejection])
    if response.status_code >= 400:
        assert untouched.state() == before
