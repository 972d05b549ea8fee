"""Unlabelled English text that installs offline, for language modelling.

Two Debian packages, installed without root like the translation task's
dictionary (`python -m rnnapps.datasets.debian wordnet-base dict-gcide`):

- `wordnet-base`: WordNet 3.0's glosses and example sentences (modern
  English: "She choked with emotion when she spoke about her deceased
  husband"); `wordnet_sentences()`.
- `dict-gcide`: the GNU Collaborative International Dictionary of English
  (Webster's 1913 and WordNet): definitions and literary quotations;
  `gcide_sentences()`.

Each returns a list of plain-text sentences (markup, headwords, source tags
and attributions removed), in the file's order.
"""

import gzip
import pathlib
import re

from rnnapps.datasets import debian

__all__ = [
    "WORDNET_PACKAGE", "GCIDE_PACKAGE", "wordnet_folder", "gcide_file",
    "parse_wordnet", "parse_gcide", "wordnet_sentences", "gcide_sentences",
]

WORDNET_PACKAGE = "wordnet-base"
GCIDE_PACKAGE = "dict-gcide"
_WORDNET = pathlib.Path("usr/share/wordnet")
_GCIDE = pathlib.Path("usr/share/dictd/gcide.dict.dz")
_WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")


def _find(package, relative):
    for root in (pathlib.Path("/"), debian.package_root(package)):
        if (root / relative).exists():
            return root / relative
    raise FileNotFoundError(
        f"Debian package {package} is not installed: `sudo apt-get install {package}`, or "
        f"without root `python -m rnnapps.datasets.debian {package}`"
    )


def wordnet_folder():
    """The folder of WordNet's data files (`FileNotFoundError` if not installed)."""
    return _find(WORDNET_PACKAGE, _WORDNET)


def gcide_file():
    """GCIDE's dictd file (`FileNotFoundError` if not installed)."""
    return _find(GCIDE_PACKAGE, _GCIDE)


def _sentence(text):
    """`text` with its whitespace collapsed, capitalised, ending in a stop."""
    text = " ".join(text.split()).strip(" ;,")
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".?!\"'" else text + "."


def parse_wordnet(lines):
    """Glosses and examples of WordNet data lines (`data.noun` etc.).

    A synset line ends in `| gloss`, where the gloss is a definition and
    quoted examples separated by `;`. Returns each definition and each
    example as a sentence. Licence lines (indented) are skipped.

    Example:

    >>> line = ('00002724 29 v 01 choke 0 002 @ 00001740 v 0000 | breathe with great '
    ...         'difficulty; "She choked with emotion"')
    >>> parse_wordnet([line])
    ['Breathe with great difficulty.', 'She choked with emotion.']
    """
    sentences = []
    for line in lines:
        if line.startswith(" ") or " | " not in line:
            continue
        gloss = line.split(" | ", 1)[1].strip()
        examples = re.findall(r'"([^"]+)"', gloss)
        definition = re.sub(r'"[^"]*"', "", gloss)
        for text in (*definition.split(";")[:1], *examples):
            if len(text.split()) >= 2:
                sentences.append(_sentence(text))
    return sentences


# GCIDE markup: a headword line ("Caloric \Ca*lor"ic\, a."), source tags on
# their own line ("[1913 Webster]", "[WordNet 1.5]", "[PJC]"), accents written
# as "[`e]", cross-references in braces, attributions ("--Shak.").
_HEADWORD = re.compile(r"^\S[^\n]*\\[^\n]*\\")
_SOURCE_TAG = re.compile(r"^\s*\[[^\]]*\]")  # "[1913 Webster]", sometimes with a word after it
_INLINE_TAG = re.compile(r"\[(1913 Webster|Webster 1913 Suppl\.|WordNet[^\]]*|PJC|Century Dict\.)\]")
_ACCENT = re.compile(r"\[[`'^\"~,]?([a-zA-Z]{1,2})\]")
_ATTRIBUTION = re.compile(r"\s+--\s?[A-Z][^.]*(\.[^.]*)?\.?\s*$")
_NUMBER = re.compile(r"^\s*(\d+\.|\([a-z]\))\s+")
_FIELD = re.compile(r"^(\([A-Z][\w. &]*\)\s*)+")  # "(Physiol.)", "(Iron Manuf.)"


def parse_gcide(text):
    """Definitions and quotations of GCIDE's dictd text, as sentences.

    Paragraphs (ending at blank lines and source tags) lose their headword line and
    etymology, source tags, numbering, field labels ("(Physics)"), markup and
    attributions; cross-references ("See {Calorificient}.", "Same as ..."),
    paragraphs of fewer than four words and the database's header are left
    out.

    Example:

    >>> text = '''
    ... Calorie \\\\Cal"o*rie\\\\, n. [F., fr. L. calor heat.] (Physics)
    ...    The unit of heat according to the French standard; the amount
    ...    of heat required to raise the temperature of {water}.
    ...    [1913 Webster]
    ...
    ...          The tellers of news abused the general.
    ...                                       --Macaulay.
    ...    [1913 Webster]
    ... '''
    >>> for sentence in parse_gcide(text):
    ...     print(sentence)
    The unit of heat according to the French standard; the amount of heat required to raise the temperature of water.
    The tellers of news abused the general.
    """
    start = text.find("Begin file 1 of")
    text = text[text.find("\n\n", start) if start >= 0 else 0:]
    sentences = []
    # A chunk ends at a blank line or at a source tag (entries sometimes
    # follow one another with no blank line between them).
    chunks, chunk = [], []
    for line in text.splitlines():
        if not line.strip() or _SOURCE_TAG.match(line):
            chunks.append(chunk)
            chunk = []
        else:
            chunk.append(line)
    chunks.append(chunk)
    for lines in chunks:
        open_etymology = False
        if lines and _HEADWORD.match(lines[0]):
            # An etymology ("[L. calor heat ...") may go on past the headword line.
            open_etymology = lines[0].rfind("[") > lines[0].rfind("]")
            lines = lines[1:]
        # A source tag inside a line ends the entry (the next headword follows it).
        body = _INLINE_TAG.split(" ".join(" ".join(lines).split()))[0]
        if open_etymology:
            body = body.split("]", 1)[-1]
        body = _FIELD.sub("", _NUMBER.sub("", body.strip()))
        body = _ACCENT.sub(r"\1", body)
        body = re.sub(r"[{}]", "", body)
        body = _ATTRIBUTION.sub("", body)
        if body.startswith(("Syn:", "Note:")):
            body = body.split(":", 1)[1]
        if body.startswith(("See ", "Same as ")):  # cross-references
            continue
        if len(body.split()) >= 4 and not re.search(r"[\\*|<>{}]", body):
            sentences.append(_sentence(body))
    return sentences


def wordnet_sentences(folder=None):
    """Every gloss and example of WordNet (about 200,000 sentences)."""
    folder = pathlib.Path(folder) if folder else wordnet_folder()
    sentences = []
    for name in _WORDNET_FILES:
        with open(folder / name, encoding="utf-8", errors="replace") as file:
            sentences.extend(parse_wordnet(file))
    return sentences


def gcide_sentences(path=None):
    """GCIDE's definitions and quotations (the `.dz` file is gzip-compatible)."""
    path = pathlib.Path(path) if path else gcide_file()
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as file:
        return parse_gcide(file.read())
