"""``dayzero.cli.tabular`` is the risk CLI's name for :mod:`dayzero.core.tables` (tested in
tests/core/test_tables.py): the same objects, not copies."""

from __future__ import annotations

from dayzero.cli import tabular
from dayzero.core import tables


def test_cli_tabular_reexports_core_tables():
    for name in tabular.__all__:
        assert getattr(tabular, name) is getattr(tables, name)
    assert tabular.read_table is tables.read_table
