"""Event-store URLs for tests: a fresh SQLite file, or a fresh PostgreSQL schema.

``store_url`` is parametrised over both backends. The PostgreSQL case needs a server::

    url=$(scripts/start_postgres.sh)          # as root: installs and starts one on 127.0.0.1
    export DAYZERO_TEST_POSTGRES_URL="$url"

and skips with that hint when ``DAYZERO_TEST_POSTGRES_URL`` is unset (``.ci/run`` sets it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

POSTGRES_ENV = "DAYZERO_TEST_POSTGRES_URL"
POSTGRES_HINT = (
    f"PostgreSQL tests need a server: run `url=$(scripts/start_postgres.sh)` (as root; it installs "
    f"and starts one) and `export {POSTGRES_ENV}=$url`, or run .ci/run"
)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose tables live in a new, empty PostgreSQL schema, dropped after the test."""
    base = os.environ.get(POSTGRES_ENV, "").strip()
    if not base:
        pytest.skip(POSTGRES_HINT)
    import sqlalchemy as sa

    schema = f"dz_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            # A store the test forgot to close must not hang the suite.
            conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A URL for a new, empty event store on each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "events.db")
    return request.getfixturevalue("postgres_url")
