"""text_augment: token dropout, mixup of sentence vectors, FGM on word embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dayzero.risk.text_augment import check_augment, drop_tokens, fgm_loss, mixup_loss


def test_drop_tokens_keeps_order_and_at_least_one_word() -> None:
    rng = np.random.default_rng(0)
    text = "operating profit rose to EUR 13.1 mn from EUR 8.7 mn"
    out = drop_tokens([text] * 200, p=0.3, rng=rng)
    words = text.split()
    for dropped in out:
        kept = dropped.split()
        assert 1 <= len(kept) <= len(words)
        positions = [words.index(w) for w in kept if words.count(w) == 1]
        assert positions == sorted(positions)
    rate = 1 - np.mean([len(d.split()) for d in out]) / len(words)
    assert 0.25 < rate < 0.35
    assert drop_tokens([text], p=0.99, rng=np.random.default_rng(1))[0] in words


def test_drop_tokens_is_seeded_and_leaves_one_token_texts() -> None:
    texts = ["sales fell sharply in the third quarter", "up"]
    a = drop_tokens(texts, 0.5, np.random.default_rng(3))
    b = drop_tokens(texts, 0.5, np.random.default_rng(3))
    assert a == b and a[1] == "up"


def test_drop_tokens_drops_characters_of_text_without_spaces() -> None:
    out = drop_tokens(["房间干净服务很好"] * 50, 0.25, np.random.default_rng(0))
    assert all(" " not in t and 1 <= len(t) <= 8 for t in out)
    assert any(len(t) < 8 for t in out)


def test_mixup_loss_known_answers() -> None:
    torch.manual_seed(0)
    head = nn.Linear(4, 3)
    vectors, targets = torch.randn(5, 4), torch.tensor([0, 1, 2, 1, 0])
    ce = nn.functional.cross_entropy(head(vectors), targets)
    perm = torch.tensor([4, 3, 2, 1, 0])
    assert torch.isclose(mixup_loss(vectors, targets, head, 1.0, perm), ce)
    identity = torch.arange(5)
    assert torch.isclose(mixup_loss(vectors, targets, head, 0.3, identity), ce)
    mixed = 0.5 * vectors + 0.5 * vectors[perm]
    expected = 0.5 * nn.functional.cross_entropy(head(mixed), targets) + 0.5 * (
        nn.functional.cross_entropy(head(mixed), targets[perm])
    )
    assert torch.isclose(mixup_loss(vectors, targets, head, 0.5, perm), expected)


class _BagModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(10, 6)
        self.head = nn.Linear(6, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedding(ids).mean(dim=1))


@pytest.mark.parametrize("frozen_embedding", [False, True])
def test_fgm_adds_a_larger_adversarial_loss_and_writes_no_weights(frozen_embedding) -> None:
    torch.manual_seed(0)
    model = _BagModel()
    model.embedding.requires_grad_(not frozen_embedding)
    ids, targets = torch.tensor([[1, 2, 3], [4, 5, 6]]), torch.tensor([0, 1])
    before = model.embedding.weight.detach().clone()

    def batch_loss() -> torch.Tensor:
        return nn.functional.cross_entropy(model(ids), targets)

    clean = float(batch_loss().detach())
    total = fgm_loss(model.embedding, batch_loss, epsilon=0.5)
    adversarial = float(total.detach()) - clean
    assert adversarial > clean  # the step along the gradient raises the loss
    total.backward()
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0
    assert (model.embedding.weight.grad is None) == frozen_embedding
    torch.testing.assert_close(model.embedding.weight.detach(), before)
    assert not model.embedding._forward_hooks  # hooks removed
    assert torch.isclose(batch_loss(), torch.tensor(clean))


def test_fgm_perturbation_has_norm_epsilon_per_text() -> None:
    torch.manual_seed(1)
    model = _BagModel()
    ids, targets = torch.tensor([[1, 2], [3, 4], [5, 6]]), torch.tensor([0, 1, 1])
    seen: list[torch.Tensor] = []

    def batch_loss() -> torch.Tensor:
        handle = model.embedding.register_forward_hook(lambda m, i, o: seen.append(o.detach()))
        try:
            return nn.functional.cross_entropy(model(ids), targets)
        finally:
            handle.remove()

    fgm_loss(model.embedding, batch_loss, epsilon=0.7)
    delta = seen[1] - seen[0]
    torch.testing.assert_close(delta.flatten(1).norm(dim=1), torch.full((3,), 0.7))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("swap", "none", 0.1, 2, 1.0), "augment must be"),
        (("none", "pgd", 0.1, 2, 1.0), "adversarial must be"),
        (("token-dropout", "none", 1.0, 2, 1.0), "augment_p"),
        (("token-dropout", "none", 0.1, 0, 1.0), "augment_copies"),
        (("none", "fgm", 0.1, 2, 0.0), "adversarial_epsilon"),
    ],
)
def test_check_augment_names_the_parameter(args, match) -> None:
    with pytest.raises(ValueError, match=match):
        check_augment(*args)
