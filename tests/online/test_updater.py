from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dayzero.core.schema import Dataset, Interactions
from dayzero.online.registry import ModelRegistry
from dayzero.online.serving import ServingModel
from dayzero.online.store import EntityRecord, Event, open_store
from dayzero.online.updater import (
    OnlineUpdater,
    UpdaterConfig,
    dataset_from_store,
    string_ids,
    typed_entities,
)
from dayzero.recommend.two_tower import TwoTowerRecommender
from tests.recommend.conftest import make_catalogue

FAST = {
    "towers__dim": 8,
    "towers__hidden": 32,
    "training__epochs": 20,
    "training__batch_users": 8,
    "training__lr": 1e-2,
    "training__validation": 0.0,
    "encoder__max_length": 32,
}


def _fill(store, catalogue) -> None:
    items = catalogue.dataset.items
    store.upsert_items(
        [
            EntityRecord(
                i, text=items.record(i)["title"], fields={"genre": items.record(i)["genre"]}
            )
            for i in items.ids
        ]
    )
    users = catalogue.dataset.users
    store.upsert_users(
        [EntityRecord(u, fields={"segment": users.record(u)["segment"]}) for u in users.ids]
    )
    frame = catalogue.dataset.interactions.frame
    store.append_events(
        [
            Event(u, i, "rating", float(v))
            for u, i, v in zip(frame["user"], frame["item"], frame["value"], strict=True)
        ]
    )


def _new_fans(store, n_users: int = 4) -> None:
    """Romance fans arriving after the watermark: 8 ratings each, consistent with their taste."""
    events = []
    for k in range(n_users):
        user = f"fan{k}"
        for item in ("r0", "a0", "r1", "a1", "r2", "a2", "r3", "a3"):
            events.append(Event(user, item, "rating", 5.0 if item.startswith("r") else 1.0))
    store.append_events(events)


@pytest.fixture(scope="module")
def catalogue():
    return make_catalogue()


@pytest.fixture(scope="module")
def base(tmp_path_factory, catalogue, tiny_bert_dir):
    """A store filled with the catalogue and a registry with a bootstrapped version (once)."""
    root = tmp_path_factory.mktemp("online")
    params = {**FAST, "encoder": str(tiny_bert_dir)}
    with open_store(root / "events.db") as store:
        _fill(store, catalogue)
        registry = ModelRegistry(root / "models")
        version = OnlineUpdater(store, registry, UpdaterConfig(model_params=params)).bootstrap()
    return root, params, version


@pytest.fixture
def bootstrapped(base, tmp_path):
    """A private copy of the bootstrapped store and registry."""
    root, params, version = base
    shutil.copytree(root, tmp_path / "w")
    store = open_store(tmp_path / "w" / "events.db")
    yield store, ModelRegistry(tmp_path / "w" / "models"), params, version
    store.close()


@pytest.fixture
def setup(bootstrapped, tmp_path):
    """The filled store with an empty registry."""
    store, _, params, _ = bootstrapped
    return store, ModelRegistry(tmp_path / "empty"), params


def test_bootstrap_from_the_store_publishes_and_promotes(bootstrapped):
    store, registry, _, version = bootstrapped
    assert registry.current() == version
    info = registry.info(version)
    assert info["watermark"] == store.last_event_id() > 0
    assert info["metrics"]["status"] == "bootstrap"
    served = ServingModel.load(registry.path(version))
    assert {"a0", "r_cold"} <= served.known_items()
    # the store's free text is the text view; structured fields are attributes
    assert served.model.item_template_.render({"text": "x", "genre": ["Drama"]}) == "Text: x"
    assert served.model.item_attributes_.width > 0


