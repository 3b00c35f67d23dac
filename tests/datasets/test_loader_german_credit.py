from __future__ import annotations

import pytest

from dayzero.core.settings import DEMO_DATA, DataNotFoundError
from dayzero.datasets import MalformedDataError
from dayzero.datasets.german_credit import NUMERIC, load_german_credit


def _tiny(tmp_path, rows: int = 6, edit=None):
    """The first ``rows`` lines of the shipped file (header included), optionally edited."""
    lines = (DEMO_DATA / "german-credit" / "germancredit.csv").read_text().splitlines()[: rows + 1]
    if edit:
        lines = edit(lines)
    folder = tmp_path / "german-credit"
    folder.mkdir()
    (folder / "germancredit.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_tiny_file_known_answer(tmp_path):
    data = load_german_credit(_tiny(tmp_path))
    # First rows of the source: good, bad, good, good, bad, good.
    assert data.frame["creditability"].tolist() == ["good", "bad", "good", "good", "bad", "good"]
    assert data.y.tolist() == [0, 1, 0, 0, 1, 0]
    assert data.frame["credit_amount"].iloc[0] == 1169
    assert all(str(data.frame[c].dtype) == "int64" for c in NUMERIC)
    assert "creditability" not in data.X.columns and "default" not in data.X.columns
    assert data.X.shape == (6, 20)
    assert data.kinds["age_in_years"] == "numeric" and data.kinds["purpose"] == "categorical"


def test_data_root_is_accepted(tmp_path):
    _tiny(tmp_path)
    assert len(load_german_credit(tmp_path)) == 6


def test_non_number_names_line(tmp_path):
    def corrupt(lines):
        cells = lines[3].split(",")
        cells[4] = "lots"
        lines[3] = ",".join(cells)
        return lines

    folder = _tiny(tmp_path, edit=corrupt)
    with pytest.raises(MalformedDataError, match=r"germancredit.csv, line 4"):
        load_german_credit(folder)


def test_bad_label_names_line(tmp_path):
    def corrupt(lines):
        lines[2] = lines[2].rsplit(",", 1)[0] + ",maybe"
        return lines

    with pytest.raises(MalformedDataError, match=r"line 3: creditability is 'maybe'"):
        load_german_credit(_tiny(tmp_path, edit=corrupt))


def test_missing_file_is_named(tmp_path):
    (tmp_path / "german-credit").mkdir()
    with pytest.raises(DataNotFoundError, match=r"germancredit.csv"):
        load_german_credit(tmp_path / "german-credit")


def test_shipped_copy_is_the_default(no_data_env):
    data = load_german_credit()
    assert len(data) == 1000 and data.counts() == {0: 700, 1: 300}


def test_set_data_env_without_folder_does_not_fall_back(tmp_path, monkeypatch):
    monkeypatch.setenv("DAYZERO_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError, match=r"german-credit"):
        load_german_credit()


@pytest.mark.slow
def test_real_counts(real_dataset):
    data = load_german_credit(real_dataset("german-credit"))
    assert len(data) == 1000
    assert data.counts() == {0: 700, 1: 300}
    assert data.frame["creditability"].value_counts().to_dict() == {"good": 700, "bad": 300}


@pytest.mark.slow
def test_shipped_copy_is_identical_to_the_source(real_dataset):
    source = real_dataset("german-credit") / "german-credit" / "germancredit.csv"
    shipped = DEMO_DATA / "german-credit" / "germancredit.csv"
    assert shipped.read_bytes() == source.read_bytes()
