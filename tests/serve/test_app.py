"""The HTTP service in-process (fastapi.testclient): every endpoint, auth, validation, admin."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from dayzero.online.registry import ModelRegistry
from dayzero.online.store import open_store
from dayzero.serve.app import ServeConfig, create_app
from tests.serve.conftest import ACTION, API_KEY, ROMANCE, Env, copy_env, republish

KEY = {"X-API-Key": API_KEY}


_copy = copy_env


@pytest.fixture(scope="module")
def menv(served_env, tmp_path_factory) -> Env:
    return _copy(served_env, tmp_path_factory.mktemp("app") / "env")


@pytest.fixture(scope="module")
def client(menv):
    app = create_app(ServeConfig(store=menv.store, registry=menv.registry, api_key=API_KEY))
    with TestClient(app, headers=KEY) as c:
        yield c


@pytest.fixture(scope="module")
def anon(client):
    """The same running app, without the API key."""
    return TestClient(client.app)


def themes(env: Env, ids: list[str]) -> list[str]:
    return [env.theme(i) for i in ids]


def items_of(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["item"] for r in response.json()["items"]]


# ---------------------------------------------------------------------- reads
def test_health_and_model_info(client, menv):
    assert client.get("/healthz").json() == {
        "status": "ok",
        "version": "v000001",
        "process": os.getpid(),
    }
    info = client.get("/v1/model").json()
    store = open_store(menv.store)
    try:
        watermark = ModelRegistry(menv.registry).info("v000001")["watermark"]
        assert watermark == store.count_events() > 0
    finally:
        store.close()
    assert info["version"] == "v000001"
    assert info["watermark"] == watermark
    assert info["metrics"] == {"mae": 0.5}
    assert info["index_size"] == 2 * len(menv.action)
    assert info["index_kind"] == "exact"


def test_model_card_of_the_served_version(client, anon):
    card = client.get("/v1/model/card")
    assert card.status_code == 200, card.text
    body = card.json()
    assert body["kind"] == "recommender" and body["name"] == "two-tower"
    assert body["serving"]["version"] == "v000001" and body["serving"]["metrics"] == {"mae": 0.5}
    assert body["training_data"]["interactions"] > 0 and body["encoder"]["strategy"]
    page = client.get("/v1/model/card", params={"format": "html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "v000001" in page.text and "Model card" in page.text
    assert client.get("/v1/model/card", params={"format": "pdf"}).status_code == 422
    assert anon.get("/v1/model/card").status_code == 401


def test_known_users_get_their_theme(client, menv):
    for user, theme in (("ua0", "action"), ("ub0", "romance")):
        response = client.get(
            f"/v1/users/{user}/recommendations", params={"k": 5, "exclude_seen": False}
        )
        body = response.json()
        assert body["user"] == user and body["new_user"] is False
        assert themes(menv, items_of(response)) == [theme] * 5
        scores = [r["score"] for r in body["items"]]
        assert scores == sorted(scores, reverse=True)


def test_exclude_seen_leaves_out_the_users_items(client, menv):
    store = open_store(menv.store)
    try:
        seen = {e.item for e in store.events(user="ua1")}
    finally:
        store.close()
    ids = items_of(client.get("/v1/users/ua1/recommendations", params={"k": 20}))
    assert ids and not seen & set(ids)
    assert len(ids) == 2 * len(menv.action) - len(seen)


def test_unknown_user_is_served_as_new(client):
    response = client.get("/v1/users/never-seen/recommendations", params={"k": 3})
    assert response.status_code == 200
    assert response.json()["new_user"] is True and len(response.json()["items"]) == 3


def test_anonymous_user_from_recent_items(client, menv):
    for theme, liked in (("action", menv.action[:3]), ("romance", menv.romance[:3])):
        body = {
            "profile": "a new viewer",
            "recent": [{"item": i, "value": 5} for i in liked],
            "k": 5,
        }
        ids = items_of(client.post("/v1/recommendations", json=body))
        assert themes(menv, ids) == [theme] * 5
        assert not set(liked) & set(ids)  # exclude_seen defaults to true
    only_text = client.post("/v1/recommendations", json={"profile": ROMANCE, "k": 4})
    assert only_text.json()["new_user"] is True and len(items_of(only_text)) == 4
    nothing = client.post("/v1/recommendations", json={})  # popularity-like prior
    assert len(items_of(nothing)) == 10


def test_unknown_recent_items_are_ignored(client):
    body = {"recent": [{"item": "no-such-item", "value": 5}], "k": 3}
    assert len(items_of(client.post("/v1/recommendations", json=body))) == 3


def test_similar_items(client, menv):
    response = client.get(f"/v1/items/{menv.action[0]}/similar", params={"k": 4})
    ids = items_of(response)
    assert menv.action[0] not in ids and len(ids) == 4
    missing = client.get("/v1/items/no-such-item/similar")
    assert missing.status_code == 404 and "no-such-item" in missing.json()["detail"]


def test_every_recommendation_route_carries_titles(env):
    """The store record's title field, else the start of its text; one per item."""
    from dayzero.core.fields import title_of

    with TestClient(create_app(ServeConfig(env.store, env.registry, API_KEY)), headers=KEY) as c:
        titled = {"id": "a_titled", "text": f"{ACTION} titled", "fields": {"title": "Big Chase"}}
        assert c.post("/v1/items", json={"items": [titled]}).status_code == 200
        store = c.app.state.service.store
        texts = {r.id: r.text for r in store.items()}
        answers = [
            c.get("/v1/users/ua0/recommendations", params={"k": 100, "exclude_seen": False}),
            c.post("/v1/recommendations", json={"profile": ACTION, "k": 100}),
            c.get("/v1/items/a0/similar", params={"k": 100}),
        ]
        for answer in answers:
            rows = answer.json()["items"]
            assert len(rows) == len(texts) - (answer is answers[2]), answer.text
            for row in rows:
                wanted = (
                    "Big Chase" if row["item"] == "a_titled" else title_of({}, texts[row["item"]])
                )
                assert row["title"] == wanted and wanted


