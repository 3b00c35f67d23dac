"""Reading and writing the tables of ``dayzero risk``: formats, separators, and errors that name
the file, the line, the column and the fix."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from dayzero.core.tables import (
    TableError,
    output_format,
    read_table,
    sniff_decimal,
    sniff_separator,
    write_table,
)

FRAME = pd.DataFrame(
    {"id": ["a1", "a2", "a3"], "age": [30, 41, 52], "purpose": ["car", "new, used", "tv"]}
)


def _write(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


# ------------------------------------------------------------------------------ formats
@pytest.mark.parametrize(
    ("name", "sep", "expected"),
    [("t.csv", ",", ","), ("t.tsv", "\t", "\t"), ("t.txt", "\t", "\t"), ("t.csv", ";", ";")],
    ids=["csv", "tsv", "txt-tab-sniffed", "csv-semicolon-sniffed"],
)
def test_delimited_files_by_extension_or_sniffed(tmp_path, name, sep, expected):
    FRAME.to_csv(tmp_path / name, sep=sep, index=False)
    table = read_table(tmp_path / name)
    pd.testing.assert_frame_equal(table.frame, FRAME, check_dtype=False)
    assert table.sep == expected and table.frame["age"].tolist() == [30, 41, 52]


def test_sep_given_by_name_or_character(tmp_path):
    FRAME.to_csv(tmp_path / "t.csv", sep="\t", index=False)
    for sep in ("tab", "\t", "\\t"):
        table = read_table(tmp_path / "t.csv", sep=sep)
        assert table.sep == "\t" and list(table.frame.columns) == ["id", "age", "purpose"]
    FRAME.to_csv(tmp_path / "p.dat", sep="|", index=False)
    table = read_table(tmp_path / "p.dat", sep="pipe")  # --sep also makes an unknown extension text
    assert table.frame["purpose"].tolist() == ["car", "new, used", "tv"]


def test_semicolon_file_with_decimal_commas_reads_numbers(tmp_path):
    path = _write(tmp_path / "eu.csv", "age;rate\n30;1,5\n41;2,25\n")
    table = read_table(path)
    assert table.sep == ";" and table.decimal == ","
    assert table.frame["rate"].tolist() == [1.5, 2.25]
    assert "decimal comma" in table.describe()


@pytest.mark.parametrize("name", ["t.parquet", "t.jsonl", "t.csv.gz", "t.tsv.gz"])
def test_parquet_json_lines_and_compressed(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
            FRAME.to_csv(handle, sep="\t" if ".tsv" in name else ",", index=False)
    else:
        write_table(FRAME, path)
    table = read_table(path)
    pd.testing.assert_frame_equal(table.frame, FRAME, check_dtype=False)


def test_json_array_and_utf8_bom(tmp_path):
    path = _write(tmp_path / "t.json", '[{"age": 30, "x": "a"}, {"age": 41, "x": "b"}]')
    assert read_table(path).frame["age"].tolist() == [30, 41]
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfage,x\n30,a\n")
    assert list(read_table(bom).frame.columns) == ["age", "x"]


def test_latin1_with_encoding(tmp_path):
    path = _write(tmp_path / "l.csv", "city,age\nKöln,30\n", encoding="latin-1")
    assert read_table(path, encoding="latin-1").frame["city"].tolist() == ["Köln"]


def test_a_byte_that_is_not_utf8_is_named_by_its_line_in_a_gzipped_file_too(tmp_path):
    raw = "city,age\nBonn,30\nK\u00f6ln,41\n".encode("latin-1")
    plain = tmp_path / "p.csv"
    plain.write_bytes(raw)
    packed = tmp_path / "p.csv.gz"
    packed.write_bytes(gzip.compress(raw))
    for path in (plain, packed):
        with pytest.raises(TableError, match=r"line 3: text is not utf-8"):
            read_table(path)


def test_describe_and_where_count_file_lines(tmp_path):
    # A quoted value over two lines and a blank line: data row 2 is on file line 5.
    path = _write(tmp_path / "m.csv", 'age,note\n30,"two\nlines"\n\n41,x\n')
    table = read_table(path)
    assert table.describe() == "2 rows, 2 columns (comma-separated)"
    assert table.where(0) == "line 2" and table.where(1) == "line 5"
    jsonl = _write(tmp_path / "m.jsonl", '{"a": 1}\n\n{"a": 2}\n')
    assert read_table(jsonl).where(1) == "line 3"


def test_sniffers():
    assert sniff_separator("a\tb\tc\n1\t2,5\t3\n") == "\t"
    assert sniff_separator("a;b\n1;2\n") == ";"
    assert sniff_separator("a|b|c\n1|2|3\n") == "|"
    assert sniff_separator("single\n1\n") == ","
    assert sniff_decimal("a;b\n1,5;2\n", ";") == ","
    assert sniff_decimal("a;b\n1.5;2,5\n", ";") == "."
    assert sniff_decimal("a,b\n1,5\n", ",") == "."


# ------------------------------------------------------------------------------ errors
def _error(path, **kwargs) -> str:
    with pytest.raises(TableError) as caught:
        read_table(path, **kwargs)
    return str(caught.value)


def test_ragged_row_names_the_line_and_the_fix(tmp_path):
    path = _write(tmp_path / "r.tsv", "age\tx\n30\ta\n41\tb\tc\n")
    message = _error(path)
    assert str(path) in message and "line 3" in message and "3 fields" in message
    assert "unquoted tab" in message and "--sep" in message
    short = _write(tmp_path / "s.csv", "age,x,y\n30,a,b\n41\n")
    assert "line 3" in _error(short) and "fields are missing" in _error(short)


def test_wrong_sep_is_named_with_the_one_that_splits_the_file(tmp_path):
    FRAME.to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    message = _error(tmp_path / "t.tsv", sep=";")
    assert "line 1" in message and "tab-separated (3 columns)" in message
    assert "--sep 'tab'" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "is empty"),
        ("   \n", "is empty"),
        ("age,x\n", "header but no rows"),
        (",age\n0,30\n", "column 1 has no name"),
        ("age,age\n1,2\n", "'age' appears 2 times"),
        ('age,x\n1,a\n30,"open\n2,b\n', "line 3: a quote"),
    ],
    ids=["empty", "blank", "header-only", "unnamed", "repeated", "open-quote"],
)
def test_bad_csv_files(tmp_path, text, expected):
    path = _write(tmp_path / "b.csv", text)
    message = _error(path)
    assert str(path) in message and expected in message


def test_bad_json_lines_name_line_and_column(tmp_path):
    broken = _write(tmp_path / "b.jsonl", '{"age": 30}\n{"age": 41,}\n')
    assert "line 2: not a JSON object" in _error(broken)
    nested = _write(tmp_path / "n.jsonl", '{"age": 30}\n{"age": {"years": 41}}\n')
    assert "line 2, column 'age': nested JSON" in _error(nested)
    scalar = _write(tmp_path / "s.jsonl", '{"age": 30}\n[1, 2]\n')
    assert "line 2: list, not an object" in _error(scalar)
    assert "record 2" in _error(_write(tmp_path / "a.json", '[{"a": 1}, 3]'))


def test_files_that_are_not_tables(tmp_path):
    assert "does not exist" in _error(tmp_path / "nope.csv")
    assert "not a file" in _error(tmp_path)
    assert "Excel" in _error(_write(tmp_path / "b.xlsx", "x"))
    assert "pickle" in _error(_write(tmp_path / "f.pkl", "x"))
    unknown = _error(_write(tmp_path / "f.dat", "a,b\n1,2\n"))
    assert "unknown extension '.dat'" in unknown and "--format" in unknown
    zipped = tmp_path / "z.csv"
    zipped.write_bytes(b"PK\x03\x04rest")
    assert "ZIP" in _error(zipped)
    binary = tmp_path / "n.csv"
    binary.write_bytes(b"a,b\n\x00\x01\n")
    assert "NUL" in _error(binary)
    assert "not a readable Parquet" in _error(_write(tmp_path / "p.parquet", "a,b\n1,2\n"))


def test_undecodable_text_names_the_line(tmp_path):
    path = tmp_path / "l.csv"
    path.write_bytes("city,age\nBonn,30\nKöln,41\n".encode("latin-1"))
    message = _error(path)
    assert "line 3" in message and "not utf-8" in message and "--encoding" in message
    assert "not a known text encoding" in _error(path, encoding="klingon")


def test_bad_options(tmp_path):
    FRAME.to_csv(tmp_path / "t.csv", index=False)
    assert "one-character separator" in _error(tmp_path / "t.csv", sep=";;")
    assert "--format 'xls'" in _error(tmp_path / "t.csv", format="xls")
    write_table(FRAME, tmp_path / "t.jsonl")
    assert "--sep applies to delimited" in _error(tmp_path / "t.jsonl", sep=",")
    # --format overrides the extension
    assert read_table(tmp_path / "t.jsonl", format="jsonl").frame.shape == (3, 3)


# ------------------------------------------------------------------------------ writing
@pytest.mark.parametrize(
    ("name", "kind"),
    [("o.csv", "csv"), ("o.tsv", "tsv"), ("o.parquet", "parquet"), ("o.jsonl", "jsonl")],
)
def test_write_then_read_every_format(tmp_path, name, kind):
    assert output_format(tmp_path / name) == kind
    write_table(FRAME, tmp_path / name)
    pd.testing.assert_frame_equal(read_table(tmp_path / name).frame, FRAME, check_dtype=False)


def test_output_errors(tmp_path):
    with pytest.raises(TableError, match=r"extension '\.xlsx'"):
        output_format(tmp_path / "o.xlsx")
    with pytest.raises(TableError, match=r"extension '\.json'"):
        output_format(tmp_path / "o.json")  # JSON arrays are read, JSON Lines are written
    with pytest.raises(TableError, match="does not exist; create it first"):
        output_format(tmp_path / "no" / "o.csv")
