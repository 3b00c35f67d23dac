"""The hybrid two-tower network (DESIGN §4), independent of how text vectors are produced.

Item tower: text vector + attributes -> (factor vector q_i, bias b_i), plus an ID embedding and
ID bias when the item is known. User tower: profile text vector + attributes + a pooled summary
of the items in the user's history (their factor vectors, weighted by the centred ratings) ->
(p_u, b_u), plus the user's ID embedding when known. Rating = mu + b_u + b_i + <p_u, q_i>.

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
    """Both towers and the rating head.

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
    ) -> None:
        super().__init__()
        # One embedding per frequent field value (director=..., actor=...), averaged per item.
        self.item_tokens = nn.EmbeddingBag(max(n_item_tokens, 1), dim + 1, mode="mean")
        nn.init.normal_(self.item_tokens.weight, std=0.01)
        self.item_net = mlp(item_in, hidden, dim + 1, dropout)
        self.user_net = mlp(user_in + 2 * dim + self.HISTORY_STATS, hidden, dim + 1, dropout)
        self.item_id = nn.Embedding(max(n_items, 1), dim + 1)
        self.user_id = nn.Embedding(max(n_users, 1), dim + 1)
        nn.init.zeros_(self.item_id.weight)
        nn.init.zeros_(self.user_id.weight)
        self.mu = nn.Parameter(torch.tensor(float(global_mean)))
        self.dim = dim

    def items(
        self,
        content: torch.Tensor,
        id_rows: torch.Tensor,
        tokens: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``(n, dim + 1)`` item vectors: content part, token bag (``(indices, offsets)``) and
        ID part where ``id_rows >= 0``."""
        out = self.item_net(content)
        if tokens is not None and len(tokens[0]):
            out = out + self.item_tokens(tokens[0], tokens[1])
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
        centred = (history_values - self.mu.detach()).unsqueeze(1)
        factors = history_items[:, : self.dim]
        mean_items = segment_mean(factors, history_users, n)
        weighted = segment_mean(factors * centred, history_users, n)
        stats_in = torch.cat([centred, centred.square()], dim=1)
        stats = segment_mean(stats_in, history_users, n)
        count = torch.zeros(n, dtype=content.dtype, device=content.device).index_add_(
            0, history_users, torch.ones_like(history_values)
        )
        spread = (stats[:, 1] - stats[:, 0].square()).clamp(min=0).sqrt()
        features = torch.cat(
            [
                content,
                mean_items,
                weighted,
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
        return out

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Rating for aligned rows of user and item vectors."""
        d = self.dim
        return self.mu + users[:, d] + items[:, d] + (users[:, :d] * items[:, :d]).sum(dim=1)
