"""dayzero.train.domain_adapt: masked-LM adaptation of a tiny random BERT on unlabelled text."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file

from dayzero.text.encoder import TextEncoder
from dayzero.train.domain_adapt import CONFIG_FILE, DomainAdaptConfig, domain_adapt

pytestmark = pytest.mark.usefixtures("one_thread")

TEXTS = [
    "the bank profit is good",
    "the stock market is bad",
    "credit risk and default",
    "the loan income is great",
    "a new bank account with money",
    "the old market and the young player",
    "profit of the stock is good",
    "risk of default on the loan",
]
FAST = {"steps": 3, "batch_size": 4, "progress_bar": False}


@pytest.fixture(scope="module")
def adapted(tiny_bert_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("dapt") / "adapted"
    return domain_adapt(TEXTS, out, encoder=str(tiny_bert_dir), **FAST)


def test_folder_is_a_base_model_that_text_encoder_loads(adapted):
    names = {p.name for p in adapted.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", CONFIG_FILE} <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl"))]
    config = json.loads((adapted / "config.json").read_text())
    assert config["architectures"] == ["BertModel"]  # the base model, no MLM head
    assert not any(
        k.startswith(("cls.", "lm_head.")) for k in load_file(adapted / "model.safetensors")
    )

    encoder = TextEncoder(adapted)
    vectors = encoder.encode(["the bank profit", "a loan"])
    assert vectors.shape == (2, 32)
    assert np.isfinite(vectors).all()
    # Every weight is read from the folder (the pooler too): two loads agree exactly.
    assert TextEncoder(adapted).fingerprint() == encoder.fingerprint()


def test_text_classifier_takes_the_folder_as_encoder(adapted):
    from dayzero.risk.text_classifier import TextClassifier

    y = np.array([1, 0, 0, 1, 1, 0, 1, 0])
    clf = TextClassifier(encoder=str(adapted), random_state=0).fit(TEXTS, y)
    assert clf.predict(TEXTS).shape == (len(TEXTS),)


def test_weights_change_and_the_pooler_is_kept(tiny_bert_dir, adapted):
    before = load_file(tiny_bert_dir / "model.safetensors")
    after = load_file(adapted / "model.safetensors")
    assert set(after) == set(before)
    changed = [k for k in before if not np.array_equal(before[k], after[k])]
    assert any("encoder.layer" in k for k in changed)
    assert any("embeddings.word_embeddings" in k for k in changed)
    # AutoModelForMaskedLM has no pooler; the checkpoint's is written back unchanged.
    assert not any("pooler" in k for k in changed)


def test_masked_lm_loss_falls_on_a_repetitive_corpus(tiny_bert_dir, tmp_path):
    # Known answer: a fresh head over the tiny vocabulary starts near ln(vocab size) (~5.1);
    # 30 steps over 8 short sentences at lr 1e-2 take it to about 2.7 (seed 0).
    out = domain_adapt(
        TEXTS,
        tmp_path / "out",
        encoder=str(tiny_bert_dir),
        steps=30,
        batch_size=8,
        lr=1e-2,
        mlm_probability=0.3,
        progress_bar=False,
    )
    report = DomainAdaptConfig(**json.loads((out / CONFIG_FILE).read_text()))
    vocab = len((tiny_bert_dir / "vocab.txt").read_text().split())
    assert report.steps == 30 and len(report.loss_history) == 30
    assert report.loss_window == 6 and report.warmup_steps == 3
    assert report.loss_first == pytest.approx(np.mean(report.loss_history[:6]), abs=1e-4)
    assert report.loss_first == pytest.approx(np.log(vocab), abs=0.8)
    assert report.loss_last < 0.75 * report.loss_first


def test_seeded_and_deduplicated(tiny_bert_dir, tmp_path):
    texts = [*TEXTS, TEXTS[0], "  ", "", f"  {TEXTS[1]} "]
    runs = [
        domain_adapt(texts, tmp_path / name, encoder=str(tiny_bert_dir), seed=seed, **FAST)
        for name, seed in (("a", 0), ("b", 0), ("c", 1))
    ]
    reports = [json.loads((run / CONFIG_FILE).read_text()) for run in runs]
    assert reports[0]["n_texts"] == len(texts) and reports[0]["n_unique"] == len(TEXTS)
    assert reports[0]["epochs"] == pytest.approx(3 * 4 / len(TEXTS))
    assert reports[0]["loss_history"] == reports[1]["loss_history"]
    assert reports[0]["loss_history"] != reports[2]["loss_history"]
    weights = [load_file(run / "model.safetensors") for run in runs]
    key = "encoder.layer.0.attention.self.query.weight"
    assert np.array_equal(weights[0][key], weights[1][key])
    assert not np.array_equal(weights[0][key], weights[2][key])


def test_one_progress_bar_over_the_steps(tiny_bert_dir, tmp_path, capsys):
    domain_adapt(TEXTS, tmp_path / "out", encoder=str(tiny_bert_dir), steps=2, batch_size=4)
    err = capsys.readouterr().err
    assert "domain-adapt" in err and "2/2" in err
    assert "Writing model shards" not in err and "Loading weights" not in err


def test_overwrite(tiny_bert_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "note.txt").write_text("keep me")
    with pytest.raises(ValueError, match=r"`out_dir`.*not empty.*overwrite=True"):
        domain_adapt(TEXTS, out, encoder=str(tiny_bert_dir), **FAST)
    domain_adapt(TEXTS, out, encoder=str(tiny_bert_dir), overwrite=True, **FAST)
    assert (out / "model.safetensors").is_file() and (out / "note.txt").is_file()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 0}, "`steps` must be an int >= 1"),
        ({"steps": 2.5}, "`steps` must be an int >= 1"),
        ({"batch_size": 0}, "`batch_size`"),
        ({"lr": 0.0}, "`lr` must be > 0"),
        ({"mlm_probability": 1.0}, "`mlm_probability` must be in"),
        ({"warmup_ratio": 1.0}, "`warmup_ratio` must be in"),
    ],
)
def test_settings_out_of_range(tiny_bert_dir, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        domain_adapt(TEXTS, tmp_path / "out", encoder=str(tiny_bert_dir), **kwargs)
    assert not (tmp_path / "out").exists()


def test_no_text_left(tiny_bert_dir, tmp_path):
    with pytest.raises(ValueError, match="`texts` holds no non-empty text"):
        domain_adapt(["", "  ", "\n"], tmp_path / "out", encoder=str(tiny_bert_dir))
    with pytest.raises(ValueError, match="not one str"):
        domain_adapt("the bank", tmp_path / "out", encoder=str(tiny_bert_dir))
    with pytest.raises(ValueError, match="str only"):
        domain_adapt(["the bank", None], tmp_path / "out", encoder=str(tiny_bert_dir))


def test_encoder_without_a_masked_lm_architecture(tmp_path):
    from transformers import GPT2Config

    folder = tmp_path / "gpt2"
    GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=50).save_pretrained(folder)
    with pytest.raises(ValueError, match=r"`encoder`.*no masked-LM architecture"):
        domain_adapt(TEXTS, tmp_path / "out", encoder=str(folder), **FAST)


def test_tokenizer_without_a_mask_token(tiny_bert_dir, tmp_path):
    folder = tmp_path / "no-mask"
    shutil.copytree(tiny_bert_dir, folder)
    config_file = folder / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["mask_token"] = None
    config_file.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="no mask token"):
        domain_adapt(TEXTS, tmp_path / "out", encoder=str(folder), **FAST)