# ---------------------------------------------------------------------- writes
def test_new_item_is_searchable_at_once(client, menv):
    before = client.get("/v1/model").json()["index_size"]
    ack = client.post(
        "/v1/items", json={"items": [{"id": "a_new", "text": f"{ACTION} new"}]}, headers=KEY
    )
    assert ack.status_code == 200 and ack.json()["stored"] == 1
    assert client.get("/v1/model").json()["index_size"] == before + 1
    assert client.get("/v1/items/a_new/similar", params={"k": 3}).status_code == 200
    everything = items_of(client.post("/v1/recommendations", json={"k": 100}))
    assert "a_new" in everything
    store = open_store(menv.store)
    try:
        assert store.get_item("a_new").text.endswith("new")
    finally:
        store.close()


def test_events_are_stored_and_change_recommendations(client, menv):
    user = "fresh-user"
    profile = client.post(
        "/v1/users", json={"users": [{"id": user, "text": "likes films"}]}, headers=KEY
    )
    assert profile.status_code == 200
    before = items_of(client.get(f"/v1/users/{user}/recommendations", params={"k": 5}))
    majority = max(("action", "romance"), key=themes(menv, before).count)
    other = menv.romance if majority == "action" else menv.action
    events = [{"user": user, "item": i, "value": 5.0, "kind": "rating"} for i in other[:3]]
    ack = client.post("/v1/events", json={"events": events}, headers=KEY).json()
    assert ack["stored"] == 3 and ack["ids"] == sorted(ack["ids"])
    after = items_of(client.get(f"/v1/users/{user}/recommendations", params={"k": 5}))
    wanted = "romance" if majority == "action" else "action"
    assert themes(menv, after) == [wanted] * 5
    store = open_store(menv.store)
    try:
        assert [e.id for e in store.events(user=user)] == ack["ids"]
    finally:
        store.close()


def test_implicit_events_and_timestamps(client):
    events = [
        {"user": "clicker", "item": "r1", "kind": "click", "ts": "2025-01-01T10:00:00"},
        {"user": "clicker", "item": "r2", "kind": "like", "ts": "2025-01-01T10:00:00+02:00"},
    ]
    ack = client.post("/v1/events", json={"events": events}, headers=KEY)
    assert ack.status_code == 200 and ack.json()["stored"] == 2


# ---------------------------------------------------------------------- auth
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/items", {"items": [{"id": "x"}]}),
        ("/v1/users", {"users": [{"id": "x"}]}),
        ("/v1/events", {"events": [{"user": "u", "item": "a0"}]}),
        ("/v1/admin/promote", {"version": "v000001"}),
        ("/v1/admin/rollback", None),
    ],
)
def test_writes_and_admin_need_the_key(anon, path, body):
    missing = anon.post(path, json=body)
    assert missing.status_code == 401 and "X-API-Key" in missing.json()["detail"]
    wrong = anon.post(path, json=body, headers={"X-API-Key": "nope"})
    assert wrong.status_code == 403


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/v1/users/ua0/recommendations", None),
        ("post", "/v1/recommendations", {"k": 3}),
        ("get", "/v1/items/a0/similar", None),
        ("get", "/v1/model", None),
        ("post", "/v1/risk/score", {"applicants": [{"age": 30}]}),
    ],
)
def test_reads_need_the_key_by_default(anon, method, path, body):
    response = getattr(anon, method)(path, **({"json": body} if body else {}))
    assert response.status_code == 401 and "X-API-Key" in response.json()["detail"]
    assert anon.get("/healthz").status_code == 200  # liveness stays open


def test_public_reads_never_reveal_a_users_history_without_the_key(served_env, tmp_path):
    """With --public-reads anyone may read, but diffing exclude_seen=false against true would
    recover the items a user rated: that one needs the key."""
    env = _copy(served_env, tmp_path / "env")
    config = ServeConfig(store=env.store, registry=env.registry, api_key=API_KEY, public_reads=True)
    with TestClient(create_app(config)) as c:
        assert c.get("/v1/users/ua0/recommendations", params={"k": 100}).status_code == 200
        assert c.get("/v1/model").status_code == 200
        leak = c.get("/v1/users/ua0/recommendations", params={"k": 100, "exclude_seen": False})
        assert leak.status_code == 401 and "exclude_seen" in leak.json()["detail"]
        allowed = c.get(
            "/v1/users/ua0/recommendations", params={"exclude_seen": False}, headers=KEY
        )
        assert allowed.status_code == 200


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("get", "/v1/users/ua0/recommendations?k=0", None, "k"),
        ("get", "/v1/users/ua0/recommendations?k=101", None, "k"),
        ("get", "/v1/users/ua0/recommendations?k=ten", None, "k"),
        ("get", "/v1/items/a0/similar?k=-1", None, "k"),
        ("post", "/v1/events", {"events": []}, "events"),
        ("post", "/v1/events", {"events": [{"user": "", "item": "a0"}]}, "user"),
        ("post", "/v1/events", {"events": [{"user": "u", "item": "a0", "kind": "9x"}]}, "kind"),
        ("post", "/v1/events", {"events": [{"user": "u", "item": "a0", "extra": 1}]}, "extra"),
        ("post", "/v1/events", {"events": [{"user": "u", "item": "a0"}] * 1001}, "events"),
        ("post", "/v1/items", {"items": [{"id": "x", "text": "t" * 4001}]}, "text"),
        ("post", "/v1/items", {"items": [{"id": "x" * 257}]}, "id"),
        ("post", "/v1/recommendations", {"k": 1000}, "k"),
        ("post", "/v1/recommendations", {"recent": [{"value": 5}]}, "item"),
        ("post", "/v1/admin/promote", {"version": "../etc"}, "version"),
    ],
)
def test_invalid_input_names_the_field(client, method, path, body, field):
    response = getattr(client, method)(path, headers=KEY, **({"json": body} if body else {}))
    assert response.status_code == 422, response.text
    assert field in json.dumps(response.json()["detail"])


def test_non_finite_value_is_refused(client):
    raw = '{"events": [{"user": "u", "item": "a0", "value": NaN}]}'
    response = client.post(
        "/v1/events", content=raw, headers={**KEY, "Content-Type": "application/json"}
    )
    assert response.status_code == 422 and "value" in json.dumps(response.json()["detail"])


