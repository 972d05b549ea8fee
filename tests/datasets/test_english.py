"""Unlabelled English from WordNet and GCIDE (Debian packages)."""

import gzip

import pytest

from rnnapps.datasets import english


def test_wordnet_glosses_and_examples_become_sentences():
    lines = [
        "  1 This software and database is being provided to you, the LICENSEE",
        '00002724 29 v 01 choke 0 002 @ 00001740 v 0000 | breathe with great difficulty, as '
        'when experiencing a strong emotion; "She choked with emotion when she spoke"; '
        '"He choked"',
        "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which is perceived  ",
    ]
    assert english.parse_wordnet(lines) == [
        "Breathe with great difficulty, as when experiencing a strong emotion.",
        "She choked with emotion when she spoke.",
        "He choked.",
        "That which is perceived.",
    ]


def test_gcide_markup_headwords_and_attributions_are_removed():
    text = (
        "00-database-short\n   The Collaborative International Dictionary of English\n\n"
        " Begin file 1 of 26:  Letter A (Version 0.48) \n\n"
        'Caloriduct \\Ca*lor"i*duct\\, n. [L. calor heat (fr. calere to\n'
        "   warm) + E. duct.]\n   A tube or duct for conducting heat; a caliduct.\n"
        "   [1913 Webster]\n\n"
        'Calorie \\Cal"o*rie\\, n. (Physics)\n'
        "   2. The unit of heat from 0[deg] to the calorif[`e]re of {Foot pound}.\n"
        "   [1913 Webster]\n\n"
        "   Calorifacient, a. See {Calorificient}.\n\n"
        "   See {Calorificient}.\n\n"
        "            This principle (if one may so abuse the word) shoots\n"
        "            rapidly into popularity.              --Froude.\n"
        "      [1913 Webster]\n"
    )
    assert english.parse_gcide(text) == [
        "A tube or duct for conducting heat; a caliduct.",
        "The unit of heat from 0[deg] to the calorifere of Foot pound.",
        "Calorifacient, a. See Calorificient.",
        "This principle (if one may so abuse the word) shoots rapidly into popularity.",
    ]


def test_a_missing_package_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNAPPS_CACHE", str(tmp_path))
    monkeypatch.setattr(english, "_WORDNET", english.pathlib.Path("no/such/folder"))
    with pytest.raises(FileNotFoundError, match="python -m rnnapps.datasets.debian wordnet-base"):
        english.wordnet_folder()


def test_the_real_packages(english_text):
    folder, gcide = english_text
    wordnet = english.wordnet_sentences(folder)
    assert len(wordnet) > 150_000
    assert "She choked with emotion when she spoke about her deceased husband." in wordnet
    words = sum(len(s.split()) for s in wordnet)
    assert words > 1_000_000
    webster = english.gcide_sentences(gcide)
    assert len(webster) > 200_000 and sum(len(s.split()) for s in webster) > 3_000_000
    assert "Of or pertaining to caloric." in webster
    # No markup survives: headwords, braces, source tags.
    assert not any("\\" in s or "{" in s or "[1913 Webster]" in s for s in webster)
    with gzip.open(gcide, "rt", encoding="utf-8") as file:
        assert "Begin file 1 of" in file.read(5000)
