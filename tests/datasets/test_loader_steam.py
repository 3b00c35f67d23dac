from __future__ import annotations

import gzip
import io
import zipfile

import pandas as pd
import pytest

from dayzero.core.settings import DataNotFoundError
from dayzero.datasets import MalformedDataError
from dayzero.datasets.steam import (
    load_steam_200k,
    load_steam_games,
    load_steam_playtime,
    load_steam_reviews,
    match_steam_200k_to_games,
    normalise_title,
    read_steam_games,
    read_steam_reviews,
)

GAMES = [
    "{u'publisher': u'Kotoshiro', u'genres': [u'Action', u'Indie'], u'app_name': u'Lost Summoner"
    " Kitty', u'title': u'Lost Summoner Kitty', u'url': u'http://store.steampowered.com/app/"
    "761140/Lost_Summoner_Kitty/', u'release_date': u'2018-01-04', u'tags': [u'Strategy'], "
    "u'specs': [u'Single-player'], u'price': 4.99, u'early_access': False, u'id': u'761140', "
    "u'developer': u'Kotoshiro'}",
    "{u'app_name': u'The Elder Scrolls V: Skyrim\u2122', u'url': u'http://store.steampowered.com/"
    "app/72850', u'release_date': u'Nov 10, 2011', u'price': u'Free to Play', "
    "u'early_access': False, u'id': u'72850'}",
    "{u'title': u'Batman', u'url': u'http://store.steampowered.com/app/200260', "
    "u'release_date': u'Coming Soon', u'price': u'Install Now', u'early_access': False}",
    "{u'url': u'http://store.steampowered.com/', u'price': 19.99, u'early_access': False}",
    "{u'title': u'Kitty again', u'url': u'x', u'price': 1.0, u'early_access': True, "
    "u'id': u'761140'}",
]
REVIEWS = (
    "user_id,user_url,funny,posted,last_edited,item_id,helpful,recommend,sentiment_analysis\n"
    "u1,http://x,,2011-11-05,,761140,No ratings yet,True,2\n"
    "u1,http://x,,,,72850,No ratings yet,False,0\n"
    "u2,http://x,,2014-01-24,,999,1 of 2,True,1\n"
)


def _root(tmp_path, games=GAMES, reviews=REVIEWS):
    (tmp_path / "steam-games").mkdir()
    with gzip.open(tmp_path / "steam-games" / "steam_games.json.gz", "wt") as handle:
        handle.write("\n".join(games) + "\n")
    (tmp_path / "steam-reviews").mkdir()
    with gzip.open(tmp_path / "steam-reviews" / "user_reviews_LFarahCometti.csv.gz", "wt") as h:
        h.write(reviews)
    pd.DataFrame(
        {
            "user_id": ["u1", "u3"],
            "item_id": [761140, 555],
            "item_name": ["Lost Summoner Kitty", "Unknown Game"],
            "playtime_forever": [120.0, 5.0],
            "playtime_2weeks": [0.0, 0.0],
        }
    ).to_parquet(tmp_path / "steam-reviews" / "users_items_subset_teamlider.parquet")
    return tmp_path


def test_games_known_answer(tmp_path):
    root = _root(tmp_path)
    assert len(read_steam_games(root)) == 5
    games = load_steam_games(root)
    # No-id record dropped, id recovered from URL, repeated 761140 keeps the first record.
    assert games.ids == [761140, 72850, 200260]
    kitty = games.record(761140)
    assert kitty["title"] == "Lost Summoner Kitty" and kitty["genres"] == ["Action", "Indie"]
    assert kitty["release_date"] == pd.Timestamp("2018-01-04") and kitty["price"] == 4.99
    skyrim = games.record(72850)
    assert skyrim["title"] == "The Elder Scrolls V: Skyrim\u2122"  # from app_name
    assert skyrim["release_date"] == pd.Timestamp("2011-11-10") and skyrim["price"] == 0.0
    assert skyrim["tags"] == [] and pd.isna(skyrim["developer"])
    batman = games.record(200260)
    assert pd.isna(batman["release_date"]) and batman["release_date_text"] == "Coming Soon"
    assert pd.isna(batman["price"]) and batman["price_text"] == "Install Now"
    assert games.fields["tags"] == "multi" and games.fields["title"] == "text"


def test_games_malformed_line(tmp_path):
    root = _root(tmp_path, games=[*GAMES[:2], "{u'title': u'broken'", *GAMES[2:]])
    with pytest.raises(MalformedDataError, match=r"steam_games.json.gz, line 3: not a Python"):
        load_steam_games(root)


def test_reviews_known_answer(tmp_path):
    root = _root(tmp_path)
    data = load_steam_reviews(root)
    inter = data.interactions.frame
    assert inter["user"].tolist() == ["u1", "u1", "u2"]
    assert inter["item"].tolist() == [761140, 72850, 999]
    assert inter["value"].tolist() == [1.0, 0.0, 1.0]
    assert inter["timestamp"].iloc[0] == pd.Timestamp("2011-11-05")
    assert pd.isna(inter["timestamp"].iloc[1])
    assert data.items.ids == [761140, 72850]  # 999 has no metadata
    assert data.n_items == 3
    assert read_steam_reviews(root)["sentiment"].tolist() == [2, 0, 1]
    # The folder itself works too, finding steam-games next to it.
    assert len(load_steam_reviews(root / "steam-reviews").items) == 2
    assert load_steam_reviews(root, with_games=False).items is None


