"""Property-based fuzzing of every operation in the OpenAPI schema: no input makes the server 5xx.

Bounded (few examples per operation) to keep the suite fast; runs on SQLite and PostgreSQL with an
admin token, so that requests get past auth into the handlers. Without a token it runs on SQLite only: a
request without one is refused before it touches the database, or reads what the admin pass reads.
"""

from __future__ import annotations

from typing import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from lut_server.app import create_app
from lut_server.config import Settings

ADMIN = "lut_fuzz_Adm1n-7Rq2Wx9Lp4Kz3Vb8"


@pytest.fixture
def fuzz_app(db_url: str) -> Iterator[object]:
    app = create_app(Settings(db_url=db_url, admin_token=ADMIN))
    yield app
    app.state.db.dispose()


@pytest.fixture
def api_schema(fuzz_app):
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_server_errors(case, db_url: str) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    for headers in (admin, {}) if db_url.startswith("sqlite") else (admin,):
        case.headers = {**(case.headers or {}), **headers}
        if not headers:
            case.headers.pop("Authorization", None)
        response = case.call()
        assert response.status_code < 500, f"{case.method} {case.path} -> {response.status_code}: {response.text[:500]}"
