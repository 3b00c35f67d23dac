"""The table reading of ``dayzero risk``; it lives in :mod:`dayzero.core.tables` (shared with
:meth:`dayzero.core.schema.Dataset.from_files`) and is re-exported here for the CLI."""

from dayzero.core.tables import (
    EXTENSIONS,
    FORMATS,
    Table,
    TableError,
    output_format,
    read_table,
    sniff_decimal,
    sniff_separator,
    write_table,
)

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "Table",
    "TableError",
    "output_format",
    "read_table",
    "sniff_decimal",
    "sniff_separator",
    "write_table",
]
