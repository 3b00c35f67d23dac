from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dayzero.cli.main import app

runner = CliRunner()
ARGS = ("evaluate", "--dataset", "steam", "--protocol")
MODELS = ("--model", "item-knn", "--model", "popularity")


@pytest.fixture
def steam_root(tmp_path, monkeypatch):
    """A small steam-games + steam-reviews copy in the loaders' formats (40 games, 60 players)."""
    monkeypatch.delenv("DAYZERO_DATA", raising=False)
    rng = np.random.default_rng(0)
    games = []
    for n in range(40):
        games.append(
            repr(
                {
                    "id": str(1000 + n),
                    "title": f"Game {n}",
                    "app_name": f"Game {n}",
                    "url": f"http://store.steampowered.com/app/{1000 + n}/",
                    "genres": ["Action" if n % 2 else "Puzzle"],
                    "tags": [f"tag{n % 5}"],
                    "specs": ["Single-player"],
                    "developer": f"Studio {n % 3}",
                    "release_date": f"{2010 + n // 8}-0{1 + n % 8}-15",
                    "price": 9.99,
                    "early_access": False,
                }
            )
        )
    (tmp_path / "steam-games").mkdir()
    with gzip.open(tmp_path / "steam-games" / "steam_games.json.gz", "wt") as handle:
        handle.write("\n".join(games) + "\n")
    lines = [
        "user_id,user_url,funny,posted,last_edited,item_id,helpful,recommend,sentiment_analysis"
    ]
    for u in range(60):
        for item in rng.choice(40, size=int(rng.integers(2, 7)), replace=False):
            day = f"2014-{1 + int(rng.integers(0, 12)):02d}-{1 + int(rng.integers(0, 28)):02d}"
            verdict = "True" if rng.random() < 0.9 else "False"
            lines.append(f"p{u},http://x,,{day},,{1000 + int(item)},No ratings yet,{verdict},1")
    (tmp_path / "steam-reviews").mkdir()
    with gzip.open(tmp_path / "steam-reviews" / "user_reviews_LFarahCometti.csv.gz", "wt") as h:
        h.write("\n".join(lines) + "\n")
    return tmp_path


def test_evaluate_steam_new_games_defaults_to_popularity_and_writes_json(steam_root, tmp_path):
    out = tmp_path / "steam.json"
    result = runner.invoke(
        app,
        [*ARGS, "new-games", "--data", str(steam_root), "--output", str(out), "--ci"],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    assert "popularity" in result.output and "new-games" in result.output
    data = json.loads(out.read_text())
    rows = data["results"][0]["rows"]
    assert [r["setting"] for r in rows] == [
        "new games among new games",
        "new games among all games",
    ]
    # Popularity cannot rank a game nobody played: among all games it finds none.
    assert rows[1]["metrics"]["recall@20"] == 0.0
    assert data["split"]["new_games"] >= 1


def test_evaluate_steam_new_players_with_item_knn(steam_root):
    result = runner.invoke(
        app,
        [*ARGS, "new-players", "--data", str(steam_root), *MODELS],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    for text in ("k=1", "k=3", "item-knn", "popularity"):
        assert text in result.output


def test_evaluate_without_model_still_required_for_other_datasets(steam_root):
    result = runner.invoke(app, ["evaluate", "--dataset", "restaurant-uci"], terminal_width=200)
    assert result.exit_code != 0
    assert "--model" in result.output