def test_update_promotes_a_candidate_that_passes_the_gate(bootstrapped, caplog):
    store, registry, params, parent = bootstrapped
    _new_fans(store)
    store.upsert_items([EntityRecord("r_new", text="love kiss wedding romance heart couple")])
    config = UpdaterConfig(model_params=params, epochs=5, tolerance=0.05, holdout=0.25)
    with caplog.at_level("INFO", logger="dayzero.online.updater"):
        result = OnlineUpdater(store, registry, config).update()
    gate = result.gate
    assert result.status == "promoted" and result.promoted and gate.passed
    assert registry.current() == result.version != parent
    assert gate.heldout_users == 4 and gate.heldout_ratings == 8  # 2 most recent of 8, per fan
    assert gate.candidate_mae <= gate.current_mae + 0.05
    assert result.train_ratings == 24 and result.replay_ratings == 96
    info = registry.info(result.version)
    assert info["watermark"] == store.last_event_id()
    assert info["metrics"]["gate"]["candidate_mae"] == pytest.approx(gate.candidate_mae)
    assert info["config"]["parent"] == parent
    assert "MAE" in caplog.text and result.version in caplog.text
    served = ServingModel.load(registry.path(result.version))
    assert "fan0" in served.model.user_map_ and "r_new" in served.known_items()
    assert served.model.n_known_users_ == len(served.model.user_map_)  # fans have ID rows
    # the fans' training ratings are now the model's own history
    assert {"r0", "a0", "r1"} <= served.model.seen_["fan0"]
    # nothing new since: the next update has nothing to do
    again = OnlineUpdater(store, registry, config).update()
    assert again.status == "no-new-events" and again.version is None


def test_a_candidate_worse_than_tolerance_is_published_but_not_promoted(bootstrapped):
    store, registry, params, parent = bootstrapped
    _new_fans(store)
    config = UpdaterConfig(model_params=params, epochs=2, tolerance=-10.0)
    result = OnlineUpdater(store, registry, config).update()
    assert result.status == "rejected" and not result.promoted
    assert "MAE" in result.gate.reason
    assert registry.current() == parent
    info = registry.info(result.version)
    assert info["metrics"]["status"] == "rejected"
    # the current version's watermark did not move: the events are seen again next time
    assert registry.info(parent)["watermark"] < store.last_event_id()
    assert [v["name"] for v in registry.versions()] == [parent, result.version]


def test_without_a_held_out_slice_the_update_waits(bootstrapped):
    store, registry, params, parent = bootstrapped
    store.append_events([Event("solo", "r0", "rating", 5.0), Event("ua0", "a_cold", "click")])
    result = OnlineUpdater(store, registry, UpdaterConfig(model_params=params)).update()
    assert result.status == "no-gate" and registry.current() == parent
    forced = UpdaterConfig(model_params=params, promote_without_gate=True)
    assert OnlineUpdater(store, registry, forced).update().status == "promoted"


def test_update_needs_a_promoted_version(setup):
    store, registry, params = setup
    with pytest.raises(RuntimeError, match="bootstrap"):
        OnlineUpdater(store, registry, UpdaterConfig(model_params=params)).update()


def test_bootstrap_from_a_dataset_uses_string_ids(setup, catalogue):
    store, registry, params = setup
    frame = catalogue.dataset.interactions.frame.copy()
    frame["user"] = frame["user"].map(lambda u: int(u[2:]) + (100 if u[1] == "b" else 0))
    dataset = Dataset(Interactions(frame))
    config = UpdaterConfig(model_params={**params, "training__epochs": 2})
    version = OnlineUpdater(store, registry, config).bootstrap(dataset)
    served = ServingModel.load(registry.path(version))
    assert "105" in served.known_users()
    assert registry.info(version)["watermark"] == store.last_event_id()


def test_events_become_ratings_by_kind(setup):
    store, _, _ = setup
    store.append_events(
        [Event("ua0", "zz", "click"), Event("ua0", "zz", "rating", 2.0), Event("ub0", "zz", "like")]
    )
    frame = dataset_from_store(store).interactions.frame
    rows = frame[frame["item"] == "zz"].set_index("user")["value"]
    assert rows.to_dict() == {"ua0": 2.0, "ub0": 5.0}  # implicit = highest rating


def test_typed_entities_infer_field_kinds():
    entities = typed_entities(
        [
            EntityRecord(
                "a", text="t", fields={"n": 1, "c": "x", "m": ["p"], "b": True, "d": "y" * 50}
            ),
            EntityRecord("b", fields={"n": 2.5, "c": "z", "m": [], "b": False, "o": {"k": 1}}),
        ],
        "item",
    )
    assert entities.fields == {
        "text": "text",
        "n": "numeric",
        "c": "categorical",
        "m": "multi",
        "b": "boolean",
        "d": "text",
    }