def test_store_refusal_is_a_422_naming_the_field(client):
    body = {"items": [{"id": "nul", "text": "bad\u0000text"}]}
    response = client.post("/v1/items", json=body, headers=KEY)
    assert response.status_code == 422 and "text" in response.json()["detail"]


def test_too_large_bodies_get_413(served_env, tmp_path):
    env = _copy(served_env, tmp_path / "env")
    config = ServeConfig(
        store=env.store, registry=env.registry, api_key=API_KEY, max_body_bytes=2_000
    )
    body = {"events": [{"user": "u", "item": "a0"}] * 100}
    with TestClient(create_app(config)) as c:
        declared = c.post("/v1/events", json=body, headers=KEY)
        assert declared.status_code == 413 and "2000 bytes" in declared.json()["detail"]
        streamed = c.post(
            "/v1/events",
            content=iter([json.dumps(body).encode()[:1500], json.dumps(body).encode()[1500:]]),
            headers={**KEY, "Content-Type": "application/json"},
        )
        assert streamed.status_code == 413
        assert (
            c.post("/v1/events", json={"events": body["events"][:2]}, headers=KEY).status_code
            == 200
        )


# ---------------------------------------------------------------------- attacks
def _stored_events(env: Env, user: str) -> list:
    store = open_store(env.store)
    try:
        return store.events(user=user)
    finally:
        store.close()


@pytest.mark.parametrize(
    "ts",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "1850-06-01T00:00:00Z",
        "2300-01-01T00:00:00Z",
    ],
)
def test_out_of_range_timestamps_are_refused(client, menv, ts):
    user = f"ts-{ts[:4]}"
    event = {"user": user, "item": "a0", "ts": ts}
    response = client.post("/v1/events", json={"events": [event]})
    assert response.status_code == 422, response.text
    assert "ts" in json.dumps(response.json()["detail"])
    assert _stored_events(menv, user) == []
    assert client.get(f"/v1/users/{user}/recommendations").status_code == 200


def _raw(client, method: str, path: str, raw: str):
    headers = {"Content-Type": "application/json"}
    return getattr(client, method)(path, content=raw.encode(), headers=headers)


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/v1/items", '{"items": [{"id": "\\ud800"}]}'),
        ("/v1/items", '{"items": [{"id": "x", "text": "a\\ud800b"}]}'),
        ("/v1/items", '{"items": [{"id": "x", "fields": {"\\udc80": 1}}]}'),
        ("/v1/users", '{"users": [{"id": "u", "text": "\\ud800"}]}'),
        ("/v1/events", '{"events": [{"user": "\\ud800", "item": "a0"}]}'),
        ("/v1/events", '{"events": [{"user": "u", "item": "a0", "context": {"q": "\\ud800"}}]}'),
        ("/v1/recommendations", '{"profile": "\\ud800"}'),
        ("/v1/recommendations", '{"recent": [{"item": "\\ud800"}]}'),
        ("/v1/admin/promote", '{"version": "\\ud800"}'),
        ("/v1/risk/score", '{"applicants": [{"age": "\\ud800"}]}'),
    ],
)
def test_lone_surrogates_are_a_422_not_a_dropped_connection(client, path, raw):
    response = _raw(client, "post", path, raw)
    assert response.status_code == 422, response.text
    assert "surrogate" in json.dumps(response.json()["detail"])


def test_a_refused_batch_is_not_committed(client, menv):
    store = open_store(menv.store)
    try:
        before = (len(store.items()), len(store.users()))
    finally:
        store.close()
    items = {"items": [{"id": "dup-item", "text": ACTION}, {"id": "dup-item", "text": ROMANCE}]}
    refused = client.post("/v1/items", json=items)
    assert refused.status_code == 422 and "items[1].id" in json.dumps(refused.json()["detail"])
    users = {"users": [{"id": "dup-user"}, {"id": "dup-user", "text": "again"}]}
    refused = client.post("/v1/users", json=users)
    assert refused.status_code == 422 and "users[1].id" in json.dumps(refused.json()["detail"])
    store = open_store(menv.store)
    try:
        assert (len(store.items()), len(store.users())) == before
        assert store.get_item("dup-item") is None and store.get_user("dup-user") is None
    finally:
        store.close()


@pytest.mark.parametrize("bad", ["a/b", "../../etc/passwd", "..", ".", "tab\there", "nl\n"])
def test_ids_that_no_read_path_could_serve_are_refused_at_write(client, menv, bad):
    for path, body, field in (
        ("/v1/items", {"items": [{"id": bad}]}, "id"),
        ("/v1/users", {"users": [{"id": bad}]}, "id"),
        ("/v1/events", {"events": [{"user": bad, "item": "a0"}]}, "user"),
        ("/v1/events", {"events": [{"user": "u", "item": bad}]}, "item"),
    ):
        response = client.post(path, json=body)
        assert response.status_code == 422, (path, response.text)
        assert field in json.dumps(response.json()["detail"])
    assert _stored_events(menv, "u") == []


def test_every_id_a_write_accepts_can_be_read_back(client):
    for item in ("with space", "ünïcødé", "a?b#c%d", "x+y=z", "dot.in.middle"):
        assert client.post("/v1/items", json={"items": [{"id": item, "text": ACTION}]}).is_success
        from urllib.parse import quote

        response = client.get(f"/v1/items/{quote(item, safe='')}/similar", params={"k": 2})
        assert response.status_code == 200, (item, response.text)
        assert response.json()["item"] == item


