"""The one artifact format: round trip, refusals that name the file and the fix."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from dayzero.core.artifact import (
    CONFIG_FILE,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    Artifact,
    ArtifactError,
    artifact_kind,
    check_files,
    load_artifact,
    save_artifact,
)


def _sample() -> Artifact:
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "ids": np.array([3, 1])}
    state = {"vocab": ("a", "b"), "n": np.int64(2), "tags": {"x"}}
    return Artifact("recommender", "toy", {"k": 3, "alpha": np.float32(0.5)}, state, arrays)


def test_round_trip_keeps_params_state_and_arrays(tmp_path):
    folder = save_artifact(tmp_path / "m", _sample())
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    document = json.loads((folder / CONFIG_FILE).read_text())
    assert (document["format"], document["format_version"]) == ("dayzero", FORMAT_VERSION)
    assert artifact_kind(folder) == "recommender"
    back = load_artifact(folder, "recommender")
    assert (back.name, back.params) == ("toy", {"k": 3, "alpha": 0.5})
    assert back.state == {"vocab": ["a", "b"], "n": 2, "tags": ["x"]}
    np.testing.assert_array_equal(back.arrays["w"], _sample().arrays["w"])
    assert back.arrays["ids"].dtype == np.int64


def test_no_arrays_no_weights_file_and_a_stale_one_is_removed(tmp_path):
    save_artifact(tmp_path, _sample())
    save_artifact(tmp_path, Artifact("recommender", "toy"))
    assert not (tmp_path / WEIGHTS_FILE).exists()
    assert load_artifact(tmp_path, "recommender").arrays == {}


def test_refusals_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        load_artifact(tmp_path / "nowhere", "recommender")
    with pytest.raises(ArtifactError, match=r"dayzero\.json is missing"):
        load_artifact(tmp_path, "recommender")
    (tmp_path / "risk_scorer.json").write_text("{}")
    with pytest.raises(ArtifactError, match=r"RiskScorer saved by dayzero 0\.1.*fit it again"):
        load_artifact(tmp_path, "risk-scorer")
    folder = save_artifact(tmp_path / "m", _sample())
    with pytest.raises(ArtifactError, match="holds a 'recommender', not a 'vector-index'"):
        load_artifact(folder, "vector-index")
    document = json.loads((folder / CONFIG_FILE).read_text())
    (folder / CONFIG_FILE).write_text(json.dumps({**document, "format_version": 99}))
    with pytest.raises(ArtifactError, match="upgrade dayzero"):
        load_artifact(folder, "recommender")
    (folder / CONFIG_FILE).write_text("{oops")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_artifact(folder, "recommender")


def test_a_damaged_weights_file_is_refused_not_half_read(tmp_path):
    folder = save_artifact(tmp_path, _sample())
    data = (folder / WEIGHTS_FILE).read_bytes()
    (folder / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=r"weights\.safetensors is not a complete"):
        load_artifact(folder, "recommender")


def test_state_that_is_not_json_is_refused_by_name(tmp_path):
    with pytest.raises(ArtifactError, match="cannot save recommender 'toy'"):
        save_artifact(tmp_path, Artifact("recommender", "toy", state={"f": object()}))
    with pytest.raises(ArtifactError, match="cannot save"):
        save_artifact(tmp_path, Artifact("recommender", "toy", state={"x": float("nan")}))


def test_check_files_refuses_pickles_bad_json_and_damaged_safetensors(tmp_path):
    folder = save_artifact(tmp_path / "m", _sample())
    (folder / "part").mkdir()
    save_artifact(folder / "part", _sample())
    check_files(folder)  # a whole folder passes
    (folder / "part" / "model.pt").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ArtifactError, match=r"part/model\.pt: a pickle-format file"):
        check_files(folder)
    (folder / "part" / "model.pt").unlink()
    (folder / "part" / "extra.json").write_text("{")
    with pytest.raises(ArtifactError, match=r"part/extra\.json: not valid JSON"):
        check_files(folder)
    (folder / "part" / "extra.json").unlink()
    (folder / "part" / WEIGHTS_FILE).write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ArtifactError, match=r"part/weights\.safetensors: not a complete"):
        check_files(folder)
