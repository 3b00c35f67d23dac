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


def test_the_retrieval_head_adds_columns_a_unit_user_vector_and_a_history_centroid():
    torch.manual_seed(0)
    net = HybridTowers(3, 2, n_items=2, n_users=1, dim=4, hidden=8, n_words=6, retrieval=True)
    net.eval()
    words = (torch.tensor([0, 5]), torch.tensor([0, 1]), torch.tensor([1.0, 1.0]))
    items = net.items(torch.randn(2, 3), torch.tensor([0, -1]), None, words)
    assert items.shape == (2, 10)
    directions, bias = net.retrieval_items(items)
    torch.testing.assert_close(directions.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(bias, items[:, 9])
    users = net.users(
        torch.randn(1, 2),
        torch.tensor([-1]),
        items,
        torch.tensor([5.0, 1.0]),
        torch.zeros(2).long(),
    )
    rows = net.retrieval_users(users, temperature=0.5)
    torch.testing.assert_close(rows.norm(dim=1), torch.tensor([2.0]))
    # content-only items are mapped by the calibration, the others are not
    net.cold_offset.fill_(1.0)
    net.cold_scale.fill_(2.0)
    out = net.calibrated(torch.tensor([3.0, 3.0]), torch.tensor([True, False]))
    torch.testing.assert_close(out, torch.tensor([7.0, 3.0]))


def test_detached_rows_pass_no_gradient_to_the_content_part():
    torch.manual_seed(0)
    net = HybridTowers(3, 2, n_items=2, n_users=1, dim=4, hidden=8, retrieval=True)
    content = torch.randn(2, 3)
    items = net.items(content, torch.tensor([0, 1]), detach=torch.tensor([True, False]))
    items[0].sum().backward()  # only the detached row: the content net gets nothing
    assert all(p.grad is None or not p.grad.any() for p in net.item_net.parameters())
    assert net.item_id.weight.grad[0].any()  # its ID embedding still learns
