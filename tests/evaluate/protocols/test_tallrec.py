from __future__ import annotations

import json

import pandas as pd
import pytest

from dayzero.datasets.tallrec import load_tallrec_movie
from dayzero.evaluate.protocols.tallrec import (
    INSTRUCTION,
    build_records,
    build_tallrec_movie,
    compare_with_files,
    movie_names,
    render_input,
    render_records,
    render_title,
    split_records,
)


def _log(rows):
    return pd.DataFrame(rows, columns=["user", "item", "value", "timestamp"])


def test_user_with_twelve_interactions_gives_two_records_in_time_order():
    # user 7 appears first; item 1 has the latest timestamp, items 5 and 6 tie (file order kept)
    rows = [(7, 1, 5.0, 1000)] + [(7, i, 4.0, 100 + i) for i in range(2, 13)]
    rows[4], rows[5] = (7, 6, 2.0, 50), (7, 5, 1.0, 50)
    rows += [(3, 100 + i, 3.0, i) for i in range(5)]  # 5 interactions: no record
    records = build_records(_log(rows))
    assert len(records) == 2
    assert records["user"].tolist() == [7, 7]
    assert records["history_items"][0] == [6, 5, 2, 3, 4, 7, 8, 9, 10, 11]
    assert records["history_ratings"][0][:2] == [2.0, 1.0]
    assert records["target_item"].tolist() == [12, 1]
    assert records["history_items"][1] == [5, 2, 3, 4, 7, 8, 9, 10, 11, 12]
    assert records["target_rating"].tolist() == [4.0, 5.0]


def test_users_are_concatenated_in_order_of_first_appearance():
    rows = [(9, i, 4.0, i) for i in range(11)] + [(2, i, 4.0, i) for i in range(12)]
    rows.insert(0, (2, 50, 1.0, 99))  # user 2 appears first in the file
    records = build_records(_log(rows))
    assert records["user"].tolist() == [2, 2, 2, 9]
    assert records["target_item"].tolist()[-1] == 10


def test_keep_last_and_80_10_10_cut():
    records = pd.DataFrame({"target_item": range(25)})
    parts = split_records(records, keep_last=20)
    assert [len(parts[s]) for s in ("train", "valid", "test")] == [16, 2, 2]
    assert parts["train"]["target_item"].tolist() == list(range(5, 21))
    assert parts["valid"]["target_item"].tolist() == [21, 22]
    assert parts["test"]["target_item"].tolist() == [23, 24]
    fewer = split_records(records, keep_last=100)
    assert sum(len(p) for p in fewer.values()) == 25
    with pytest.raises(ValueError, match="keep_last"):
        split_records(records, keep_last=0)


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="timestamp"):
        build_records(pd.DataFrame({"user": [1], "item": [1], "value": [4.0]}))


def test_render_records_likes_ratings_above_three_and_keeps_history_order():
    records = pd.DataFrame(
        {
            "history_items": [[1, 2, 3, 4]],
            "history_ratings": [[4.0, 3.0, 5.0, 1.0]],
            "target_item": [5],
            "target_rating": [3.0],
        }
    )
    names = {i: f"M{i} ({1990 + i})" for i in range(1, 6)}
    out = render_records(records, names).iloc[0]
    assert out["liked"] == ["M1 (1991)", "M3 (1993)"]
    assert out["disliked"] == ["M2 (1992)", "M4 (1994)"]
    assert (out["label"], out["output"]) == (0, "No.")
    assert out["input"] == (
        'User Preference: "M1 (1991)", "M3 (1993)"\n'
        'User Unpreference: "M2 (1992)", "M4 (1994)"\n'
        'Whether the user will like the target movie "M5 (1995)"?'
    )
    with pytest.raises(ValueError, match="no name"):
        render_records(records, {1: "x"})


def test_rendered_text_reads_back_through_the_tallrec_loader(tmp_path):
    liked, disliked, target = ["Heat (1995)", "Dave (1993)"], [], "Scream (1996)"
    example = {"instruction": INSTRUCTION, "input": render_input(liked, disliked, target)}
    folder = tmp_path / "tallrec-movie"
    folder.mkdir()
    for name in ("valid.json", "test.json"):
        (folder / name).write_text(json.dumps([{**example, "output": "Yes."}]))
    row = load_tallrec_movie(tmp_path).frame.iloc[0]
    assert (row["liked"], row["disliked"], row["target_title"]) == (liked, disliked, target)


def test_render_title_of_the_unknown_movie_and_of_a_video_title():
    assert render_title("Toy Story", "1995") == "Toy Story (1995)"
    assert render_title("unkonwn", "unkonwn") == "unknown"
    assert render_title("Land Before Time III (1995)", "V") == "Land Before Time III (1995) (V)"


def _write_ml100k(root, n_users=3, per_user=14):
    folder = root / "ml-100k"
    folder.mkdir()
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for user in range(1, n_users + 1):
        for step in range(per_user):
            item = (user * 7 + step) % 20 + 1
            inter.append(f"{user}\t{item}\t{(user + step) % 5 + 1}\t{1000 * user + step}")
    (folder / "ml-100k.inter").write_text("\n".join(inter) + "\n")
    items = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    items += [f"{i}\tMovie {i}, The\t{1980 + i}\tDrama" for i in range(1, 20)]
    items.append("20\tunkonwn\tunkonwn\tunknown")
    (folder / "ml-100k.item").write_text("\n".join(items) + "\n")
    users = ["user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token"]
    users += [f"{u}\t30\tF\tother\t12345" for u in range(1, n_users + 1)]
    (folder / "ml-100k.user").write_text("\n".join(users) + "\n")
    return root


def test_build_and_compare_on_a_small_log(tmp_path):
    root = _write_ml100k(tmp_path)
    assert movie_names(root)[20] == "unknown"
    rebuilt = build_tallrec_movie(root, keep_last=10)  # 3 users x 4 records = 12, keep 10
    frame = rebuilt.frame
    assert frame["split"].value_counts().to_dict() == {"train": 8, "valid": 1, "test": 1}
    assert frame["user"].tolist() == [1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
    assert rebuilt.y.isin([0, 1]).all()
    assert all(
        len(a) + len(b) == 10 for a, b in zip(frame["liked"], frame["disliked"], strict=True)
    )

    folder = tmp_path / "tallrec-movie"
    folder.mkdir()
    for split in ("valid", "test"):
        rows = frame.loc[frame["split"] == split, ["instruction", "input", "output"]]
        (folder / f"{split}.json").write_text(json.dumps(rows.to_dict("records")))
    files = load_tallrec_movie(tmp_path)
    assert compare_with_files(rebuilt, files).identical

    flipped = files.frame.copy()
    flipped.loc[flipped["split"] == "test", "output"] = flipped["output"].map(
        {"Yes.": "No.", "No.": "Yes."}
    )
    files.frame = flipped
    report = compare_with_files(rebuilt, files)
    assert not report.identical
    assert report.mismatches == {"valid": [], "test": [0]}
    assert report.first_difference.startswith("test example 0")


@pytest.mark.slow
def test_rebuilt_valid_and_test_equal_the_shipped_files(real_data):
    root = real_data
    for folder in ("ml-100k", "tallrec-movie"):
        if not (root / folder).is_dir():
            pytest.skip(f"{folder}/ not found under DAYZERO_DATA={root}")
    rebuilt = build_tallrec_movie(root)
    report = compare_with_files(rebuilt, load_tallrec_movie(root))
    assert report.sizes == {"valid": (1000, 1000), "test": (1000, 1000)}
    assert report.identical, report.first_difference
    assert (rebuilt.frame["split"] == "train").sum() == 8000