def test_string_ids_and_config_validation():
    dataset = string_ids(Dataset(Interactions.from_records([(1, 2, 3.0)])))
    assert dataset.interactions.frame["user"].tolist() == ["1"]
    for bad in (
        {"epochs": 0},
        {"holdout": 1.0},
        {"replay_ratio": -1.0},
        {"tolerance": np.nan},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            UpdaterConfig(**bad)


def test_update_result_serialises(bootstrapped):
    store, registry, params, _ = bootstrapped
    result = OnlineUpdater(store, registry, UpdaterConfig(model_params=params)).update()
    assert json.loads(json.dumps(result.to_dict()))["status"] == "no-new-events"


def test_an_update_never_undoes_an_operators_rollback(bootstrapped, monkeypatch):
    """The operator rolls back while the update fine-tunes: the candidate is published but not
    promoted (compare-and-swap on the registry pointer), and the rollback stands."""
    from tests.serve.conftest import republish

    store, registry, params, v1 = bootstrapped
    v2 = republish(registry, v1, {"mae": 0.5})
    registry.promote(v2)
    _new_fans(store)
    original = TwoTowerRecommender.fine_tune

    def fine_tune_while_the_operator_rolls_back(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        assert ModelRegistry(registry.root).rollback() == v1  # another process, say
        return out

    monkeypatch.setattr(TwoTowerRecommender, "fine_tune", fine_tune_while_the_operator_rolls_back)
    config = UpdaterConfig(model_params=params, epochs=1, tolerance=10.0, holdout=0.25)
    result = OnlineUpdater(store, registry, config).update()
    assert result.status == "superseded" and not result.promoted
    assert result.parent == v2 and result.version not in (v1, v2)
    assert registry.current() == v1
    assert registry.info(result.version)["metrics"]["status"] == "superseded"


def test_update_works_on_a_store_with_an_out_of_range_time(bootstrapped):
    """One bad time stored before times were range-checked must not stop every update."""
    import sqlalchemy as sa

    from dayzero.online.store import EVENTS

    store, registry, params, _ = bootstrapped
    _new_fans(store)
    with store._write(EVENTS) as conn:
        row = {"user": "fan0", "item": "r5", "kind": "rating", "value": 5.0, "context": {}}
        conn.execute(sa.insert(EVENTS), {**row, "ts": -(2**62)})
    config = UpdaterConfig(model_params=params, epochs=1, tolerance=10.0, holdout=0.25)
    result = OnlineUpdater(store, registry, config).update()
    assert result.status == "promoted" and result.new_events == 33


def test_a_retrieval_two_tower_is_served_by_retrieval_and_gated_on_its_ratings(
    tmp_path, catalogue, tiny_bert_dir
):
    params = {
        **FAST,
        "encoder": str(tiny_bert_dir),
        "training__epochs": 5,
        "training__retrieval_weight": 1.0,
        "training__positive_threshold": 4.0,
        "training__negatives": 8,
    }
    with open_store(tmp_path / "events.db") as store:
        _fill(store, catalogue)
        registry = ModelRegistry(tmp_path / "models")
        parent = OnlineUpdater(store, registry, UpdaterConfig(model_params=params)).bootstrap()
        current = ServingModel.load(registry.path(parent))
        assert current.mu == 0.0  # the index ranks by the retrieval head
        _new_fans(store)
        config = UpdaterConfig(model_params=params, epochs=3, tolerance=10.0, holdout=0.25)
        result = OnlineUpdater(store, registry, config).update()
        # the gate's MAE is the rating head's: each fan's 2 latest ratings (r3 = 5, a3 = 1)
        # predicted from the 6 before them
        errors = []
        for k in range(4):
            events = store.events(user=f"fan{k}")
            predicted = current.predict(f"fan{k}", None, events[:6], ["r3", "a3"])
            errors.append(np.abs(predicted - [5.0, 1.0]))
    assert result.gate.heldout_ratings == 8
    assert result.gate.current_mae == pytest.approx(float(np.mean(errors)), abs=1e-6)
