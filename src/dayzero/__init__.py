"""dayzero: cold-start recommendation and risk scoring with pretrained language models."""

from __future__ import annotations

from dayzero.core.schema import Dataset, Entities, IdMap, Interactions
from dayzero.core.templates import FieldSpec, Template, serialize_row

__version__ = "0.1.0"

__all__ = [
    "Dataset",
    "Entities",
    "FieldSpec",
    "IdMap",
    "Interactions",
    "Template",
    "__version__",
    "serialize_row",
]
