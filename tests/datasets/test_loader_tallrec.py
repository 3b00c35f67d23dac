from __future__ import annotations

import json

import pytest

from dayzero.core.settings import DataNotFoundError
from dayzero.datasets import MalformedDataError
from dayzero.datasets.tallrec import load_tallrec, load_tallrec_movie, parse_items, parse_titles

INSTRUCTION = (
    "Given the user's preference and unpreference, identify whether the user will like the "
    'target movie by answering "Yes." or "No.".'
)


def _example(liked, disliked, target, output):
    quote = ", ".join(f'"{t}"' for t in liked)
    unquote = ", ".join(f'"{t}"' for t in disliked)
    text = (
        f"User Preference: {quote}\nUser Unpreference: {unquote}\n"
        f'Whether the user will like the target movie "{target}"?'
    )
    return {"instruction": INSTRUCTION, "input": text, "output": output}


VALID = [
    _example(
        ["Silence of the Lambs, The (1991)", "Titanic (1997)"],
        ["Scream (1996)"],
        "Private Parts (1997)",
        "Yes.",
    ),
    _example([], ["Home Alone (1990)"], "Blade Runner (1982)", "No."),
]
TEST = [_example(["Heat (1995)"], [], "When Harry Met Sally... (1989)", "Yes.")]


def _write(tmp_path, valid=VALID, test=TEST):
    folder = tmp_path / "tallrec-movie"
    folder.mkdir()
    (folder / "valid.json").write_text(json.dumps(valid, indent=4))
    (folder / "test.json").write_text(json.dumps(test, indent=4))
    return folder


def test_tiny_known_answer(tmp_path):
    data = load_tallrec_movie(_write(tmp_path))
    assert data.splits == ["valid", "test"]
    assert data.y.tolist() == [1, 0, 1]
    first = data.frame.iloc[0]
    assert first["liked"] == ["Silence of the Lambs, The (1991)", "Titanic (1997)"]
    assert first["disliked"] == ["Scream (1996)"]
    assert first["target_title"] == "Private Parts (1997)"
    assert data.frame.iloc[1]["liked"] == []
    assert data.split("test").frame["target_title"].tolist() == ["When Harry Met Sally... (1989)"]
    assert data.X.columns.tolist() == ["input", "liked", "disliked", "target_title"]
    assert data.frame["output"].tolist() == ["Yes.", "No.", "Yes."]


def test_parse_titles():
    assert parse_titles('"A, The (1990)", "B (1995)"') == ["A, The (1990)", "B (1995)"]
    assert parse_titles("") == []
    with pytest.raises(ValueError, match=r"double-quoted"):
        parse_titles("A (1990)")


def test_bad_output_names_line_of_example(tmp_path):
    valid = [VALID[0], {**VALID[1], "output": "Maybe."}]
    folder = _write(tmp_path, valid=valid)
    # json.dumps(indent=4): "[" on line 1, first example lines 2-6, the second starts on line 7.
    with pytest.raises(MalformedDataError, match=r"valid.json, line 7: example 1: output"):
        load_tallrec_movie(folder)


def test_invalid_json_names_line(tmp_path):
    folder = _write(tmp_path)
    (folder / "test.json").write_text('[\n  {"input": "x",\n  oops\n]')
    with pytest.raises(MalformedDataError, match=r"test.json, line 3: invalid JSON"):
        load_tallrec_movie(folder)


def test_missing_file_is_named(tmp_path):
    folder = _write(tmp_path)
    (folder / "test.json").unlink()
    with pytest.raises(DataNotFoundError, match=r"test.json"):
        load_tallrec_movie(folder)


@pytest.mark.slow
def test_real_counts(real_dataset):
    data = load_tallrec_movie(real_dataset("tallrec-movie"))
    assert len(data.split("valid")) == 1000 and len(data.split("test")) == 1000
    assert data.split("valid").counts() == {0: 342, 1: 658}
    assert data.split("test").counts() == {0: 472, 1: 528}
    history = data.frame["liked"].str.len() + data.frame["disliked"].str.len()
    assert (history == 10).all()


BOOK_INSTRUCTION = INSTRUCTION.replace("target movie", "target book")


def _book(liked, disliked, target, output):
    """An example as TALLRec writes its book set: '"Title" written by Author', the target quoted
    twice."""
    items = lambda pairs: ", ".join(f'"{t}" written by {a}' for t, a in pairs)  # noqa: E731
    text = (
        f"User Preference: {items(liked)}\nUser Unpreference: {items(disliked)}\n"
        f'Whether the user will like the target book ""{target[0]}" written by {target[1]}"?'
    )
    return {"instruction": BOOK_INSTRUCTION, "input": text, "output": output}


BOOKS = [
    _book(
        [("Kiss the Girls", "James Patterson"), ("McClane's Secrets", "Albert Jules, McClane")],
        [("Rising Sun", "MICHAEL CRICHTON")],
        ("Friday", "Robert Heinlein"),
        "Yes.",
    ),
    _book([], [("The Source : A Novel", "JAMES A. MICHENER")], ("Dune", "Frank Herbert"), "No."),
]


def test_one_loader_reads_movies_and_books(tmp_path):
    movies = load_tallrec(_write(tmp_path))
    assert movies.name == "tallrec-movie" and movies.splits == ["valid", "test"]
    assert movies.X.columns.tolist() == ["input", "liked", "disliked", "target_title"]
    folder = tmp_path / "tallrec-book"
    folder.mkdir()
    (folder / "train.json").write_text(json.dumps(BOOKS, indent=4))
    (folder / "test.json").write_text(json.dumps(BOOKS[:1], indent=4))
    books = load_tallrec(folder)
    assert books.splits == ["train", "test"] and books.y.tolist() == [1, 0, 1]
    first = books.frame.iloc[0]
    assert first["liked"] == ["Kiss the Girls", "McClane's Secrets"]
    assert first["liked_creators"] == ["James Patterson", "Albert Jules, McClane"]
    assert first["disliked"] == ["Rising Sun"] and first["target_title"] == "Friday"
    assert first["target_creator"] == "Robert Heinlein"
    assert books.frame.iloc[1]["liked"] == [] and books.frame.iloc[1]["liked_creators"] == []
    assert "target_creator" in books.X.columns and books.kinds["liked_creators"] == "multi"
    with pytest.raises(MalformedDataError, match=r"test.json, line 2: example 0: the target is a"):
        load_tallrec(folder, item_type="movie", splits=("test",))


def test_parse_items_reads_both_forms():
    assert parse_items('"Heat (1995)", "B, The (1995)"') == [
        ("Heat (1995)", None),
        ("B, The (1995)", None),
    ]
    assert parse_items('"A" written by X, Y, "B" written by Z') == [("A", "X, Y"), ("B", "Z")]
    assert parse_items("") == []
    with pytest.raises(ValueError, match="double-quoted"):
        parse_items("Heat (1995)")
