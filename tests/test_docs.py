"""The docs teach only what is true: the teaching pages' Python blocks run and assert their own
numbers against the model, the Chinese pages (README.zh.md too) carry the same examples,
commands and numbers as the English ones, every page is indexed, and every relative link and
image exists. tests/test_doc_commands.py checks the commands themselves."""

import re
from pathlib import Path

import pytest

from conftest import ROOT

DOCS = ROOT / "docs"
PAIRS = [("architecture.md", "architecture.zh.md"), ("getting_started.md", "getting_started.zh.md")]
# pages translated whose examples need the network (downloads): compared, not run
TRANSLATED = PAIRS + [("finetune.md", "finetune.zh.md"), ("../README.md", "../README.zh.md")]


def python_blocks(page: str):
    text = (DOCS / page).read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def numbers(page: str):
    """The numbers a reader could check: those with a thousands separator or a decimal point."""
    text = (DOCS / page).read_text(encoding="utf-8")
    return sorted(set(re.findall(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?![\d,])|(?<![\w.])\d+\.\d+",
                                 text)))


@pytest.mark.parametrize("page", [p for pair in PAIRS for p in pair])
def test_the_pages_python_blocks_run_and_check_themselves(page):
    blocks = python_blocks(page)
    if page.startswith("architecture"):
        assert len(blocks) >= 8, "the architecture page derives its numbers in code"
    namespace = {"__name__": "docs"}
    for index, block in enumerate(blocks):
        try:
            exec(compile(block, f"{page} block {index + 1}", "exec"), namespace)
        except Exception as error:  # name the block, so the page can be fixed
            raise AssertionError(f"{page}, Python block {index + 1} fails: {error!r}") from None


@pytest.mark.parametrize("english,chinese", TRANSLATED)
def test_the_chinese_pages_carry_the_same_examples_commands_and_numbers(english, chinese):
    from test_doc_commands import commands_of

    assert python_blocks(chinese) == python_blocks(english)
    assert numbers(chinese) == numbers(english)
    texts = [(DOCS / page).read_text(encoding="utf-8") for page in (english, chinese)]
    assert [words for _, words in commands_of(texts[1])] == \
        [words for _, words in commands_of(texts[0])]
    assert f"]({Path(chinese).name})" in texts[0]
    assert f"]({Path(english).name})" in texts[1]


def test_every_page_is_indexed_and_every_link_resolves():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for page in sorted(DOCS.glob("*.md")):
        if page.name != "README.md":
            assert f"]({page.name})" in index, f"docs/README.md does not link {page.name}"
    for page in [*DOCS.glob("*.md"), ROOT / "README.md", ROOT / "README.zh.md"]:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (page.parent / target).exists(), f"{page.name} links {target}, which is missing"


def test_the_architecture_page_quotes_the_contract_numbers():
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    for number in ("590,592", "577", "86,415,592", "86,859,496", "443,904", "1231.26",
                   "329.65", "1.69", "1562.60", "3,995,148", "55,484,350,464"):
        assert number in text, number


def test_the_getting_started_page_quotes_the_digits_as_the_default_run_splits_them():
    from vit.config import load_default_config
    from vit.data.builder import prepare_data

    data = prepare_data(load_default_config(), 16)
    sizes = [len(data.train) + len(data.val) + len(data.test), len(data.train), len(data.val),
             len(data.test)]
    text = (DOCS / "getting_started.md").read_text(encoding="utf-8")
    assert "scikit-learn's {:,}".format(sizes[0]) in text, sizes
    assert "{:,} training, {:,} validation and {:,} test images".format(*sizes[1:]) in text, sizes
