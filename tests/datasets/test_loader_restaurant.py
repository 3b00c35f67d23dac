from __future__ import annotations

import pandas as pd
import pytest

from dayzero.core.settings import DEMO_DATA, DataNotFoundError
from dayzero.datasets import MalformedDataError
from dayzero.datasets.restaurant import FILES, load_restaurant, read_restaurant_ratings

TINY = {
    "rating_final.csv": "userID,placeID,rating,food_rating,service_rating\n"
    "U1,10,2,2,1\nU1,11,0,1,0\nU2,10,1,1,2\nU3,11,2,0,2\n",
    "userprofile.csv": "userID,smoker,drink_level,dress_preference,ambience,transport,"
    "marital_status,hijos,birth_year,interest,personality,religion,activity,color,weight,"
    "budget,height\n"
    "U1,FALSE,abstemious,informal,family,on foot,single,independent,1989,variety,"
    "thrifty-protector,none,student,black,69,medium,1.77\n"
    "U2,?,social drinker,formal,friends,public,married,kids,1960,?,hard-worker,Catholic,"
    "professional,red,80,?,1.60\n",
    "usercuisine.csv": "userID,Rcuisine\nU1,American\nU1,Mexican\nU3,Italian\n",
    "userpayment.csv": "userID,Upayment\nU2,cash\n",
    "geoplaces2.csv": "placeID,latitude,longitude,the_geom_meter,name,address,city,state,"
    "country,fax,zip,alcohol,smoking_area,dress_code,accessibility,price,url,Rambience,"
    "franchise,area,other_services\n"
    "10,22.1,-100.9,X,El Rinc\u00f3n,Calle 1,San Luis Potosi,SLP,Mexico,?,78000,"
    "No_Alcohol_Served,none,informal,completely,low,?,familiar,f,open,none\n"
    "11,18.9,-99.2,Y,Kiku,?,Cuernavaca,Morelos,Mexico,?,?,Wine-Beer,section,casual,"
    "partially,medium,kiku.mx,quiet,t,closed,Internet\n",
    "chefmozcuisine.csv": "placeID,Rcuisine\n10,Mexican\n11,Japanese\n99,Pizzeria\n",
    "chefmozaccepts.csv": "placeID,Rpayment\r\n10,cash\r\n10,VISA\r\n",
    "chefmozparking.csv": "placeID,parking_lot\n10,none\n11,public\n11,valet parking\n",
}


def _write(tmp_path, **changes):
    folder = tmp_path / "restaurant-uci"
    folder.mkdir()
    for name, text in {**TINY, **changes}.items():
        encoding = "latin-1" if name == "geoplaces2.csv" else "utf-8"
        (folder / name).write_text(text, encoding=encoding)
    return folder


def test_tiny_known_answer(tmp_path):
    data = load_restaurant(_write(tmp_path))
    inter = data.interactions.frame
    assert inter["user"].tolist() == ["U1", "U1", "U2", "U3"]
    assert inter["item"].tolist() == [10, 11, 10, 11]
    assert inter["value"].tolist() == [2.0, 0.0, 1.0, 2.0]
    assert data.n_users == 3 and data.n_items == 2

    users = data.users
    assert users.fields["cuisines"] == "multi" and users.fields["birth_year"] == "numeric"
    assert users.record("U1")["cuisines"] == ["American", "Mexican"]
    u2 = users.record("U2")
    assert u2["payments"] == ["cash"] and u2["cuisines"] == []
    assert pd.isna(u2["interest"]) and pd.isna(u2["smoker"]) and pd.isna(u2["budget"])
    assert not bool(users.record("U1")["smoker"])
    # U3 rated but has no profile row: an entity with lists only.
    u3 = users.record("U3")
    assert u3["cuisines"] == ["Italian"]
    assert pd.isna(users.frame.loc["U3", "birth_year"])

    items = data.items
    assert items.ids == [10, 11]
    assert items.record(10)["name"] == "El Rinc\u00f3n"  # Latin-1 decoded
    assert items.record(10)["payments"] == ["cash", "VISA"]
    assert items.record(11)["parking"] == ["public", "valet parking"]
    assert bool(items.record(11)["franchise"]) and not bool(items.record(10)["franchise"])
    assert 99 not in items  # cuisine rows for places not in geoplaces2 are ignored
    assert pd.isna(items.record(11)["address"])  # "?" -> missing


def test_value_choice_and_all_ratings(tmp_path):
    folder = _write(tmp_path)
    assert load_restaurant(folder, value="service_rating").interactions.values.tolist() == [
        1.0,
        0.0,
        2.0,
        2.0,
    ]
    ratings = read_restaurant_ratings(folder)
    assert ratings.columns.tolist() == [
        "user",
        "item",
        "rating",
        "food_rating",
        "service_rating",
    ]
    assert ratings["food_rating"].tolist() == [2, 1, 1, 0]
    with pytest.raises(ValueError, match=r"value must be one of"):
        load_restaurant(folder, value="price")


def test_rating_out_of_range_names_line(tmp_path):
    bad = TINY["rating_final.csv"].replace("U2,10,1,1,2", "U2,10,3,1,2")
    with pytest.raises(MalformedDataError, match=r"rating_final.csv, line 4: rating is 3"):
        load_restaurant(_write(tmp_path, **{"rating_final.csv": bad}))


def test_malformed_number_names_file_and_line(tmp_path):
    bad = TINY["userprofile.csv"].replace(",80,", ",heavy,")
    with pytest.raises(MalformedDataError, match=r"userprofile.csv, line 3: column 'weight'"):
        load_restaurant(_write(tmp_path, **{"userprofile.csv": bad}))


def test_wrong_field_count_names_line(tmp_path):
    bad = TINY["chefmozparking.csv"] + "12,yes,extra\n"
    with pytest.raises(MalformedDataError, match=r"chefmozparking.csv, line 5"):
        load_restaurant(_write(tmp_path, **{"chefmozparking.csv": bad}))


@pytest.mark.parametrize("missing", FILES)
def test_missing_file_is_named(tmp_path, missing):
    folder = _write(tmp_path)
    (folder / missing).unlink()
    with pytest.raises(DataNotFoundError, match=missing):
        load_restaurant(folder)


def test_shipped_copy_loads(no_data_env):
    data = load_restaurant()
    assert len(data.interactions) == 1161
    assert data.n_users == 138 and data.n_items == 130
    assert len(data.items) == 130 and len(data.users) == 138


@pytest.mark.slow
def test_real_counts(real_dataset):
    data = load_restaurant(real_dataset("restaurant-uci"))
    summary = data.summary()
    assert summary["interactions"] == 1161
    assert summary["users"] == 138 and summary["items"] == 130
    # 135 profiles: three raters (in usercuisine but not userprofile) have lists only.
    assert data.users.frame["drink_level"].notna().sum() == 135
    ratings = read_restaurant_ratings(real_dataset("restaurant-uci"))
    assert set(ratings["rating"]) <= {0, 1, 2}


@pytest.mark.slow
def test_shipped_copy_is_identical_to_the_source(real_dataset):
    source = real_dataset("restaurant-uci") / "restaurant-uci"
    for name in FILES:
        assert (DEMO_DATA / "restaurant-uci" / name).read_bytes() == (source / name).read_bytes()
