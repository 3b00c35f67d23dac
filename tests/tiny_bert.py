"""Tiny random BERT models written to a folder: for tests and examples where the real pretrained
encoder is not the point (seconds to build, kilobytes on disk, loads like any Hugging Face model).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
DEFAULT_WORDS = (
    "a the of and is to in for with on movie film comedy drama action horror romance love war "
    "space alien robot family kids animation toy funny sad scary thriller crime police music "
    "good bad great loan credit bank account money job income risk default user item title plot "
    "genre year rating restaurant food game player new old young city country stock market profit"
).split()


def build_tiny_bert(
    folder: str | Path,
    words: Iterable[str] = DEFAULT_WORDS,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    max_length: int = 64,
    seed: int = 0,
) -> Path:
    """Write a randomly initialised BERT (model + WordPiece tokenizer) to ``folder``.

    The vocabulary is the special tokens, the given words and single characters (so any
    lowercase ASCII text tokenises without ``[UNK]`` storms). Deterministic for a given seed.
    """
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,!?-'")
    pieces = [f"##{c}" for c in chars]
    vocab = list(dict.fromkeys([*SPECIAL_TOKENS, *words, *chars, *pieces]))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True)
    tokenizer.model_max_length = max_length
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=hidden_size * 2,
        max_position_embeddings=max_length,
        type_vocab_size=2,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)
    return folder
