"""Versioned schema migrations on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dayzero.online import migrations
from dayzero.online.migrations import LATEST_VERSION, Migration, SchemaVersionError
from dayzero.online.store import METADATA, Event, _make_engine, open_store


def _build(url: str, target: int) -> sa.Engine:
    """An engine on ``url`` whose schema was migrated only up to ``target``."""
    engine, _ = _make_engine(url)
    with engine.begin() as conn:
        assert migrations.upgrade(conn, target=target) == list(range(1, target + 1))
    return engine


def test_new_store_is_at_the_latest_version(store_url):
    with open_store(store_url) as store:
        assert store.schema_version() == LATEST_VERSION == 4
    engine, _ = _make_engine(store_url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT version, description FROM schema_version").all()
        assert [version for version, _ in sorted(rows)] == [1, 2, 3, 4]
        # Reopening applies nothing.
        assert migrations.upgrade(conn) == []
    engine.dispose()


def test_code_tables_match_the_migrated_schema(store_url):
    open_store(store_url).close()
    engine, _ = _make_engine(store_url)
    inspector = sa.inspect(engine)
    for table in METADATA.sorted_tables:
        assert {c["name"] for c in inspector.get_columns(table.name)} == set(table.columns.keys())
    indexed = {
        tuple(index["column_names"]) for index in inspector.get_indexes("events")
    }  # the two lookups the service does per request, and the time index of step 2
    assert {("user",), ("item",), ("ts",), ("idempotency_key",), ("user", "id")} <= indexed
    unique = {
        tuple(index["column_names"]) for index in inspector.get_indexes("events") if index["unique"]
    }
    assert ("idempotency_key",) in unique
    engine.dispose()


def test_upgrade_from_version_2_keeps_events_and_leaves_their_key_empty(store_url):
    engine = _build(store_url, target=2)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                'INSERT INTO events ("user", item, kind, value, ts, context) '
                "VALUES ('u1', 'i1', 'rating', 4.0, 1714566615123456, '{}')"
            )
        )
    engine.dispose()
    with open_store(store_url) as store:
        (old,) = store.events()
        assert old.idempotency_key is None
        ids = store.append_events([Event("u2", "i2", idempotency_key="k"), Event("u3", "i3")])
        again = store.append_events([Event("u2", "i2", idempotency_key="k")])
        assert list(again) == ids[:1] and again.new == 0 and store.count_events() == 3


def test_upgrade_from_version_1_keeps_data(store_url):
    engine = _build(store_url, target=1)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                'INSERT INTO events ("user", item, kind, value, ts, context) '
                "VALUES ('u1', 'i1', 'rating', 4.0, 1714566615123456, '{\"a\": \"é\"}')"
            )
        )
    engine.dispose()

    with open_store(store_url) as store:
        assert store.schema_version() == LATEST_VERSION
        (old,) = store.events()
        assert (old.user, old.item, old.value, old.context) == ("u1", "i1", 4.0, {"a": "é"})
        assert old.ts.isoformat() == "2024-05-01T12:30:15.123456+00:00"
        (new_id,) = store.append_events([Event("u2", "i2")])
        assert new_id > old.id

    engine, _ = _make_engine(store_url)
    with engine.connect() as conn:
        received = dict(conn.execute(sa.text("SELECT id, received_at FROM events")).all())
    engine.dispose()
    assert received[old.id] is None  # not known for events stored before step 2
    assert received[new_id] > 1_700_000_000 * 10**6


def test_upgrade_from_version_3_adds_toplists_and_keeps_events(store_url):
    engine = _build(store_url, target=3)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                'INSERT INTO events ("user", item, kind, value, ts, context) '
                "VALUES ('u1', 'i1', 'rating', 4.0, 1714566615123456, '{}')"
            )
        )
    engine.dispose()
    with open_store(store_url) as store:
        assert store.schema_version() == LATEST_VERSION
        assert store.known_user_ids() == ["u1"] and store.count_toplists() == 0
        assert store.get_toplist("v000001", "u1") is None


def test_newer_schema_is_refused(store_url):
    open_store(store_url).close()
    engine, _ = _make_engine(store_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO schema_version (version, description, applied_at) "
                "VALUES (:v, 'from the future', 'later')"
            ),
            {"v": LATEST_VERSION + 1},
        )
    engine.dispose()
    with pytest.raises(SchemaVersionError, match=f"schema version {LATEST_VERSION + 1}.*upgrade"):
        open_store(store_url)


def test_failed_step_rolls_back_and_leaves_the_version(store_url, monkeypatch):
    open_store(store_url).close()

    def broken(conn: sa.Connection) -> None:
        conn.execute(sa.text("CREATE TABLE half_done (x INTEGER)"))
        raise RuntimeError("the next step failed")

    step = LATEST_VERSION + 1
    monkeypatch.setattr(
        migrations, "MIGRATIONS", (*migrations.MIGRATIONS, Migration(step, "broken", broken))
    )
    monkeypatch.setattr(migrations, "LATEST_VERSION", step)
    with pytest.raises(RuntimeError, match="the next step failed"):
        open_store(store_url)
    monkeypatch.undo()

    with open_store(store_url) as store:
        assert store.schema_version() == LATEST_VERSION
    engine, _ = _make_engine(store_url)
    assert not sa.inspect(engine).has_table("half_done")
    engine.dispose()


def test_unknown_target_is_refused(tmp_path):
    engine, _ = _make_engine(tmp_path / "t.db")
    with engine.begin() as conn, pytest.raises(SchemaVersionError, match="target=9"):
        migrations.upgrade(conn, target=9)
    engine.dispose()


def test_versions_are_numbered_one_by_one():
    assert [step.version for step in migrations.MIGRATIONS] == list(
        range(1, len(migrations.MIGRATIONS) + 1)
    )
