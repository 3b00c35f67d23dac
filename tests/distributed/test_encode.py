from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import torch

from dayzero.core.templates import Template
from dayzero.distributed.cluster import RayNotInstalledError, require_ray
from dayzero.distributed.encode import MANIFEST, EncoderSpec, encode_catalogue, read_vectors
from dayzero.text.adapters import apply_strategy, save_adapter, strategy_config
from dayzero.text.encoder import TextEncoder

GENRES = [["crime", "drama"], ["comedy"], ["garden", "howto"], [], ["sea", "adventure"]]


def _catalogue(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": [f"i{n - k:03d}" for k in range(n)],  # not sorted: the order must hold
            "title": [f"Item number {k} about {'ships' if k % 2 else 'roses'}" for k in range(n)],
            "genres": [GENRES[k % len(GENRES)] for k in range(n)],
            "blurb": [None if k % 7 == 0 else f"a blurb {k}" for k in range(n)],
        }
    )


def test_fields_on_an_actor_pool_match_the_single_process_encoder(
    ray_local, tmp_path, tiny_bert_dir
):
    catalogue = _catalogue()
    source = tmp_path / "items.parquet"
    catalogue.to_parquet(source)  # list cells come back from Parquet as arrays
    cache = tmp_path / "cache"
    spec = EncoderSpec(model=str(tiny_bert_dir), cache_dir=str(cache))
    manifest = encode_catalogue(
        source, tmp_path / "vectors", fields=["title", "genres"], encoder=spec, num_actors=2,
        cpus_per_actor=0.5, batch_size=8, blocks=4, progress=False,
    )  # fmt: skip
    ids, vectors = read_vectors(tmp_path / "vectors")
    assert ids.tolist() == catalogue["item_id"].tolist()
    assert manifest["rows"] == 40 and manifest["dim"] == vectors.shape[1]
    assert (tmp_path / "vectors" / MANIFEST).is_file()
    local = TextEncoder(tiny_bert_dir, cache_dir=cache)
    texts = Template(["title", "genres"]).render_frame(catalogue)
    assert texts[2] == "Title: Item number 2 about roses | Genres: garden, howto"
    # the actors wrote every vector into the shared cache, under the single-process fingerprint
    found, _ = local.cache.get_many(local.fingerprint(), texts)
    assert found.all()
    fresh = TextEncoder(tiny_bert_dir)  # no cache: encodes again
    np.testing.assert_allclose(vectors, fresh.encode(texts), atol=1e-5)
    with pytest.raises(FileExistsError, match="already holds vectors"):
        encode_catalogue(source, tmp_path / "vectors", fields=["title"], encoder=spec)


def test_an_adapter_is_applied_in_every_actor(ray_local, tmp_path, tiny_bert_dir):
    base = TextEncoder(tiny_bert_dir)
    config = strategy_config("lora", r=4)
    base.model = apply_strategy(base.model, config)
    with torch.no_grad():  # LoRA starts as the identity (B = 0): give it an effect to find
        for name, parameter in base.model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
    save_adapter(base.model, config, tmp_path / "adapter")
    base.eval()
    catalogue = _catalogue(12)
    encode_catalogue(
        catalogue, tmp_path / "v", text_column="blurb", id_column="item_id",
        encoder=EncoderSpec(model=str(tiny_bert_dir), adapter=str(tmp_path / "adapter")),
        num_actors=2, cpus_per_actor=0.5, batch_size=4, blocks=3, normalize=True, progress=False,
    )  # fmt: skip
    ids, vectors = read_vectors(tmp_path / "v")
    texts = ["" if pd.isna(v) else v for v in catalogue["blurb"]]
    np.testing.assert_allclose(vectors, base.encode(texts, normalize=True), atol=1e-5)
    plain = TextEncoder(tiny_bert_dir).encode(texts, normalize=True)
    assert np.abs(vectors - plain).max() > 1e-3  # the adapter changed the vectors
    assert ids.tolist() == catalogue["item_id"].tolist()


def test_bad_requests_name_the_problem(tmp_path):
    frame = _catalogue(3)
    with pytest.raises(ValueError, match="exactly one of text_column, fields or template"):
        encode_catalogue(frame, tmp_path / "a", text_column="title", fields=["title"])
    with pytest.raises(ValueError, match=r"no column\(s\) \['plot'\]"):
        encode_catalogue(frame, tmp_path / "b", text_column="plot")
    with pytest.raises(FileNotFoundError, match="not found"):
        encode_catalogue(tmp_path / "missing.csv", tmp_path / "c", text_column="title")


def test_missing_ray_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RayNotInstalledError, match=r"pip install 'dayzero\[ray\]'"):
        require_ray()
