from __future__ import annotations

import pytest

from dayzero.core.settings import DEMO_DATA
from dayzero.datasets import DATASETS, available, load

NAMES = [
    "ml-100k",
    "ml-1m-melu",
    "citeulike-a",
    "steam-games",
    "steam-reviews",
    "steam-200k",
    "german-credit",
    "financial-phrasebank",
    "twitter-financial-news",
    "chnsenticorp-htl",
    "waimai-10k",
    "restaurant-uci",
    "tallrec-movie",
]


def test_registry_lists_every_dataset():
    assert sorted(DATASETS) == sorted(NAMES)
    for name, info in DATASETS.items():
        assert info.name == name and info.required_files and callable(info.loader)
        assert info.licence and info.description
    assert "original/movies_extrainfos.dat" in DATASETS["ml-1m-melu"].required_files
    assert len(DATASETS["ml-1m-melu"].required_files) == 12


def test_available_reports_found_and_missing_files(tmp_path):
    (tmp_path / "ml-100k").mkdir()
    for name in ("ml-100k.inter", "ml-100k.item"):
        (tmp_path / "ml-100k" / name).write_text("")
    (tmp_path / "tallrec-movie").mkdir()
    for name in ("valid.json", "test.json"):
        (tmp_path / "tallrec-movie" / name).write_text("[]")
    report = available(tmp_path)
    assert set(report) == set(NAMES)
    assert report["ml-100k"] == "missing: ml-100k.user"
    assert report["tallrec-movie"] == "found"
    assert report["citeulike-a"] == "missing: citeulike-a/"
    # An explicit root never falls back to the shipped copies.
    assert report["german-credit"] == "missing: german-credit/"


def test_available_without_root_uses_shipped_copies(no_data_env):
    report = available()
    assert report["german-credit"] == "found (shipped demo copy)"
    assert report["restaurant-uci"] == "found (shipped demo copy)"
    assert report["ml-100k"].startswith("missing: data root")


def test_load_dispatches_and_rejects_unknown_names(no_data_env):
    assert len(load("german-credit")) == 1000
    assert load("restaurant-uci", DEMO_DATA, value="food_rating").name == "restaurant-uci"
    with pytest.raises(KeyError, match=r"unknown dataset 'ml-20m'"):
        load("ml-20m")


@pytest.mark.slow
def test_every_dataset_is_found_in_the_real_data(real_dataset):
    root = real_dataset("ml-100k")
    assert available(root) == dict.fromkeys(NAMES, "found")
