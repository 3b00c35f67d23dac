"""``GET /v1/items/{item_id}``: a stored item's title, text and fields; an item only the served
model knows (the catalogue of `dayzero fit`); an unknown id is a 404 naming it."""

from __future__ import annotations

import sqlite3
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from dayzero.online.registry import ModelRegistry
from dayzero.serve.app import ServeConfig, create_app
from tests.serve.conftest import ACTION, API_KEY

KEY = {"X-API-Key": API_KEY}


@pytest.fixture
def client(env):
    with TestClient(create_app(ServeConfig(env.store, env.registry, API_KEY)), headers=KEY) as c:
        yield c


def test_a_stored_item_with_its_title_text_and_fields(client):
    item = {"id": "a_new", "text": f"{ACTION} new", "fields": {"name": "Car Chase 2", "year": 2}}
    assert client.post("/v1/items", json={"items": [item]}).status_code == 200
    body = client.get("/v1/items/a_new").json()
    assert body == {
        "item": "a_new",
        "title": "Car Chase 2",
        "text": f"{ACTION} new",
        "fields": {"name": "Car Chase 2", "year": 2},
        "stored": True,
        "served": True,
    }
    # without a title field: the start of its text
    trained = client.get("/v1/items/r3").json()
    assert trained["title"] == trained["text"] == "love kiss wedding romance heart couple r3"
    assert trained["stored"] and trained["served"] and trained["fields"] == {}


def test_an_unknown_item_is_a_404_naming_it(client):
    missing = client.get("/v1/items/no-such-item")
    assert missing.status_code == 404
    assert "'no-such-item'" in missing.json()["detail"]
    weird = "ü ☃ x"
    answer = client.get(f"/v1/items/{quote(weird)}")
    assert answer.status_code == 404 and repr(weird) in answer.json()["detail"]
    # an id the store refuses is a 422 saying why, never a 5xx
    tab = client.get("/v1/items/a%09b")
    assert tab.status_code == 422 and "control character" in tab.json()["detail"]


def test_an_item_of_the_model_only_comes_from_its_catalogue(env, tmp_path):
    """A version published with a catalogue/ serves titles for items the store never held."""
    from dayzero.core.artifact import Artifact, save_artifact

    registry = ModelRegistry(env.registry)
    source = registry.path("v000001")

    def with_catalogue(folder):
        _copy_version(source, folder)
        state = {
            "ids": ["a0", "zz-only-in-catalogue"],
            "titles": ["Action Zero", "Ghost"],
            "texts": ["the first action film", "an item the index lacks"],
        }
        save_artifact(folder / "catalogue", Artifact("catalogue", "items", {}, state))

    v2 = registry.publish(
        with_catalogue,
        metrics={},
        watermark=registry.info("v000001")["watermark"],
        config={},
    )
    registry.promote(v2)
    # the store forgets a0's record: its title now comes from the catalogue
    with sqlite3.connect(env.store) as db:
        db.execute("DELETE FROM items WHERE id = 'a0'")
    with TestClient(create_app(ServeConfig(env.store, env.registry, API_KEY)), headers=KEY) as c:
        assert c.get("/v1/model").json()["version"] == v2
        a0 = c.get("/v1/items/a0").json()
        assert a0 == {
            "item": "a0",
            "title": "Action Zero",
            "text": "the first action film",
            "fields": {},
            "stored": False,
            "served": True,
        }
        ghost = c.get("/v1/items/zz-only-in-catalogue").json()
        assert ghost["title"] == "Ghost" and not ghost["stored"] and not ghost["served"]
        listed = c.get("/v1/items/a1/similar", params={"k": 100}).json()["items"]
        assert {r["item"]: r["title"] for r in listed}["a0"] == "Action Zero"


def _copy_version(source, folder):
    import shutil

    from dayzero.online.registry import RESERVED

    for path in source.iterdir():
        if path.name in RESERVED:
            continue
        if path.is_dir():
            shutil.copytree(path, folder / path.name)
        else:
            shutil.copy2(path, folder / path.name)
