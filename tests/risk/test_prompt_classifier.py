"""PromptClassifier: in-context few-shot scoring with a causal LM (a tiny random Llama here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dayzero.risk.prompt_classifier import PromptClassifier
from tests.tiny_bert import build_tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")

TEXTS = ["profit rose", "record profit", "good year", "loss widened", "bad loan", "default risk"]
LABELS = ["pos", "pos", "pos", "neg", "neg", "neg"]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> str:
    """A random 2-layer Llama saved with the tiny WordPiece tokenizer (any tokenizer works)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    build_tiny_bert(folder / "tok")
    tokenizer = AutoTokenizer.from_pretrained(folder / "tok")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder / "lm")
    tokenizer.save_pretrained(folder / "lm")
    return str(folder / "lm")


def _direct_log_prob(clf: PromptClassifier, text: str, word: str) -> float:
    """log p(word | prefix + text) by one forward pass over the whole prompt: no prefix cache,
    no batching or padding (the token pieces as the classifier cuts them)."""
    tok, lm = clf.tokenizer_, clf.model_
    head = clf.prefix_.rstrip("\n")
    sep = clf.prefix_[len(head) :]
    prefix = tok(head, add_special_tokens=True)["input_ids"]
    query = tok(sep + clf.template.replace("{text}", text), add_special_tokens=False)["input_ids"]
    answer = tok(" " + word, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prefix + query + answer])
    with torch.no_grad():
        logits = lm(ids).logits[0].log_softmax(-1)
    start = len(prefix) + len(query)
    return float(sum(logits[start - 1 + i, t] for i, t in enumerate(answer)))


def test_fit_draws_balanced_seeded_demonstrations(tiny_llama) -> None:
    clf = PromptClassifier(model=tiny_llama, k_shots=4, random_state=1).fit(TEXTS, LABELS)
    labels = [label for _, label in clf.demonstrations_]
    assert sorted(labels) == ["neg", "neg", "pos", "pos"]
    again = PromptClassifier(model=tiny_llama, k_shots=4, random_state=1).fit(TEXTS, LABELS)
    assert again.demonstrations_ == clf.demonstrations_
    assert list(clf.classes_) == ["neg", "pos"]


def test_probabilities_are_a_softmax_over_label_words(tiny_llama) -> None:
    clf = PromptClassifier(model=tiny_llama, k_shots=2, calibrate=False).fit(TEXTS, LABELS)
    proba = clf.predict_proba(["profit", "loss widened again"])
    assert proba.shape == (2, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert set(clf.predict(["profit"])) <= {"neg", "pos"}
    calibrated = PromptClassifier(model=tiny_llama, k_shots=2).fit(TEXTS, LABELS)
    assert calibrated.predict_proba(["profit"]).shape == (1, 2)


def test_label_scores_match_a_forward_pass_without_the_prefix_cache(tiny_llama) -> None:
    """Known answer: the cached-prefix scores equal log p(word | whole prompt) computed directly."""
    clf = PromptClassifier(
        model=tiny_llama,
        k_shots=2,
        calibrate=False,
        label_words={"pos": "good", "neg": "bad"},
        random_state=0,
    ).fit(TEXTS, LABELS)
    text = "profit rose"
    direct = np.array([_direct_log_prob(clf, text, w) for w in clf.words_])
    expected = np.exp(direct - direct.max())
    expected /= expected.sum()
    np.testing.assert_allclose(clf.predict_proba([text])[0], expected, atol=1e-4)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"k_shots": -1}, "k_shots"),
        ({"template": "no slot"}, "template"),
        ({"batch_size": 0}, "batch_size"),
        ({"label_words": {"pos": "good"}}, "no word for classes"),
        ({"label_words": {"pos": "good", "neg": "good"}}, "distinct words"),
        ({"label_words": {"pos": "a", "neg": "b", "zero": "c"}}, "not classes of y"),
    ],
)
def test_bad_parameters_name_the_fix(tiny_llama, params, match) -> None:
    with pytest.raises(ValueError, match=match):
        PromptClassifier(model=tiny_llama, **params).fit(TEXTS, LABELS)


def test_empty_text_names_the_row(tiny_llama) -> None:
    clf = PromptClassifier(model=tiny_llama, k_shots=0).fit(TEXTS, LABELS)
    with pytest.raises(ValueError, match=r"X\[1\] is an empty text"):
        clf.predict(["fine", " "])
