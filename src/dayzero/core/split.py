"""The result of a cold-start protocol: a training set and named test segments.

Each segment holds a *support* part (interactions revealed to the model at request time, such as
a new user's first k ratings or a MeLU task's support set) and a *query* part (what is to be
predicted). Evaluation is per user over the query, then averaged over users, and every segment is
reported on its own: cold users and items are never dropped or mixed with warm ones.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dayzero.core.schema import Dataset, Interactions

#: Canonical segment names, in report order.
WARM, NEW_USERS, NEW_ITEMS, NEW_BOTH = "warm", "new_users", "new_items", "new_users_items"
SEGMENTS = (WARM, NEW_USERS, NEW_ITEMS, NEW_BOTH)


@dataclass(frozen=True)
class Segment:
    """One test segment: support revealed at request time, query to predict."""

    name: str
    support: Interactions
    query: Interactions

    def tasks(self) -> Iterator[tuple[Hashable, Interactions, Interactions]]:
        """``(user, support, query)`` per user of the query, in order of first appearance."""
        support = self.support.groupby_user() if len(self.support) else {}
        for user, query in self.query.groupby_user().items():
            sup = support.get(user)
            yield (
                user,
                Interactions(sup) if sup is not None else Interactions.empty(),
                Interactions(query),
            )

    @property
    def n_users(self) -> int:
        return len(self.query.users)


@dataclass
class ColdStartSplit:
    """A training dataset plus test segments produced by one protocol with one seed."""

    train: Dataset
    segments: dict[str, Segment]
    protocol: str
    params: dict[str, Any] = field(default_factory=dict)
    validation: Segment | None = None
    #: Further validation segments (e.g. held-out items), for model selection only.
    validation_segments: dict[str, Segment] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "params": self.params,
            "train_interactions": len(self.train.interactions),
            "segments": {
                name: {
                    "users": seg.n_users,
                    "support": len(seg.support),
                    "query": len(seg.query),
                }
                for name, seg in self.segments.items()
            },
        }
