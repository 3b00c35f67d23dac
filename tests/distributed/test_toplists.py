"""Top-K lists precomputed on a real local Ray cluster: every known user gets the live answer."""

from __future__ import annotations

import numpy as np
import pytest

from dayzero.online.registry import ModelRegistry
from dayzero.online.store import TopList, open_store
from dayzero.serve.state import ServiceState, UserVectorCache

pytestmark = pytest.mark.usefixtures("ray_local")


def test_precomputed_lists_are_the_live_answers(env):
    from dayzero.distributed.toplists import precompute_toplists

    summary = precompute_toplists(env.store, env.registry, k=6, batch_size=7, progress=False)
    registry = ModelRegistry(env.registry)
    assert summary["version"] == registry.current()
    assert summary["users"] == summary["lists"] == 20 and summary["k"] == 6
    live = ServiceState(
        open_store(env.store), registry, user_cache=UserVectorCache(0), toplists=False
    )
    live.start()
    try:
        version = live.require().version
        for user in live.store.known_user_ids():
            stored = live.store.get_toplist(version, user)
            want = live.recommend_user(user, 6, exclude_seen=True)
            assert stored.fresh and stored.toplist.items == want.ids
            np.testing.assert_allclose(stored.toplist.scores, want.scores, rtol=1e-5, atol=1e-6)
    finally:
        live.close()
    # Again for named users with pruning: the other version's lists go, these stay.
    with open_store(env.store) as store:
        old = store.get_toplist(version, "ub5").toplist
        store.put_toplists([TopList(**{**vars(old), "version": "v000000"})])
    again = precompute_toplists(
        env.store, env.registry, k=3, users=["ua0", "ua0", "ub1"], prune=True, progress=False
    )
    assert (again["users"], again["lists"], again["pruned"]) == (2, 2, 1)
    with open_store(env.store) as store:
        assert store.count_toplists() == 20  # same version: replaced in place
        assert store.get_toplist(version, "ua0").toplist.k == 3


def test_bad_arguments_fail_before_ray_work(env, tmp_path):
    from dayzero.distributed.toplists import precompute_toplists

    with pytest.raises(ValueError, match="has no promoted version"):
        precompute_toplists(env.store, tmp_path / "empty-registry", progress=False)
    with pytest.raises(ValueError, match="leave less than one"):
        precompute_toplists(env.store, env.registry, num_actors=2, progress=False)
    with pytest.raises(ValueError, match="must be >= 1"):
        precompute_toplists(env.store, env.registry, k=0, progress=False)