def test_retried_events_with_an_idempotency_key_are_stored_once(client, menv):
    events = [
        {"user": "retry", "item": "a1", "value": 5, "idempotency_key": "e-1"},
        {"user": "retry", "item": "a2", "value": 4, "idempotency_key": "e-2"},
    ]
    first = client.post("/v1/events", json={"events": events}).json()
    again = client.post("/v1/events", json={"events": events}).json()
    assert again["ids"] == first["ids"] and again["duplicates"] == 2 and again["stored"] == 0
    assert len(_stored_events(menv, "retry")) == 2
    batch = [{"user": "retry-b", "item": "a3"}, {"user": "retry-b", "item": "a4"}]
    one = client.post("/v1/events", json={"events": batch}, headers={"Idempotency-Key": "b-1"})
    two = client.post("/v1/events", json={"events": batch}, headers={"Idempotency-Key": "b-1"})
    assert one.json()["ids"] == two.json()["ids"] and len(_stored_events(menv, "retry-b")) == 2
    reused = [{"user": "someone-else", "item": "a1", "idempotency_key": "e-1"}]
    conflict = client.post("/v1/events", json={"events": reused})
    assert conflict.status_code == 409 and "e-1" in conflict.json()["detail"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/events", {"events": [{"user": "u", "item": "a0", "value": True}]}, "value"),
        ("/v1/events", {"events": [{"user": "u", "item": "a0", "value": "5"}]}, "value"),
        ("/v1/recommendations", {"k": "5"}, "k"),
        ("/v1/recommendations", {"k": True}, "k"),
        ("/v1/recommendations", {"exclude_seen": "no"}, "exclude_seen"),
        ("/v1/recommendations", {"recent": [{"item": "a0", "value": False}]}, "value"),
        ("/v1/risk/score", {"applicants": [{"age": 30}], "top": "2"}, "top"),
        ("/v1/items", {"items": [{"id": "big", "fields": {"blob": "x" * 20_000}}]}, "fields"),
        (
            "/v1/events",
            {"events": [{"user": "u", "item": "a0", "context": {"b": "x" * 20_000}}]},
            "context",
        ),
        (
            "/v1/items",
            {"items": [{"id": "deep", "fields": {"a": [[[[[[[[[[1]]]]]]]]]]}}]},
            "fields",
        ),
    ],
)
def test_types_are_strict_and_attributes_bounded(client, path, body, field):
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert field in json.dumps(response.json()["detail"])


def test_an_item_write_keeps_unrelated_users_cached(client):
    service = client.app.state.service
    client.get("/v1/users/ua2/recommendations")
    client.get("/v1/users/ub2/recommendations")
    hits = service.user_cache.hits
    assert client.post(
        "/v1/items", json={"items": [{"id": "cache-new", "text": ACTION}]}
    ).is_success
    client.get("/v1/users/ua2/recommendations")
    assert service.user_cache.hits == hits + 1  # ua2 never touched the new item: still cached


# ---------------------------------------------------------------------- risk
def test_risk_without_a_model_is_a_clear_404(client):
    response = client.post("/v1/risk/score", json={"applicants": [{"age": 30}]})
    assert response.status_code == 404 and "--risk-model" in response.json()["detail"]


@pytest.mark.parametrize(
    ("labels", "positive"),
    [((1, 0), None), (("bad", "good"), "bad")],
    ids=["one-zero", "bad-good"],
)
def test_risk_scores_with_reasons(served_env, tmp_path, tiny_bert_dir, labels, positive):
    """With bad/good labels, predict_proba's column 1 is P(good): the service must report
    predict_pd (the probability of positive_label), and points must fall as risk rises."""
    from dayzero.risk.scorer import RiskScorer

    rng = np.random.default_rng(0)
    checking = rng.choice(["< 0 DM", "no checking account"], size=80)
    frame = pd.DataFrame({"checking_account": checking, "age": rng.integers(20, 70, size=80)})
    y = np.where(checking == "< 0 DM", labels[0], labels[1])
    scorer = RiskScorer(
        encoder=str(tiny_bert_dir), fusion=True, C=10.0, positive_label=positive, random_state=0
    )
    scorer.fit(frame, y).save(tmp_path / "risk")
    env = _copy(served_env, tmp_path / "env")
    config = ServeConfig(
        store=env.store, registry=env.registry, api_key=API_KEY, risk_model=tmp_path / "risk"
    )
    rows = [
        {"checking_account": "< 0 DM", "age": 30},
        {"checking_account": "no checking account", "age": 30},
    ]
    with TestClient(create_app(config), headers=KEY) as c:
        body = c.post("/v1/risk/score", json={"applicants": rows, "top": 2}).json()
        risky, safe = body["scores"]
        assert risky["probability"] > 0.5 > safe["probability"]
        assert risky["points"] < safe["points"]
        assert risky["reasons"][0]["field"] == "checking_account"
        assert len(risky["reasons"]) == 2
        expected = scorer.predict_pd(pd.DataFrame(rows))
        np.testing.assert_allclose([risky["probability"], safe["probability"]], expected, rtol=1e-6)
        wrong = c.post("/v1/risk/score", json={"applicants": [{"salary": 1}]})
        assert wrong.status_code == 422 and "salary" in wrong.json()["detail"]


def _risk_client(served_env, tmp_path, training: bool):
    """A service with a tabular RiskScorer on (id, checking, age) -> default; with
    ``training``, the training.json of `dayzero risk fit` (target default, id passed through)."""
    from dayzero.risk.scorer import RiskScorer
    from dayzero.risk.target import TrainingInfo

    rng = np.random.default_rng(1)
    checking = rng.choice(["< 0 DM", "none"], size=120)
    frame = pd.DataFrame({"checking": checking, "age": rng.integers(20, 70, size=120)})
    y = ((checking == "< 0 DM") | (rng.random(120) < 0.1)).astype(int)
    scorer = RiskScorer(cv=2, random_state=0).fit(frame, y)
    folder = scorer.save(tmp_path / "risk")
    if training:
        TrainingInfo("default", 1, list(scorer.columns_), ["id"]).save(folder)
    env = _copy(served_env, tmp_path / "env")
    config = ServeConfig(store=env.store, registry=env.registry, api_key=API_KEY, risk_model=folder)
    return scorer, TestClient(create_app(config), headers=KEY)


def test_risk_model_card(served_env, tmp_path, client):
    assert client.get("/v1/risk/card").status_code == 404  # no risk model loaded there
    _, risk_client = _risk_client(served_env, tmp_path, training=True)
    with risk_client as c:
        card = c.get("/v1/risk/card").json()
        assert card["kind"] == "risk-scorer" and card["training_data"]["rows"] == 120
        assert card["training_data"]["cli"]["target"] == "default"  # training.json merged
        assert any("['age']" in line for line in card["limitations"])
        assert "depth" in card["selection"]
        assert c.get("/v1/risk/card", params={"format": "html"}).text.startswith("<!doctype")


