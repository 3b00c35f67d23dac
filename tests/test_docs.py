"""Every ```python block of README.md and docs/*.md runs.

README.md's sections are read on their own, so each of its blocks runs in a fresh namespace (a
block that leans on a name from another section fails here). A docs page is read top to bottom,
so its blocks run in page order in one namespace. Blocks run in a temporary folder (a block may
write files), offline, on the data shipped in the package (``DAYZERO_DATA`` unset).

A block preceded by an HTML comment is treated as it says, and the reason is shown by pytest:

* ``<!-- doctest: skip (needs ML-1M) -->``: never run (real datasets outside the package);
* ``<!-- doctest: slow (fits the MiniLM two-tower) -->``: run only by the ``slow`` tests.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FRESH_PER_BLOCK = {"README.md"}

FENCE = re.compile(r"^```(\S*)\s*$")
MARKER = re.compile(r"^<!--\s*doctest:\s*(\w+)\s*(?:\((.*)\))?\s*-->\s*$")
MARKS = ("skip", "slow")


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # 1-based line of the first code line
    code: str
    mark: str | None = None
    reason: str | None = None

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


class MarkerError(ValueError):
    pass


def parse_blocks(text: str, page: str) -> list[Block]:
    """The ```python blocks of a markdown text, each with the doctest marker before it."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    last_text: str | None = None  # the last non-blank line before the current one
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence is None:
            if lines[i].strip():
                last_text = lines[i].strip()
            i += 1
            continue
        language, start = fence.group(1), i + 1
        end = start
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        if language == "python":
            mark = reason = None
            marker = MARKER.match(last_text or "")
            if marker is not None:
                mark, reason = marker.group(1), (marker.group(2) or "").strip()
                if mark not in MARKS or not reason:
                    raise MarkerError(
                        f"{page}:{start}: the marker before this block must read "
                        f"<!-- doctest: skip (reason) --> or <!-- doctest: slow (reason) -->"
                    )
            code = "\n".join(lines[start:end]) + "\n"
            blocks.append(Block(page, start + 1, code, mark, reason))
        last_text = None
        i = end + 1
    return blocks


def run_block(block: Block, namespace: dict) -> None:
    """Execute ``block`` in ``namespace``; a traceback names the page and its line."""
    padded = "\n" * (block.line - 1) + block.code
    exec(compile(padded, block.page, "exec"), namespace)


def _page_blocks() -> dict[str, list[Block]]:
    return {
        str(path.relative_to(ROOT)): parse_blocks(path.read_text(encoding="utf-8"), path.name)
        for path in PAGES
    }


BLOCKS = _page_blocks()
SINGLE = [b for page, blocks in BLOCKS.items() if page in FRESH_PER_BLOCK for b in blocks]
ORDERED = {
    page: blocks for page, blocks in BLOCKS.items() if page not in FRESH_PER_BLOCK and blocks
}


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAYZERO_DATA", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def _run_single(block: Block, slow: bool) -> None:
    if block.mark == "skip":
        pytest.skip(f"{block.name}: {block.reason}")
    if block.mark == "slow" and not slow:
        pytest.skip(f"{block.name}: slow ({block.reason})")
    if block.mark != "slow" and slow:
        pytest.skip(f"{block.name}: runs in the fast test")
    run_block(block, {"__name__": "__docs__"})


def _run_page(blocks: list[Block], slow: bool) -> None:
    namespace: dict = {"__name__": "__docs__"}
    if slow and not any(b.mark == "slow" for b in blocks):
        pytest.skip("no slow block on this page")
    if not slow and not any(b.mark is None for b in blocks):
        pytest.skip("no fast block on this page")
    for block in blocks:
        if block.mark == "skip" or (block.mark == "slow" and not slow):
            continue
        run_block(block, namespace)


@pytest.mark.parametrize("block", SINGLE, ids=lambda b: b.name)
def test_readme_block(block: Block, sandbox) -> None:
    _run_single(block, slow=False)


@pytest.mark.parametrize("page", sorted(ORDERED))
def test_docs_page(page: str, sandbox) -> None:
    _run_page(ORDERED[page], slow=False)


@pytest.mark.slow
@pytest.mark.parametrize("block", SINGLE, ids=lambda b: b.name)
def test_readme_block_slow(block: Block, sandbox) -> None:
    _run_single(block, slow=True)


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(ORDERED))
def test_docs_page_slow(page: str, sandbox) -> None:
    _run_page(ORDERED[page], slow=True)


# ---------------------------------------------------------------- the harness itself

SAMPLE = """\
# A page

```python
x = 1
```

```bash
echo not python
```

<!-- doctest: skip (needs ML-1M) -->

```python
raise RuntimeError("never run")
```

<!-- doctest: slow (a long fit) -->
```python
y = x + 1
```

Text between a marker and a block cancels it.
```python
z = x + 2
```
"""


def test_parse_blocks_finds_python_blocks_and_markers() -> None:
    blocks = parse_blocks(SAMPLE, "sample.md")
    assert [(b.line, b.mark, b.reason) for b in blocks] == [
        (4, None, None),
        (14, "skip", "needs ML-1M"),
        (19, "slow", "a long fit"),
        (24, None, None),
    ]
    assert blocks[0].code == "x = 1\n"


def test_page_order_shares_names_and_honours_markers() -> None:
    blocks = parse_blocks(SAMPLE, "sample.md")
    namespace: dict = {}
    for block in blocks:
        if block.mark is None:
            run_block(block, namespace)
    assert namespace["x"] == 1 and namespace["z"] == 3 and "y" not in namespace


def test_a_raising_block_fails_with_the_page_line() -> None:
    block = parse_blocks("text\n\n```python\nok = 1\nundefined_name\n```\n", "p.md")[0]
    with pytest.raises(NameError, match="undefined_name") as info:
        run_block(block, {})
    frame = traceback.extract_tb(info.value.__traceback__)[-1]
    assert (frame.filename, frame.lineno) == ("p.md", 5)


def test_a_marker_without_a_reason_is_refused() -> None:
    with pytest.raises(MarkerError, match=r"p\.md:2"):
        parse_blocks("<!-- doctest: skip -->\n```python\npass\n```\n", "p.md")
    with pytest.raises(MarkerError, match=r"p\.md:2"):
        parse_blocks("<!-- doctest: later (x) -->\n```python\npass\n```\n", "p.md")


def test_every_page_has_blocks_that_run() -> None:
    assert SINGLE, "README.md has no python block"
    fast = [b for b in SINGLE if b.mark is None]
    assert fast, "every README block is skipped"
    for page in ("docs/tutorial.md", "docs/recommendation.md", "docs/risk.md"):
        assert any(b.mark is None for b in ORDERED[page]), f"{page}: no block runs"
