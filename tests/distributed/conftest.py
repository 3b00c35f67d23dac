"""A real local Ray cluster (2 CPUs) shared by the distributed tests; they skip without Ray."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_local():
    """``ray.init(num_cpus=2)`` once per session (the CI machine has 2 cores); shut down after."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'dayzero[ray]'")
    from dayzero.distributed.cluster import ray_cluster

    with ray_cluster(num_cpus=2, progress=False):
        yield ray


# The served environment of the service tests (a store and a registry with one version).
from tests.serve.conftest import env, served_env  # noqa: E402, F401
