from __future__ import annotations

import torch

from dayzero.recommend.towers import HybridTowers, segment_mean


def test_segment_mean_with_empty_segments_and_single_user():
    values = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    out = segment_mean(values, torch.tensor([0, 0, 2]), 3)
    torch.testing.assert_close(out, torch.tensor([[2.0, 3.0], [0.0, 0.0], [5.0, 6.0]]))
    one = segment_mean(values, torch.zeros(3, dtype=torch.long), 1)
    torch.testing.assert_close(one, torch.tensor([[3.0, 4.0]]))
    empty = segment_mean(values[:0], torch.zeros(0, dtype=torch.long), 1)
    torch.testing.assert_close(empty, torch.zeros(1, 2))


def test_ids_only_count_for_known_rows_and_scores_are_dot_plus_biases():
    torch.manual_seed(0)
    net = HybridTowers(
        item_in=3,
        user_in=2,
        n_items=2,
        n_users=1,
        dim=4,
        hidden=8,
        global_mean=3.0,
        n_item_tokens=5,
    )
    net.eval()  # no dropout: outputs must be comparable
    with torch.no_grad():
        net.item_id.weight.fill_(1.0)
    content = torch.randn(2, 3)
    known = net.items(content, torch.tensor([0, 1]))
    cold = net.items(content, torch.tensor([-1, -1]))
    torch.testing.assert_close(known - cold, torch.ones(2, 5))
    tokens = (torch.tensor([1, 2, 3]), torch.tensor([0, 1]))
    with_tokens = net.items(content, torch.tensor([-1, -1]), tokens)
    assert not torch.allclose(with_tokens, cold)
    user = net.users(
        torch.randn(1, 2), torch.tensor([-1]), cold, torch.tensor([5.0, 1.0]), torch.tensor([0, 0])
    )
    score = net.score(user.expand(2, -1), cold)
    expected = 3.0 + user[0, 4] + cold[:, 4] + (user[:, :4] * cold[:, :4]).sum(1)
    torch.testing.assert_close(score, expected)
