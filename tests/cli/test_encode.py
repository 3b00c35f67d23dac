from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dayzero.cli.main import app

runner = CliRunner()


@pytest.fixture
def items(tmp_path):
    path = tmp_path / "items.csv"
    pd.DataFrame(
        {"item_id": ["b", "a", "c"], "title": ["Heat", "Up", "Jaws"], "genre": ["crime", "", "sea"]}
    ).to_csv(path, index=False)
    return path


def test_encode_writes_vectors_on_a_local_ray_cluster(items, tmp_path, tiny_bert_dir):
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'dayzero[ray]'")
    from dayzero.distributed.encode import read_vectors
    from dayzero.text.encoder import TextEncoder

    result = runner.invoke(
        app,
        ["encode", str(items), "--out", str(tmp_path / "v"), "--field", "title", "--field",
         "genre", "--encoder", str(tiny_bert_dir), "--actors", "1", "--cpus-per-actor", "0.5"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 vectors of" in result.output
    ids, vectors = read_vectors(tmp_path / "v")
    assert ids.tolist() == ["b", "a", "c"]
    texts = ["Title: Heat | Genre: crime", "Title: Up", "Title: Jaws | Genre: sea"]
    np.testing.assert_allclose(vectors, TextEncoder(tiny_bert_dir).encode(texts), atol=1e-5)
    manifest = json.loads((tmp_path / "v" / "vectors.json").read_text())
    assert manifest["encoder"]["model"] == str(tiny_bert_dir)


def test_encode_explains_bad_requests(items, tmp_path):
    both = runner.invoke(
        app, ["encode", str(items), "--out", str(tmp_path / "v"), "--text-column", "title",
              "--field", "title"],
    )  # fmt: skip
    assert both.exit_code == 2 and "exactly one of text_column, fields" in both.output
    missing = runner.invoke(app, ["encode", str(tmp_path / "no.csv"), "--out", str(tmp_path / "w"),
                                  "--field", "title"])  # fmt: skip
    assert missing.exit_code == 2 and "not found" in missing.output
