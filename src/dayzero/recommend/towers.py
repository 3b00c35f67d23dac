"""The hybrid two-tower network (DESIGN §4), independent of how text vectors are produced.

Item tower: text vector + attributes -> (factor vector q_i, bias b_i), plus the mean embedding of
the item's field tokens, the TF-IDF weighted sum of the embeddings of the words of its text (the
lexical part) and an ID embedding and ID bias when the item is known. User tower: profile text
vector + attributes + a pooled summary of the items in the user's history (their factor vectors,
weighted by the centred ratings) -> (p_u, b_u), plus the user's ID embedding when known.
Rating = mu + b_u + b_i + <p_u, q_i>.

With ``retrieval=True`` both towers also output a retrieval part (the same hidden layers, more
output columns): an item vector r_i with a bias beta_i, and a user vector r_u (the network's
output plus the mean unit r_i of the history). Retrieval score = cos(r_u, r_i) / T + beta_i (a
cosine over a temperature T, plus a popularity-like bias), trained by a softmax over items.

ID embeddings are dropped at random in training (DropoutNet), so the same weights serve cold
entities (content only) and warm ones (content + collaborative signal).
"""

from __future__ import annotations

import torch
from torch import nn


def mlp(inputs: int, hidden: int, outputs: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, outputs),
    )


def segment_mean(values: torch.Tensor, segments: torch.Tensor, n: int) -> torch.Tensor:
    """Mean of ``values`` rows per segment id in ``[0, n)``; empty segments give zeros."""
    if n == 1:  # serving one user: a plain mean, much cheaper than a scatter
        if len(values) == 0:
            return values.new_zeros((1, values.shape[1]))
        return values.mean(dim=0, keepdim=True)
    total = values.new_zeros((n, values.shape[1])).index_add_(0, segments, values)
    count = values.new_zeros(n).index_add_(
        0, segments, torch.ones_like(segments, dtype=values.dtype)
    )
    return total / count.clamp(min=1).unsqueeze(1)