def test_risk_drops_the_label_column_and_allows_ids(served_env, tmp_path):
    scorer, client = _risk_client(served_env, tmp_path, training=True)
    rows = [
        {"id": "a1", "checking": "< 0 DM", "age": 30, "default": 1},
        {"id": "a2", "checking": "none", "age": "41", "default": 0},
        {"checking": "none", "age": None},
    ]
    with client as c:
        response = c.post("/v1/risk/score", json={"applicants": rows})
        assert response.status_code == 200, response.text
        got = [score["probability"] for score in response.json()["scores"]]
        assert [score["ids"] for score in response.json()["scores"]] == [
            {"id": "a1"},
            {"id": "a2"},
            {},
        ]
        features = pd.DataFrame(
            {"checking": ["< 0 DM", "none", "none"], "age": [30.0, 41.0, np.nan]}
        )
        np.testing.assert_allclose(got, scorer.predict_pd(features), rtol=1e-9)
        assert got[0] > got[1]

        unknown = c.post("/v1/risk/score", json={"applicants": [rows[0], {**rows[1], "salary": 9}]})
        assert unknown.status_code == 422
        detail = unknown.json()["detail"]
        assert "'salary' (applicants[1])" in detail and "remove them" in detail
        assert "default" not in detail.split("(the model reads")[0]

        text = c.post("/v1/risk/score", json={"applicants": [rows[0], {**rows[1], "age": "x"}]})
        assert text.status_code == 422
        assert text.json()["detail"].startswith("applicants[1].age: 'x' is not a number")
        nested = c.post("/v1/risk/score", json={"applicants": [{**rows[0], "age": [30]}]})
        assert nested.status_code == 422 and "applicants[0].age: nested JSON" in nested.text
        missing = c.post("/v1/risk/score", json={"applicants": [{"age": 30}]})
        assert missing.status_code == 422 and "no applicant has ['checking']" in missing.text
        feature = c.post("/v1/risk/score", json={"applicants": rows, "target": "age"})
        assert feature.status_code == 422 and "is a column the model scores" in feature.text


def test_risk_label_named_in_the_request_without_training_json(served_env, tmp_path):
    scorer, client = _risk_client(served_env, tmp_path, training=False)
    rows = [{"checking": "< 0 DM", "age": 30, "bad": "yes"}]
    with client as c:
        refused = c.post("/v1/risk/score", json={"applicants": rows})
        assert refused.status_code == 422
        detail = refused.json()["detail"]
        assert "'bad' (applicants[0])" in detail and 'name it in "target"' in detail
        named = c.post("/v1/risk/score", json={"applicants": rows, "target": "bad"})
        assert named.status_code == 200, named.text
        expected = scorer.predict_pd(pd.DataFrame([{"checking": "< 0 DM", "age": 30}]))
        assert named.json()["scores"][0]["probability"] == pytest.approx(expected[0])


@pytest.mark.parametrize(
    "applicant",
    [
        {"checking": None, "age": None},
        {"checking": 3, "age": True},
        {"checking": "?", "age": ""},
        {"checking": "x" * 5000, "age": 1e308},
        {"checking": "none", "age": -1e308, "id": {"deep": 1}},
        {"checking": "none", "age": "1e999"},
        {"checking": "none", "age": "nan"},
    ],
)
def test_risk_odd_values_are_scored_or_refused_never_5xx(served_env, tmp_path, applicant):
    _, client = _risk_client(served_env, tmp_path, training=True)
    with client as c:
        response = c.post("/v1/risk/score", json={"applicants": [applicant]})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert np.isfinite(response.json()["scores"][0]["probability"])


# ---------------------------------------------------------------------- admin
def test_promote_and_rollback_swap_the_served_version(served_env, tmp_path):
    env = _copy(served_env, tmp_path / "env")
    registry = ModelRegistry(env.registry)
    v2 = republish(registry, "v000001", {"mae": 0.4})
    with TestClient(
        create_app(ServeConfig(store=env.store, registry=env.registry, api_key=API_KEY)),
        headers=KEY,
    ) as c:
        c.post("/v1/items", json={"items": [{"id": "r_new", "text": ROMANCE}]}, headers=KEY)
        promoted = c.post("/v1/admin/promote", json={"version": v2}, headers=KEY)
        assert promoted.json() == {"version": v2, "previous": "v000001", "index_size": 21}
        assert c.get("/v1/model").json()["metrics"] == {"mae": 0.4}
        assert registry.current() == v2
        # the item added under v1 was replayed into v2
        assert c.get("/v1/items/r_new/similar").status_code == 200
        back = c.post("/v1/admin/rollback", headers=KEY)
        assert back.json()["version"] == "v000001" and registry.current() == "v000001"
        assert c.get("/v1/model").json()["version"] == "v000001"
        nothing = c.post("/v1/admin/rollback", headers=KEY)
        assert nothing.status_code == 409 and "roll back" in nothing.json()["detail"]
        unknown = c.post("/v1/admin/promote", json={"version": "v000099"}, headers=KEY)
        assert unknown.status_code == 404 and "v000099" in unknown.json()["detail"]


def test_corrupt_version_is_refused_and_the_old_one_kept(served_env, tmp_path):
    env = _copy(served_env, tmp_path / "env")
    registry = ModelRegistry(env.registry)
    v2 = republish(registry, "v000001", {"mae": 0.4})
    (registry.path(v2, verify=False) / "dayzero.json").write_text("{}")
    with TestClient(
        create_app(ServeConfig(store=env.store, registry=env.registry, api_key=API_KEY)),
        headers=KEY,
    ) as c:
        response = c.post("/v1/admin/promote", json={"version": v2}, headers=KEY)
        assert response.status_code == 409 and "dayzero.json" in response.json()["detail"]
        assert c.get("/v1/model").json()["version"] == "v000001"
    assert registry.current() == "v000001"


