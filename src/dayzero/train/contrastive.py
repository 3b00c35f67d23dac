"""In-domain contrastive adaptation of a text encoder from behaviour (co-engagement pairs).

Two texts are a positive pair when the same user engaged with both: two items close in the
user's time order (or, without timestamps, adjacent in a seeded random order of the user's
positives), or a user's profile text and an item the user engaged with. :func:`build_pairs`
builds them from :class:`~dayzero.core.schema.Interactions` (deduplicated, capped per user so
heavy users do not dominate); :func:`train_contrastive` trains the encoder on them with an
in-batch softmax (MultipleNegativesRankingLoss-style: each anchor against every positive of the
batch, symmetric, cosine over a temperature) through a transfer strategy of
:mod:`dayzero.text.adapters` and the shared :class:`~dayzero.train.trainer.Trainer`.

Each step encodes every distinct text of its batch once (entity-level encoding: an item that
appears in two pairs goes through the encoder once) and stops at a step budget or a wall-time
budget, whichever comes first.

Examples
--------
>>> pairs = build_pairs(interactions, item_texts, user_texts)  # doctest: +SKIP
>>> top = strategy_config("top_k", k=2)  # doctest: +SKIP
>>> result = train_contrastive(encoder, pairs, strategy=top)  # doctest: +SKIP
>>> result.steps, result.losses[-1]  # doctest: +SKIP
(300, 1.92)
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from dayzero.core.schema import ITEM, TIMESTAMP, USER, VALUE, Interactions
from dayzero.train.callbacks import Callback

ITEM_ITEM = "item-item"
USER_ITEM = "user-item"


@dataclass(frozen=True)
class ContrastiveConfig:
    """How co-engagement pairs are built and the encoder is trained on them.

    Parameters
    ----------
    steps : int, default 300
        Optimizer steps (the step budget).
    batch_pairs : int, default 32
        Pairs per step; every other pair's texts in the batch are an anchor's negatives.
    lr : float, default 1e-4
        Peak learning rate (10 % warmup, then linear decay; AdamW, weight decay 0.01, gradients
        clipped at 1: :meth:`~dayzero.train.trainer.TrainerConfig.encoder_adaptation`).
    temperature : float, default 0.05
        Temperature of the cosine logits.
    symmetric : bool, default True
        Also classify each positive's anchor among the batch's anchors (the loss is the mean
        of both directions).
    window : int, default 2
        Item-item pairs join items at most this many places apart in a user's order.
    max_pairs_per_user : int, default 20
        Cap on each user's item-item pairs, and separately on its user-item pairs (a seeded
        sample is kept), so heavy users do not dominate.
    user_item : bool, default True
        Add user-item pairs for users with a profile text.
    positive_threshold : float, optional
        Interactions with ``value >= positive_threshold`` are engagements; ``None``: all.
    max_length : int, optional, default 64
        Tokens per text during training (shorter than the encoder's ``max_length`` is much
        cheaper on a CPU); ``None`` keeps the encoder's.
    max_seconds : float, optional
        Wall-time budget of the training in seconds; ``None``: the step budget only.
    """

    steps: int = 300
    batch_pairs: int = 32
    lr: float = 1e-4
    temperature: float = 0.05
    symmetric: bool = True
    window: int = 2
    max_pairs_per_user: int = 20
    user_item: bool = True
    positive_threshold: float | None = None
    max_length: int | None = 64
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "window", "max_pairs_per_user"):
            _check_int(getattr(self, name), name, 1)
        _check_int(self.batch_pairs, "batch_pairs", 2)
        for name in ("lr", "temperature"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"ContrastiveConfig: `{name}` must be a number > 0, got {value!r}")
        if self.max_length is not None:
            _check_int(self.max_length, "max_length", 2)
        if self.max_seconds is not None and (
            isinstance(self.max_seconds, bool)
            or not isinstance(self.max_seconds, int | float)
            or self.max_seconds <= 0
        ):
            raise ValueError(
                f"ContrastiveConfig: `max_seconds` must be None or a number > 0, got "
                f"{self.max_seconds!r}"
            )


def _check_int(value: Any, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"ContrastiveConfig: `{name}` must be an int >= {minimum}, got {value!r}")


@dataclass
class CoEngagementPairs:
    """Positive text pairs from behaviour.

    Attributes
    ----------
    texts : list of str
        The distinct texts; entities with the same text share a row.
    anchor, positive : np.ndarray of int
        Rows of ``texts``, one pair per position. Item-item pairs are in the user's order
        (``anchor`` first); user-item pairs have the user's profile as ``anchor``.
    user : np.ndarray of object
        The user whose behaviour gave each pair (the first one, for a pair several users gave).
    kind : np.ndarray of str
        ``"item-item"`` or ``"user-item"``.
    """

    texts: list[str]
    anchor: np.ndarray
    positive: np.ndarray
    user: np.ndarray
    kind: np.ndarray

    def __len__(self) -> int:
        return len(self.anchor)

    def summary(self) -> dict[str, int]:
        """Counts: pairs by kind, distinct texts and users."""
        kinds, counts = np.unique(self.kind, return_counts=True)
        out = {str(k): int(c) for k, c in zip(kinds, counts, strict=True)}
        return {
            "pairs": len(self),
            **out,
            "texts": len(self.texts),
            "users": int(pd.Series(self.user).nunique()),
        }


def build_pairs(
    interactions: Interactions,
    item_texts: Mapping[Hashable, str],
    user_texts: Mapping[Hashable, str] | None = None,
    config: ContrastiveConfig | None = None,
    seed: int = 0,
) -> CoEngagementPairs:
    """Co-engagement pairs of ``interactions``.

    Item-item: each user's engaged items (first engagement of each, items without text left
    out) in time order when the interactions have timestamps, else in a seeded random order;
    every two items at most ``window`` places apart form a pair (earlier item as anchor).
    User-item (``config.user_item``): a user with a non-empty text in ``user_texts`` and each
    item it engaged with. Each user keeps at most ``max_pairs_per_user`` pairs of each kind (a
    seeded sample); a pair of texts several users gave is kept once (the first user's).

    Parameters
    ----------
    interactions : Interactions
        The training interactions.
    item_texts : mapping
        Item id -> text (an item without a text, or with an empty one, is in no pair).
    user_texts : mapping, optional
        User id -> profile text.
    config : ContrastiveConfig, optional
    seed : int, default 0
        Seed of the random orders and the caps' samples.

    Returns
    -------
    CoEngagementPairs

    Raises
    ------
    TypeError
        ``interactions`` is not an ``Interactions``, a text mapping is not a mapping.
    ValueError
        A text is not a string.
    """
    config = ContrastiveConfig() if config is None else config
    if not isinstance(interactions, Interactions):
        raise TypeError(
            f"`interactions` must be dayzero.core.schema.Interactions, got "
            f"{type(interactions).__name__} (Interactions.from_frame(df, ...) builds one)"
        )
    if not isinstance(config, ContrastiveConfig):
        raise TypeError(f"`config` must be a ContrastiveConfig, got {type(config).__name__}")
    items = _texts(item_texts, "item_texts")
    users = {} if user_texts is None else _texts(user_texts, "user_texts")
    rng = np.random.default_rng(seed)

    frame = interactions.frame
    if config.positive_threshold is not None:
        frame = frame[frame[VALUE] >= config.positive_threshold]
    frame = frame[frame[ITEM].map(lambda i: i in items).astype(bool)]
    if interactions.has_timestamp:
        frame = frame.sort_values(TIMESTAMP, kind="stable")
    frame = frame.drop_duplicates([USER, ITEM], keep="first")

    rows: dict[str, int] = {}
    texts: list[str] = []

    def row(text: str) -> int:
        if text not in rows:
            rows[text] = len(texts)
            texts.append(text)
        return rows[text]

    anchors: list[int] = []
    positives: list[int] = []
    owners: list[Hashable] = []
    kinds: list[str] = []
    seen: set[tuple[int, int]] = set()

    def add(owner: Hashable, kind: str, pairs: list[tuple[int, int]]) -> None:
        if len(pairs) > config.max_pairs_per_user:
            keep = np.sort(rng.choice(len(pairs), size=config.max_pairs_per_user, replace=False))
            pairs = [pairs[k] for k in keep]
        for a, b in pairs:
            key = (min(a, b), max(a, b))
            if a == b or key in seen:
                continue
            seen.add(key)
            anchors.append(a)
            positives.append(b)
            owners.append(owner)
            kinds.append(kind)

    codes, order = pd.factorize(frame[USER], sort=False)
    by_user = pd.Series(np.arange(len(frame))).groupby(codes, sort=True).indices
    item_col = frame[ITEM].to_numpy()
    for code in sorted(by_user):
        user = order[code]
        sequence = [row(items[i]) for i in item_col[by_user[code]]]
        if not interactions.has_timestamp:
            sequence = [sequence[k] for k in rng.permutation(len(sequence))]
        pairs = [
            (sequence[k], sequence[k + d])
            for k in range(len(sequence))
            for d in range(1, config.window + 1)
            if k + d < len(sequence)
        ]
        add(user, ITEM_ITEM, pairs)
        if config.user_item and users.get(user):
            profile = row(users[user])
            add(user, USER_ITEM, [(profile, item) for item in dict.fromkeys(sequence)])
    return CoEngagementPairs(
        texts=texts,
        anchor=np.asarray(anchors, dtype=np.int64),
        positive=np.asarray(positives, dtype=np.int64),
        user=_objects(owners),
        kind=_objects(kinds),
    )


def _objects(values: list) -> np.ndarray:
    """A 1-D object array of ``values`` (tuple ids stay elements, not rows)."""
    out = np.empty(len(values), dtype=object)
    for k, value in enumerate(values):
        out[k] = value
    return out


def _texts(texts: Any, name: str) -> dict[Hashable, str]:
    if not isinstance(texts, Mapping):
        raise TypeError(f"`{name}` must be a mapping of id -> text, got {type(texts).__name__}")
    out = {}
    for key, text in texts.items():
        if not isinstance(text, str):
            raise ValueError(
                f"`{name}`[{key!r}] must be a str (use '' for an entity without text), got "
                f"{type(text).__name__}"
            )
        if text.strip():
            out[key] = text
    return out


@dataclass
class ContrastiveResult:
    """What :func:`train_contrastive` did.

    Attributes
    ----------
    losses : list of float
        The loss of each step.
    steps : int
        Steps taken (fewer than ``config.steps`` when the wall-time budget ran out).
    seconds : float
        Wall time of the training.
    stopped_by_time : bool
        Whether the wall-time budget ended it.
    pairs : dict
        :meth:`CoEngagementPairs.summary` of the pairs trained on.
    """

    losses: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    stopped_by_time: bool = False
    pairs: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (first and last loss instead of every step's)."""
        return {
            "steps": self.steps,
            "seconds": round(self.seconds, 2),
            "stopped_by_time": self.stopped_by_time,
            "first_loss": self.losses[0] if self.losses else None,
            "last_loss": float(np.mean(self.losses[-10:])) if self.losses else None,
            "pairs": self.pairs,
        }


class _TimeBudget(Callback):
    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.started = time.perf_counter()
        self.fired = False

    def on_train_begin(self, trainer: Any) -> None:
        self.started = time.perf_counter()

    def after_optimizer_step(self, trainer: Any, step: int) -> None:
        if self.seconds is not None and time.perf_counter() - self.started >= self.seconds:
            trainer.should_stop = self.fired = True


def in_batch_loss(
    anchors: torch.Tensor,
    positives: torch.Tensor,
    anchor_rows: np.ndarray,
    positive_rows: np.ndarray,
    temperature: float,
    symmetric: bool = True,
) -> torch.Tensor:
    """In-batch softmax over L2-normalised vectors: anchor ``i``'s positive is column ``i``
    among every positive of the batch (and, ``symmetric``, positive ``i``'s anchor among the
    anchors). A column that holds the same text as the row's target or as the row itself is
    masked (it is not a negative)."""
    target = torch.arange(len(anchor_rows))
    eye = np.eye(len(anchor_rows), dtype=bool)
    logits = anchors @ positives.T / temperature
    mask = (positive_rows[None, :] == positive_rows[:, None]) | (
        positive_rows[None, :] == anchor_rows[:, None]
    )
    loss = torch.nn.functional.cross_entropy(
        logits.masked_fill(torch.from_numpy(mask & ~eye), -torch.inf), target
    )
    if not symmetric:
        return loss
    back = (anchor_rows[None, :] == anchor_rows[:, None]) | (
        anchor_rows[None, :] == positive_rows[:, None]
    )
    reverse = torch.nn.functional.cross_entropy(
        logits.T.masked_fill(torch.from_numpy(back & ~eye), -torch.inf), target
    )
    return (loss + reverse) / 2


def train_contrastive(
    encoder: Any,
    pairs: CoEngagementPairs,
    config: ContrastiveConfig | None = None,
    strategy: Any = None,
    seed: int = 0,
    progress: bool = False,
) -> ContrastiveResult:
    """Adapt ``encoder`` so that co-engaged texts get close vectors.

    Parameters
    ----------
    encoder : TextEncoder
        Trained in place (its ``model`` is replaced when ``strategy`` wraps it, e.g. LoRA);
        left in eval mode.
    pairs : CoEngagementPairs
        From :func:`build_pairs`; at least two pairs.
    config : ContrastiveConfig, optional
    strategy : a strategy config of :mod:`dayzero.text.adapters`, optional
        Applied to ``encoder.model`` first (``strategy_config("top_k", k=2)``, ``"lora"``, ...);
        ``None``: the encoder's parameters train as they are set (a strategy applied before).
    seed : int, default 0
        Seeds the batches and the trainer.
    progress : bool, default False
        One progress bar over the steps.

    Returns
    -------
    ContrastiveResult

    Raises
    ------
    TypeError
        ``encoder`` is not a text encoder, ``pairs`` not a ``CoEngagementPairs``.
    ValueError
        Fewer than two pairs, or no trainable parameter (the ``frozen`` strategy).
    """
    from dayzero.text.adapters import apply_strategy
    from dayzero.train.index_dataset import IndexDataset
    from dayzero.train.trainer import Trainer, TrainerConfig

    config = ContrastiveConfig() if config is None else config
    if not isinstance(config, ContrastiveConfig):
        raise TypeError(f"`config` must be a ContrastiveConfig, got {type(config).__name__}")
    if not all(hasattr(encoder, a) for a in ("tokenize", "embed", "model")):
        raise TypeError(
            f"`encoder` must be a dayzero.text.encoder.TextEncoder, got {type(encoder).__name__}"
        )
    if not isinstance(pairs, CoEngagementPairs):
        raise TypeError(
            f"`pairs` must be CoEngagementPairs (build_pairs), got {type(pairs).__name__}"
        )
    if len(pairs) < 2:
        raise ValueError(
            f"`pairs` holds {len(pairs)} pair(s); the in-batch softmax needs at least 2 (users "
            "with two or more engaged items that have texts, or profile texts)"
        )
    if strategy is not None:
        encoder.model = apply_strategy(encoder.model, strategy)
    if not any(p.requires_grad for p in encoder.parameters()):
        raise ValueError(
            "`encoder` has no trainable parameter (the 'frozen' strategy); pass `strategy`, e.g. "
            "dayzero.text.adapters.strategy_config('top_k', k=2) or 'lora'"
        )
    batch = min(config.batch_pairs, len(pairs))
    rng = np.random.default_rng(seed)
    queue: list[int] = []

    def next_batch() -> np.ndarray:
        while len(queue) < batch:
            queue.extend(rng.permutation(len(pairs)).tolist())
        chosen = np.asarray(queue[:batch])
        del queue[:batch]
        return chosen

    def loss_fn(_: torch.nn.Module, positions: torch.Tensor) -> torch.Tensor:
        chosen = next_batch()
        a_rows, p_rows = pairs.anchor[chosen], pairs.positive[chosen]
        unique = np.unique(np.concatenate([a_rows, p_rows]))
        vectors = torch.nn.functional.normalize(
            encoder.embed(encoder.tokenize([pairs.texts[r] for r in unique])), dim=-1
        )
        return in_batch_loss(
            vectors[torch.from_numpy(np.searchsorted(unique, a_rows))],
            vectors[torch.from_numpy(np.searchsorted(unique, p_rows))],
            a_rows,
            p_rows,
            config.temperature,
            config.symmetric,
        )

    trainer_config = TrainerConfig.encoder_adaptation(
        config.lr, config.steps, batch, seed, progress
    )
    budget = _TimeBudget(config.max_seconds)
    full_length = encoder.max_length
    if config.max_length is not None:
        encoder.max_length = min(full_length, config.max_length)
    try:
        history = Trainer(encoder, trainer_config, loss_fn, callbacks=[budget]).fit(
            IndexDataset(config.steps * batch)
        )
    finally:
        encoder.max_length = full_length
        encoder.eval()
        encoder.invalidate_fingerprint()
    return ContrastiveResult(
        losses=history.losses,
        steps=len(history.losses),
        seconds=history.wall_time_s,
        stopped_by_time=budget.fired,
        pairs=pairs.summary(),
    )


__all__ = [
    "ITEM_ITEM",
    "USER_ITEM",
    "CoEngagementPairs",
    "ContrastiveConfig",
    "ContrastiveResult",
    "build_pairs",
    "in_batch_loss",
    "train_contrastive",
]