def test_reviews_bad_date_names_line(tmp_path):
    root = _root(tmp_path, reviews=REVIEWS.replace("2014-01-24", "Posted January 24."))
    with pytest.raises(MalformedDataError, match=r"csv.gz, line 4: posted"):
        load_steam_reviews(root)


def test_reviews_missing_file(tmp_path):
    root = _root(tmp_path)
    (root / "steam-reviews" / "user_reviews_LFarahCometti.csv.gz").unlink()
    with pytest.raises(DataNotFoundError, match=r"user_reviews_LFarahCometti.csv.gz"):
        load_steam_reviews(root)


def test_playtime(tmp_path):
    data = load_steam_playtime(_root(tmp_path))
    assert data.interactions.values.tolist() == [120.0, 5.0]
    assert data.items.record(555)["title"] == "Unknown Game"
    assert data.items.record(761140)["genres"] == ["Action", "Indie"]


def _zip(tmp_path, purchase=None, members=None):
    files = {
        "steam/item_info.dat": "Game_ID\tGame Name\n1\tThe Elder Scrolls V Skyrim\n2\tFallout 4\n"
        "3\tLost Summoner Kitty\n",
        "steam/user_info.dat": "New_ID\tReal_ID\n1\t151603712\n2\t187131847\n",
        "steam/game_purchase.dat": purchase
        or "User_ID\tGame_ID\tPurchase\n1\t1\t1.0\n1\t2\t1.0\n2\t3\t1.0\n",
        "steam/game_play.dat": "User_ID\tGame_ID\tHours\n1\t1\t273.0\n",
    }
    if members is not None:
        files = {k: v for k, v in files.items() if k in members}
    folder = tmp_path / "steam-200k"
    folder.mkdir(parents=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    (folder / "steam.zip").write_bytes(buffer.getvalue())
    return folder


def test_steam_200k_and_title_match(tmp_path):
    folder = _zip(tmp_path)
    data = load_steam_200k(folder)
    assert data.interactions.frame["item"].tolist() == [1, 2, 3]
    assert data.items.record(2) == {"name": "Fallout 4"}
    assert data.users.record(1) == {"steam_user_id": 151603712}
    play = load_steam_200k(folder, behaviour="play")
    assert play.interactions.values.tolist() == [273.0]
    games = load_steam_games(_root(tmp_path))
    match = match_steam_200k_to_games(data, games)
    assert match.mapping["app_id"].tolist()[0] == 72850  # "V: Skyrim™" == "V Skyrim"
    assert pd.isna(match.mapping["app_id"].iloc[1])
    assert match.mapping["app_id"].iloc[2] == 761140
    assert match.rate == pytest.approx(2 / 3) and match.interaction_rate == pytest.approx(2 / 3)


def test_steam_200k_malformed_and_missing(tmp_path):
    bad = "User_ID\tGame_ID\tPurchase\n1\t1\t1.0\n1\ttwo\t1.0\n"
    with pytest.raises(MalformedDataError, match=r"game_purchase.dat, line 3: column 'Game_ID'"):
        load_steam_200k(_zip(tmp_path, purchase=bad))
    with pytest.raises(MalformedDataError, match=r"archive lacks steam/item_info.dat"):
        load_steam_200k(_zip(tmp_path / "b", members=["steam/game_purchase.dat"]))
    with pytest.raises(DataNotFoundError, match=r"steam.zip"):
        (tmp_path / "c" / "steam-200k").mkdir(parents=True)
        load_steam_200k(tmp_path / "c")


def test_normalise_title():
    assert normalise_title("The Elder Scrolls V: Skyrim\u2122") == "the elder scrolls v skyrim"
    assert normalise_title("Pok\u00e9mon & Co.") == "pokemon and co"
    assert normalise_title(None) == ""


@pytest.mark.slow
def test_real_counts(real_dataset):
    root = real_dataset("steam-games")
    raw = read_steam_games(root)
    assert len(raw) == 32_135
    games = load_steam_games(root)
    assert len(games) == 32_132  # one record without any id, two repeated app ids

    reviews = load_steam_reviews(real_dataset("steam-reviews"))
    summary = reviews.summary()
    assert summary["interactions"] == 59_161
    assert summary["users"] == 25_467 and summary["items"] == 3_682
    joined = reviews.interactions.frame["item"].isin(reviews.items.frame.index).mean()
    assert joined == pytest.approx(0.91, abs=0.005)
    assert reviews.interactions.frame["timestamp"].isna().sum() == 10_091

    playtime = load_steam_playtime(real_dataset("steam-reviews"))
    assert len(playtime.interactions) == 88_176

    purchase = load_steam_200k(real_dataset("steam-200k"))
    assert len(purchase.interactions) == 129_511
    assert purchase.n_users == 12_393 and purchase.n_items == 5_155
    play = load_steam_200k(real_dataset("steam-200k"), behaviour="play")
    assert len(play.interactions) == 70_489
    match = match_steam_200k_to_games(purchase, games)
    assert 0.6 < match.rate < 0.8  # measured 0.699: steam-games lacks e.g. Skyrim and Spore