class HybridTowers(nn.Module):
    """Both towers, the rating head and (``retrieval=True``) the retrieval head.

    Parameters
    ----------
    item_in, user_in
        Width of the item / user content input (text vector + attributes).
    n_items, n_users
        Rows of the ID tables (known entities; cold ones use no ID row).
    dim, hidden
        Factor size and hidden width.
    global_mean
        Initial value of mu.
    n_item_tokens
        Size of the field-token vocabulary.
    n_words
        Size of the lexical (TF-IDF) vocabulary of the item text; 0: no lexical part.
    retrieval
        Add the retrieval head's output columns (``dim + 1`` more per tower) and the
        calibration of content-only items (``cold_offset``, ``cold_scale``: see
        :meth:`calibrated`).
    """

    HISTORY_STATS = 3  # centred mean rating, rating spread, log(1 + n)

    def __init__(
        self,
        item_in: int,
        user_in: int,
        n_items: int,
        n_users: int,
        dim: int = 64,
        hidden: int = 256,
        dropout: float = 0.1,
        global_mean: float = 0.0,
        n_item_tokens: int = 0,
        n_words: int = 0,
        retrieval: bool = False,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.retrieval = retrieval
        width = 2 * (dim + 1) if retrieval else dim + 1
        # One embedding per frequent field value (director=..., actor=...), averaged per item.
        self.item_tokens = nn.EmbeddingBag(max(n_item_tokens, 1), width, mode="mean")
        nn.init.normal_(self.item_tokens.weight, std=0.01)
        if n_words > 0:
            # One embedding per word of the training items' texts, summed with the item's
            # (unit-length) TF-IDF weights: a rare shared word carries over to a new item.
            self.item_words = nn.EmbeddingBag(n_words, width, mode="sum")
            nn.init.normal_(self.item_words.weight, std=0.01)
        self.item_net = mlp(item_in, hidden, width, dropout)
        pooled = 3 * dim if retrieval else 2 * dim
        self.user_net = mlp(user_in + pooled + self.HISTORY_STATS, hidden, width, dropout)
        self.item_id = nn.Embedding(max(n_items, 1), width)
        self.user_id = nn.Embedding(max(n_users, 1), width)
        nn.init.zeros_(self.item_id.weight)
        nn.init.zeros_(self.user_id.weight)
        self.mu = nn.Parameter(torch.tensor(float(global_mean)))
        if retrieval:
            # Content-only items' retrieval scores are a + b * score (fitted after training on
            # items held out of the content path); buffers, so they are saved, not trained.
            self.register_buffer("cold_offset", torch.tensor(0.0))
            self.register_buffer("cold_scale", torch.tensor(1.0))

    def items(
        self,
        content: torch.Tensor,
        id_rows: torch.Tensor,
        tokens: tuple[torch.Tensor, torch.Tensor] | None = None,
        words: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
        detach: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(n, width)`` item vectors: content part, token bag (``(indices, offsets)``), word
        bag (``(indices, offsets, weights)``) and ID part where ``id_rows >= 0``.

        ``detach`` (bool per row) stops the gradient of those rows' content parts (text,
        attributes, tokens, words): items held out of the content path in training.
        """
        out = self.item_net(content)
        if tokens is not None and len(tokens[0]):
            out = out + self.item_tokens(tokens[0], tokens[1])
        if words is not None and len(words[0]) and hasattr(self, "item_words"):
            out = out + self.item_words(words[0], words[1], per_sample_weights=words[2])
        if detach is not None and bool(detach.any()):
            out = torch.where(detach.unsqueeze(1), out.detach(), out)
        known = id_rows >= 0
        if known.any():
            out = out + self.item_id(id_rows.clamp(min=0)) * known.unsqueeze(1).to(out.dtype)
        return out

    def users(
        self,
        content: torch.Tensor,
        id_rows: torch.Tensor,
        history_items: torch.Tensor,
        history_values: torch.Tensor,
        history_users: torch.Tensor,
    ) -> torch.Tensor:
        """``(n_users, dim + 1)`` user vectors from profile content and pooled history.

        ``history_items`` are item vectors (output of :meth:`items`) for every history row,
        ``history_values`` their ratings and ``history_users`` the row of ``content`` each
        belongs to.
        """
        n = content.shape[0]
        d = self.dim
        centred = (history_values - self.mu.detach()).unsqueeze(1)
        factors = history_items[:, :d]
        mean_items = segment_mean(factors, history_users, n)
        weighted = segment_mean(factors * centred, history_users, n)
        pooled = [mean_items, weighted]
        if self.retrieval:
            directions = nn.functional.normalize(history_items[:, d + 1 : 2 * d + 1], dim=1)
            mean_retrieval = segment_mean(directions, history_users, n)
            pooled.append(mean_retrieval)
        stats_in = torch.cat([centred, centred.square()], dim=1)
        stats = segment_mean(stats_in, history_users, n)
        count = torch.zeros(n, dtype=content.dtype, device=content.device).index_add_(
            0, history_users, torch.ones_like(history_values)
        )
        spread = (stats[:, 1] - stats[:, 0].square()).clamp(min=0).sqrt()
        features = torch.cat(
            [
                content,
                *pooled,
                stats[:, :1],
                spread.unsqueeze(1),
                torch.log1p(count).unsqueeze(1),
            ],
            dim=1,
        )
        out = self.user_net(features)
        known = id_rows >= 0
        if known.any():
            out = out + self.user_id(id_rows.clamp(min=0)) * known.unsqueeze(1).to(out.dtype)
        if self.retrieval:
            # The history's centroid in the retrieval space, refined by the network: with one
            # revealed item a new user already starts from that item's neighbours.
            skip = torch.zeros_like(out)
            skip[:, d + 1 : 2 * d + 1] = mean_retrieval
            out = out + skip
        return out

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Rating for aligned rows of user and item vectors."""
        d = self.dim
        return self.mu + users[:, d] + items[:, d] + (users[:, :d] * items[:, :d]).sum(dim=1)

    def retrieval_users(self, users: torch.Tensor, temperature: float) -> torch.Tensor:
        """``(n, dim)`` user rows of the retrieval head: unit length over the temperature."""
        d = self.dim
        return nn.functional.normalize(users[:, d + 1 : 2 * d + 1], dim=1) / temperature

    def retrieval_items(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(unit vectors (n, dim), biases (n,))`` of items in the retrieval head."""
        d = self.dim
        return nn.functional.normalize(items[:, d + 1 : 2 * d + 1], dim=1), items[:, 2 * d + 1]

    def calibrated(self, scores: torch.Tensor, content_only: torch.Tensor) -> torch.Tensor:
        """Retrieval scores with content-only items' (``content_only`` true) mapped to
        ``cold_offset + cold_scale * score``, so they compete fairly with ID-bearing items."""
        cold = self.cold_offset + self.cold_scale * scores
        return torch.where(content_only, cold, scores)
