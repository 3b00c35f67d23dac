from __future__ import annotations

import pytest

from dayzero.core.settings import DataNotFoundError
from dayzero.datasets import MalformedDataError
from dayzero.datasets.sentiment import (
    load_chnsenticorp,
    load_financial_phrasebank,
    load_twitter_financial_news,
    load_waimai,
)

PHRASE_50 = (
    'neutral,"According to Gran , the company has no plans to move ."\n'
    "negative,The international electronic industry company Elcoteq has laid off tens .\n"
    'positive,"Net sales rose to EUR 1.2 mn , \u00e0 la hausse ."\n'
)
PHRASE_ALL = (
    "label,sentence\n"
    '0,"According to Gran , the company has no plans .",1\n'
    '1,"Componenta \'s net sales doubled .",2\n'
    '2,"Operating loss widened .",0\n'
)


def _folder(tmp_path, name, files: dict[str, bytes | str]):
    folder = tmp_path / name
    folder.mkdir()
    for file, text in files.items():
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        (folder / file).write_bytes(data)
    return folder


def _phrasebank(tmp_path, fifty: bytes | None = None, allagree=PHRASE_ALL):
    return _folder(
        tmp_path,
        "financial-phrasebank",
        {
            "all-data.csv": PHRASE_50.encode("latin-1") if fifty is None else fifty,
            "financial_phrasebank_ishu.csv": allagree,
        },
    )


def test_phrasebank_50_without_header_latin1(tmp_path):
    data = load_financial_phrasebank(_phrasebank(tmp_path))
    assert data.y.tolist() == ["neutral", "negative", "positive"]
    assert data.frame["text"].iloc[2].endswith("\u00e0 la hausse .")
    assert data.classes == ["negative", "neutral", "positive"] and data.X.columns.tolist() == [
        "text"
    ]


def test_phrasebank_50_with_header(tmp_path):
    fifty = ("label,news\n" + PHRASE_50).encode("latin-1")
    data = load_financial_phrasebank(_phrasebank(tmp_path, fifty=fifty))
    assert len(data) == 3 and data.y.iloc[0] == "neutral"


def test_phrasebank_allagree_reads_index_text_code_rows(tmp_path):
    data = load_financial_phrasebank(_phrasebank(tmp_path), agreement="allagree")
    assert data.y.tolist() == ["neutral", "positive", "negative"]
    assert data.frame["text"].iloc[1] == "Componenta 's net sales doubled ."


def test_phrasebank_bad_label_names_line(tmp_path):
    fifty = PHRASE_50.replace("negative,", "negativ,").encode("latin-1")
    with pytest.raises(MalformedDataError, match=r"all-data.csv, line 2: label 'negativ'"):
        load_financial_phrasebank(_phrasebank(tmp_path, fifty=fifty))


def test_phrasebank_allagree_bad_code_names_line(tmp_path):
    bad_code = PHRASE_ALL.replace('doubled .",2', 'doubled .",7')
    folder = _phrasebank(tmp_path, allagree=bad_code)
    with pytest.raises(MalformedDataError, match=r"ishu.csv, line 3: label 7"):
        load_financial_phrasebank(folder, agreement="allagree")


def test_phrasebank_missing_file_and_bad_agreement(tmp_path):
    folder = _phrasebank(tmp_path)
    (folder / "financial_phrasebank_ishu.csv").unlink()
    with pytest.raises(DataNotFoundError, match=r"financial_phrasebank_ishu.csv"):
        load_financial_phrasebank(folder, agreement="allagree")
    with pytest.raises(ValueError, match=r"agreement must be"):
        load_financial_phrasebank(folder, agreement="75agree")


def _twitter(tmp_path, valid='text,label\n"$DELL $HPE - targets trimmed",0\n$X up,1\n'):
    return _folder(
        tmp_path,
        "twitter-financial-news",
        {
            "sent_train.csv": "text,label\n$BYND - reels in,0\n$AAPL flat,2\n",
            "sent_valid.csv": valid,
        },
    )


def test_twitter_splits_and_class_names(tmp_path):
    data = load_twitter_financial_news(_twitter(tmp_path))
    assert data.splits == ["train", "valid"]
    assert data.split("train").y.tolist() == [0, 2]
    assert data.split("valid").frame["text"].tolist() == ["$DELL $HPE - targets trimmed", "$X up"]
    assert data.class_names == {0: "bearish", 1: "bullish", 2: "neutral"}
    assert data.X.columns.tolist() == ["text"]


def test_twitter_bad_label_and_missing_file(tmp_path):
    folder = _twitter(tmp_path, valid="text,label\nok,1\nbad,3\n")
    with pytest.raises(MalformedDataError, match=r"sent_valid.csv, line 3: label 3"):
        load_twitter_financial_news(folder)
    (folder / "sent_train.csv").unlink()
    with pytest.raises(DataNotFoundError, match=r"sent_train.csv"):
        load_twitter_financial_news(folder)


def test_chinese_sets_and_missing_text(tmp_path):
    text = 'label,review\n1,"距离川沙公路较近,但是公交指示不对"\n0,\n0,房间太小\n'
    folder = _folder(tmp_path, "chnsenticorp-htl", {"ChnSentiCorp_htl_all.csv": text})
    data = load_chnsenticorp(folder)
    assert data.y.tolist() == [1, 0] and data.frame["text"].iloc[0].startswith("距离川沙公路较近,")
    with pytest.raises(
        MalformedDataError, match=r"ChnSentiCorp_htl_all.csv, line 3: column 'text'"
    ):
        load_chnsenticorp(folder, drop_missing_text=False)
    folder = _folder(tmp_path, "waimai-10k", {"waimai_10k.csv": "label,review\n1,很快\n2,好吃\n"})
    with pytest.raises(MalformedDataError, match=r"waimai_10k.csv, line 3: label 2"):
        load_waimai(folder)
    (folder / "waimai_10k.csv").unlink()
    with pytest.raises(DataNotFoundError, match=r"waimai_10k.csv"):
        load_waimai(folder)


@pytest.mark.slow
def test_real_counts(real_dataset):
    root = real_dataset("financial-phrasebank")
    fifty = load_financial_phrasebank(root)
    assert len(fifty) == 4846
    assert fifty.counts() == {"negative": 604, "neutral": 2879, "positive": 1363}
    allagree = load_financial_phrasebank(root, agreement="allagree")
    assert len(allagree) == 2264
    # The published AllAgree distribution: 303 negative, 1,391 neutral, 570 positive.
    assert allagree.counts() == {"negative": 303, "neutral": 1391, "positive": 570}
    both = allagree.frame.merge(fifty.frame, on="text", suffixes=("_all", "_50"))
    assert len(both) > 2200 and (both["label_all"] == both["label_50"]).all()

    twitter = load_twitter_financial_news(real_dataset("twitter-financial-news"))
    assert len(twitter.split("train")) == 9543 and len(twitter.split("valid")) == 2388

    chn = load_chnsenticorp(real_dataset("chnsenticorp-htl"))
    assert len(chn) == 7765  # 7,766 rows, one without a review (line 6,376)
    with pytest.raises(MalformedDataError, match=r"line 6376"):
        load_chnsenticorp(real_dataset("chnsenticorp-htl"), drop_missing_text=False)

    waimai = load_waimai(real_dataset("waimai-10k"))
    assert len(waimai) == 11_987 and waimai.counts() == {0: 7987, 1: 4000}