class _Pickled:
    """Unpickling this runs code: it writes a marker file (what an attacker's pickle would do)."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "unpickled"))


def _corrupt_copy(registry: ModelRegistry, version: str, damage) -> str:
    """Publish a copy of ``version`` damaged by ``damage(folder)`` before hashing, so the
    manifest matches the damaged files: only the loader can notice."""
    source = registry.path(version)

    def write(folder: Path) -> None:
        from dayzero.online.registry import RESERVED

        for path in source.iterdir():
            if path.name in RESERVED:
                continue
            copy = shutil.copytree if path.is_dir() else shutil.copy2
            copy(path, folder / path.name)
        damage(folder)

    return registry.publish(write, {"mae": 0.9}, registry.info(version)["watermark"], {})


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _pickle_to(path: Path, marker: Path) -> None:
    import pickle

    path.write_bytes(pickle.dumps(_Pickled(marker)))


def _edit_json(path: Path, edit) -> None:
    value = json.loads(path.read_text())
    edit(value)
    path.write_text(json.dumps(value))


def _short_ids(meta: dict) -> None:
    meta["state"]["ids"] = meta["state"]["ids"][:-3]


def _dim(meta: dict) -> None:
    meta["params"]["dim"] = 7


CORRUPTIONS = {
    "model/weights.safetensors": lambda f, m: _pickle_to(f / "model" / "weights.safetensors", m),
    "index/weights.safetensors": lambda f, m: _truncate(f / "index" / "weights.safetensors"),
    "dayzero.json": lambda f, m: _edit_json(f / "dayzero.json", _dim),
    "model/dayzero.json": lambda f, m: (f / "model" / "dayzero.json").write_text("{not json"),
    "index/dayzero.json": lambda f, m: _edit_json(f / "index" / "dayzero.json", _short_ids),
    "pytorch_model.bin": lambda f, m: (
        (f / "model" / "encoder").mkdir(),
        _pickle_to(f / "model" / "encoder" / "pytorch_model.bin", m),
    ),
}
# The damaged file as the 409 names it (relative to the version, or by its own name).
NAMED = {"dayzero.json": "dayzero.json", "index/dayzero.json": "dayzero.json"}


@pytest.mark.parametrize("damaged", sorted(CORRUPTIONS))
def test_a_damaged_version_is_refused_with_409_naming_the_file(served_env, tmp_path, damaged):
    env = _copy(served_env, tmp_path / "env")
    registry = ModelRegistry(env.registry)
    marker = tmp_path / "pwned"
    bad = _corrupt_copy(registry, "v000001", lambda folder: CORRUPTIONS[damaged](folder, marker))
    config = ServeConfig(store=env.store, registry=env.registry, api_key=API_KEY)
    with TestClient(create_app(config), headers=KEY) as c:
        response = c.post("/v1/admin/promote", json={"version": bad})
        assert response.status_code == 409, response.text
        assert NAMED.get(damaged, damaged) in response.json()["detail"], response.json()
        assert c.get("/v1/model").json()["version"] == "v000001"
        assert c.get("/v1/users/ua0/recommendations").status_code == 200
    assert registry.current() == "v000001"
    assert not marker.exists(), "a pickle from the model folder was unpickled"


def test_a_manifest_without_files_is_a_409(served_env, tmp_path):
    env = _copy(served_env, tmp_path / "env")
    registry = ModelRegistry(env.registry)
    bad = _corrupt_copy(registry, "v000001", lambda folder: None)
    (registry.root / bad / "MANIFEST.json").write_text(json.dumps({"files": []}))
    with TestClient(create_app(ServeConfig(env.store, env.registry, API_KEY)), headers=KEY) as c:
        response = c.post("/v1/admin/promote", json={"version": bad})
        assert response.status_code == 409 and "MANIFEST.json" in response.json()["detail"]


def test_a_corrupt_current_version_at_start_up_falls_back_to_the_newest_good_one(
    served_env, tmp_path
):
    env = _copy(served_env, tmp_path / "env")
    registry = ModelRegistry(env.registry)
    good = republish(registry, "v000001", {"mae": 0.45})
    damaged = _corrupt_copy(
        registry, "v000001", lambda f: _truncate(f / "model" / "weights.safetensors")
    )
    registry.promote(good)
    registry.promote(damaged)
    with TestClient(create_app(ServeConfig(env.store, env.registry, API_KEY)), headers=KEY) as c:
        info = c.get("/v1/model").json()
        assert info["version"] == good and info["metrics"] == {"mae": 0.45}
        assert damaged in info["notice"] and "model/weights.safetensors" in info["notice"]
        assert c.get("/healthz").json() == {"status": "ok", "version": good, "process": os.getpid()}
        assert c.get("/v1/users/ua0/recommendations").status_code == 200
    assert registry.current() == damaged  # the operator decides; the service says what it did


@pytest.mark.parametrize("with_part", [False, True], ids=["encoder-param", "encoder-part"])
def test_a_trust_remote_code_setting_in_a_model_folder_is_never_obeyed(
    served_env, tmp_path, tiny_bert_dir, with_part
):
    """A version whose model names as its encoder a folder with a config.json auto_map (a
    module beside it), and whose encoder part asks for trust_remote_code: promoting it (which
    loads the encoder) must not import that module."""
    from dayzero.core.artifact import Artifact, save_artifact

    env = _copy(served_env, tmp_path / "env")
    registry = ModelRegistry(env.registry)
    marker = tmp_path / "remote-code-ran"
    evil = tmp_path / "evil-encoder"
    shutil.copytree(tiny_bert_dir, evil)
    (evil / "evil.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "from transformers import BertConfig as EvilConfig, BertModel as EvilModel\n"
    )
    _edit_json(
        evil / "config.json",
        lambda c: c.update(
            auto_map={"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
        ),
    )

    def plant(folder: Path) -> None:
        _edit_json(
            folder / "model" / "dayzero.json", lambda c: c["params"].update(encoder=str(evil))
        )
        params = {"model_name_or_path": str(evil), "weights_saved": True,
                  "model_kwargs": {"trust_remote_code": True}}  # fmt: skip
        shutil.copytree(evil, folder / "model" / "encoder")
        save_artifact(folder / "model" / "encoder", Artifact("text-encoder", "TextEncoder", params))

    bad = _corrupt_copy(registry, "v000001", plant)
    with TestClient(create_app(ServeConfig(env.store, env.registry, API_KEY)), headers=KEY) as c:
        response = c.post("/v1/admin/promote", json={"version": bad})
        assert response.status_code in (200, 409), response.text
    assert not marker.exists(), "code from the model folder ran"


def test_a_matrix_factorisation_version_is_served_too(served_env, tmp_path):
    """The service talks to models through the VectorServable interface: an mf version is
    promoted and served like a two-tower one (no content: a new item waits for its events)."""
    from dayzero.core.schema import Dataset, Interactions
    from dayzero.online.serving import ServingModel
    from dayzero.recommend.baselines.matrix_factorization import MatrixFactorization

    env = _copy(served_env, tmp_path / "env")
    store = open_store(env.store)
    try:
        frame = store.events_frame()
        watermark = store.last_event_id()
    finally:
        store.close()
    data = Dataset(Interactions(frame[["user", "item", "value"]].reset_index(drop=True)))
    serving = ServingModel.from_recommender(MatrixFactorization(factors=4).fit(data))
    registry = ModelRegistry(env.registry)
    version = registry.publish(serving.save, {"mae": 0.6}, watermark, {"model": "mf"})
    with TestClient(create_app(ServeConfig(env.store, env.registry, API_KEY)), headers=KEY) as c:
        assert c.post("/v1/admin/promote", json={"version": version}).status_code == 200
        for user, theme in (("ua0", "action"), ("ub0", "romance")):
            params = {"k": 5, "exclude_seen": False}
            response = c.get(f"/v1/users/{user}/recommendations", params=params)
            assert themes(env, items_of(response)) == [theme] * 5
        assert c.get("/v1/model").json()["index_size"] == 2 * len(env.action)


def test_the_server_follows_a_promote_made_by_another_process(served_env, tmp_path):
    env = _copy(served_env, tmp_path / "env")
    registry = ModelRegistry(env.registry)
    v2 = republish(registry, "v000001", {"mae": 0.4})
    config = ServeConfig(env.store, env.registry, API_KEY, follow_every=0.05)
    with TestClient(create_app(config), headers=KEY) as c:
        assert c.get("/v1/model").json()["version"] == "v000001"
        ModelRegistry(env.registry).promote(v2)  # `dayzero update` elsewhere, say
        deadline = time.monotonic() + 10
        while c.get("/v1/model").json()["version"] != v2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.get("/v1/model").json()["version"] == v2
        ModelRegistry(env.registry).rollback()
        deadline = time.monotonic() + 10
        while c.get("/v1/model").json()["version"] != "v000001" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.get("/v1/model").json()["version"] == "v000001"


def test_without_a_promoted_version_reads_say_how_to_get_one(tmp_path):
    config = ServeConfig(store=tmp_path / "e.db", registry=tmp_path / "models", api_key=API_KEY)
    with TestClient(create_app(config), headers=KEY) as c:
        assert c.get("/healthz").json() == {
            "status": "no-model",
            "version": None,
            "process": os.getpid(),
        }
        response = c.get("/v1/users/u/recommendations")
        assert response.status_code == 503 and "dayzero update" in response.json()["detail"]
        assert c.get("/v1/model").json()["version"] is None
        # writes still land in the store
        ack = c.post("/v1/events", json={"events": [{"user": "u", "item": "i"}]}, headers=KEY)
        assert ack.status_code == 200


# ---------------------------------------------------------------------- ops
def test_metrics_and_docs(client):
    client.get("/v1/users/ua0/recommendations")
    client.post("/v1/events", json={"events": [{"user": "m", "item": "a0"}]}, headers=KEY)
    text = client.get("/metrics").text
    assert (
        'dayzero_requests_total{method="GET",route="/v1/users/{user_id}/recommendations",status="200"}'
        in text
    )
    assert "dayzero_request_seconds_bucket" in text
    assert 'dayzero_model_info{version="v000001"} 1.0' in text
    assert "dayzero_index_items" in text
    events = [
        line for line in text.splitlines() if line.startswith("dayzero_events_ingested_total")
    ]
    assert events and float(events[0].split()[-1]) >= 1
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/items",
        "/v1/users",
        "/v1/events",
        "/v1/users/{user_id}/recommendations",
        "/v1/recommendations",
        "/v1/items/{item_id}/similar",
        "/v1/risk/score",
        "/v1/model",
        "/v1/admin/promote",
        "/v1/admin/rollback",
        "/healthz",
        "/metrics",
    ):
        assert path in paths


# ---------------------------------------------------------------------- user-vector cache
def _entry(version: str = "v1", epoch: int = 0):
    from dayzero.serve.state import _UserEntry

    return _UserEntry(version, epoch, np.zeros(3, np.float32), frozenset(), False, time.monotonic())


def test_user_cache_drops_entries_on_writes_versions_and_items():
    from dayzero.serve.state import UserVectorCache

    cache = UserVectorCache(size=2, ttl=60)
    cache.put("u", cache.token("u"), _entry())
    assert cache.get("u", "v1") is not None
    assert cache.get("u", "v2") is None  # another version is served
    cache.invalidate(["u"])
    assert cache.get("u", "v1") is None
    cache.put("u", cache.token("u"), _entry())
    cache.clear()  # items were added
    assert cache.get("u", "v1") is None


def test_user_cache_refuses_a_result_read_before_a_write():
    from dayzero.serve.state import UserVectorCache

    cache = UserVectorCache()
    token = cache.token("u")  # request starts reading the store ...
    cache.invalidate(["u"])  # ... an event for u commits ...
    cache.put("u", token, _entry())  # ... the stale result must not be cached
    assert cache.get("u", "v1") is None
    epoch_token = cache.token("w")
    cache.clear()
    cache.put("w", epoch_token, _entry())
    assert cache.get("w", "v1") is None


def test_user_cache_is_bounded_and_can_be_off():
    from dayzero.serve.state import UserVectorCache

    cache = UserVectorCache(size=2, ttl=60)
    for user in ("a", "b", "c"):
        cache.put(user, cache.token(user), _entry())
    assert cache.get("a", "v1") is None and cache.get("c", "v1") is not None
    expired = UserVectorCache(ttl=0.0)
    expired.put("a", expired.token("a"), _entry())
    time.sleep(0.01)
    assert expired.get("a", "v1") is None
    off = UserVectorCache(size=0)
    off.put("a", off.token("a"), _entry())
    assert off.get("a", "v1") is None


# ---------------------------------------------------------------------- concurrency
def test_concurrent_reads_writes_and_swaps_lose_no_item(served_env, tmp_path):
    """Readers, item and event writers and promotes at once: no error, and every item whose
    write returned is in the index served at the end, whichever version that is."""
    import threading

    from dayzero.online.store import EntityRecord, Event
    from dayzero.serve.state import ServiceState

    env = _copy(served_env, tmp_path / "env")
    registry = ModelRegistry(env.registry)
    v2 = republish(registry, "v000001", {"mae": 0.4})
    state = ServiceState(open_store(env.store), registry)
    state.start()
    errors: list[BaseException] = []
    added: list[str] = []
    stop = threading.Event()

    def run(fn) -> None:
        try:
            while not stop.is_set():
                fn()
        except BaseException as exc:
            errors.append(exc)

    counter = iter(range(10**6))

    def add_item() -> None:
        item = f"c{next(counter)}"
        state.add_items([EntityRecord(item, f"{ROMANCE} {item}")])
        added.append(item)

    def add_event() -> None:
        state.add_events([Event(user="ua0", item="r1", value=5.0)])

    def read() -> None:
        state.recommend_user("ua0", 5, True)
        state.recommend_anonymous("love", [], 5, True)

    threads = [threading.Thread(target=run, args=(f,)) for f in (add_item, add_event, read, read)]
    try:
        for thread in threads:
            thread.start()
        for version in (v2, "v000001", v2):
            state.promote(version)
        time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        state.close()
    assert not errors, errors
    assert added and all(item in state.served.index for item in added)
    assert state.served.version == v2


# ---------------------------------------------------------------------- explanations
@pytest.fixture(scope="module")
def xenv(served_env, tmp_path_factory) -> Env:
    """An untouched copy: the tests above add items and events to ``menv``."""
    return _copy(served_env, tmp_path_factory.mktemp("explain") / "env")


@pytest.fixture(scope="module")
def xclient(xenv):
    app = create_app(ServeConfig(store=xenv.store, registry=xenv.registry, api_key=API_KEY))
    with TestClient(app, headers=KEY) as c:
        yield c


def test_explain_names_the_history_and_the_item_text(xclient, xenv):
    client, menv = xclient, xenv
    plain = client.get("/v1/users/ua0/recommendations", params={"k": 3}).json()
    assert all(r["explanation"] is None for r in plain["items"])
    response = client.get("/v1/users/ua0/recommendations", params={"k": 3, "explain": True})
    assert response.status_code == 200, response.text
    store = open_store(menv.store)
    try:
        rated = {e.item for e in store.events(user="ua0")}
    finally:
        store.close()
    for row in response.json()["items"]:
        assert menv.theme(row["item"]) == "action"
        why = row["explanation"]
        drops = [h["contribution"] for h in why["history"]]
        assert len(drops) == 3 and drops == sorted(drops, reverse=True) and drops[0] > 0
        assert {h["item"] for h in why["history"]} <= rated
        # store items carry only free text: the one field the item tower reads, and the
        # action words are what lift an action item for an action fan
        assert [f["field"] for f in why["fields"]] == ["text"]
        assert why["fields"][0]["contribution"] > 0 and why["notes"] == []


def test_explain_a_visitor_by_the_liked_item_of_the_same_theme(xclient, xenv):
    client, menv = xclient, xenv
    recent = [{"item": "a0", "value": 5.0}, {"item": "r0", "value": 5.0}]
    response = client.post(
        "/v1/recommendations", params={"explain": "true"}, json={"recent": recent, "k": 6}
    )
    assert response.status_code == 200, response.text
    for row in response.json()["items"]:
        history = row["explanation"]["history"]
        assert {h["item"] for h in history} == {"a0", "r0"}
        assert menv.theme(history[0]["item"]) == menv.theme(row["item"])


def test_explain_without_history_and_bad_values(xclient):
    client = xclient
    fresh = client.get("/v1/users/never-seen/recommendations", params={"k": 2, "explain": True})
    assert fresh.status_code == 200, fresh.text
    why = fresh.json()["items"][0]["explanation"]
    assert why["history"] == [] and "no history" in why["notes"][0]
    bad = client.get("/v1/users/ua0/recommendations", params={"explain": "maybe"})
    assert bad.status_code == 422 and "explain" in bad.text


def test_a_known_users_answer_runs_on_the_event_loop(client, monkeypatch):
    import dayzero.serve.routes.recommendations as route

    hops = []

    async def counted(func, *args):
        hops.append(func.__name__)
        return func(*args)

    monkeypatch.setattr(route, "run_in_threadpool", counted)
    loop = items_of(client.get("/v1/users/ub0/recommendations?k=5"))
    assert hops == []
    explained = client.get("/v1/users/ub0/recommendations?k=5&explain=true")
    assert items_of(explained) == loop and hops == ["_user_recommendations"]
    client.get("/v1/users/someone-new/recommendations?k=5")  # a new user: the text encoder
    assert hops == ["_user_recommendations"] * 2


def test_a_known_user_waits_for_a_busy_model_in_a_thread_not_on_the_event_loop(client):
    # On the event loop the route never waits for a lock: it falls back to the thread pool,
    # which waits for the model while the loop keeps serving; then it answers as before.
    import threading

    state = client.app.state.service
    want = items_of(client.get("/v1/users/ub0/recommendations?k=5"))
    release, taken = threading.Event(), threading.Event()

    def hold() -> None:
        with state._model_lock:
            taken.set()
            release.wait(10)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert taken.wait(5)
    state.user_cache.clear()  # the user's vector must be computed: that needs the model
    threading.Timer(3.0, release.set).start()  # a blocked loop fails the test, not hangs it
    answer: list = []
    asking = threading.Thread(
        target=lambda: answer.append(client.get("/v1/users/ub0/recommendations?k=5"))
    )
    asking.start()
    time.sleep(0.2)
    started = time.monotonic()
    assert client.get("/healthz").status_code == 200  # the loop is free meanwhile
    assert time.monotonic() - started < 1.0
    assert not answer  # still waiting for the model
    release.set()
    asking.join(10)
    holder.join(5)
    assert items_of(answer[0]) == want
