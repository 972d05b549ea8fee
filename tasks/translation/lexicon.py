"""The word-by-word dictionary lookup the translation model has to beat.

The Ding dictionary (Debian package `trans-de-en`) aligns about 200,000
German words and phrases with their English translations. Looking up each
word of a German sentence in it, keeping the words it lacks, gives English
that a model of the same data must beat to be worth using: the task prints
its BLEU and chrF next to the model's (`rnnapps train translation`,
`rnnapps evaluate translation`).

The lookup, kept simple and deterministic:

- **Entries**: every German alternative of one word (after `{...}`,
  `[...]` and `(...)` annotations are stripped) in an aligned `|` part,
  mapped to the first English alternative of the same part. Where a word
  has several entries, the one where it is the headword (the first
  alternative of the line's first part) wins, then the first in the file.
  (Preferring entries without a subject field such as `[med.]` scored
  lower on the validation split: 3.3 against 3.7 BLEU.)
  A leading infinitive marker is dropped ("essen" -> "eat", not "to eat").
- **Lookup**: each word as written, then lower-cased (sentence-initial
  capitals), else kept as it is (names, numbers, compounds the dictionary
  lacks). Punctuation passes through.
- **Detokenized** English with the first letter capitalized, scored by
  sacrebleu like the model.
"""

import re

from rnnapps.tasks.translation.data import aligned_parts

__all__ = ["Lexicon", "parse_lexicon", "tokenize", "detokenize"]

_ANNOTATION = re.compile(r"\s*(\{[^{}]*\}|\[[^\[\]]*\]|\([^()]*\)|<[^<>]*>|/[^/\s][^/]*/)")
# Tokens: runs of characters between whitespace and these punctuation marks
# (each a token of its own). Spelled out, not `\w`, so that Python's `re` and
# RE2 (TensorFlow's regex ops, `gloss.DictionaryGloss`) split alike.
_PUNCTUATION = r'([.,!?;:()\[\]{}"„“”«»…/])'
_WHITESPACE = r"[ \t\n\r\f\v]+"
_NO_SPACE_BEFORE = re.compile(r" ([.,!?;:%)\]}’”»])")
_NO_SPACE_AFTER = re.compile(r"([(\[{‘“„»]) ")


def tokenize(text):
    """Words and punctuation marks of `text`.

    >>> tokenize("Wie spät ist es, Herr Müller?")
    ['Wie', 'spät', 'ist', 'es', ',', 'Herr', 'Müller', '?']
    """
    spaced = re.sub(_WHITESPACE, " ", re.sub(_PUNCTUATION, r" \1 ", text))
    return [token for token in spaced.split(" ") if token]


def detokenize(tokens):
    """Tokens joined as written text, the first letter capitalized.

    >>> detokenize(["how", "late", "is", "it", ",", "Mr", "Müller", "?"])
    'How late is it, Mr Müller?'
    """
    text = _NO_SPACE_AFTER.sub(r"\1", _NO_SPACE_BEFORE.sub(r"\1", " ".join(tokens)))
    return text[:1].upper() + text[1:]


def _alternatives(part):
    part = _ANNOTATION.sub("", part)
    return [" ".join(a.split()) for a in part.split(";") if a.strip()]


def _english(alternative):
    words = alternative.split()
    if len(words) > 1 and words[0] == "to":  # "to eat": the verb, without its marker
        words = words[1:]
    return " ".join(words)


def parse_lexicon(lines, exclude=()):
    """`{german word: english}` from Ding dictionary lines.

    Args:
        lines: an iterable of the file's lines (str).
        exclude: German texts (e.g. the validation and test sources) that no
            entry may have as its German side, compared lower-cased with
            spaces normalised.

    Example:

    >>> entries = parse_lexicon([
    ...     "Essen {n} [cook.] :: meal",
    ...     "essen {vt} | essend | gegessen :: to eat | eating | eaten",
    ...     "Haus {n} | Häuser {pl} :: house | houses",
    ...     "Hausboot {n}; Haus {n} auf dem Wasser :: houseboat",
    ... ])
    >>> sorted(entries.items())
    [('Essen', 'meal'), ('Haus', 'house'), ('Hausboot', 'houseboat'), ('Häuser', 'houses'), ('essen', 'eat'), ('essend', 'eating'), ('gegessen', 'eaten')]
    """
    excluded = {" ".join(text.lower().split()) for text in exclude}
    headwords, others = {}, {}
    for index, german_part, english_part in aligned_parts(lines):
        targets = [_english(e) for e in _alternatives(english_part)]
        if not targets or not targets[0]:
            continue
        for position, source in enumerate(_alternatives(german_part)):
            if " " in source or not any(c.isalnum() for c in source):
                continue  # phrases, and punctuation left over from annotations
            if source.lower() in excluded:
                continue
            table = headwords if index == 0 and position == 0 else others
            table.setdefault(source, targets[0])
    return {**others, **headwords}


class Lexicon:
    """Translates word by word with a `{source word: target text}` table.

    >>> lexicon = Lexicon({"das": "the", "Haus": "house", "ist": "is", "alt": "old"})
    >>> lexicon.translate("Das Haus ist alt.")
    'The house is old.'
    >>> lexicon.translate("Das Haus von Anna.")
    'The house von Anna.'
    """

    def __init__(self, entries):
        self.entries = dict(entries)
        self.lowered = {}
        for word, target in self.entries.items():
            self.lowered.setdefault(word.lower(), target)

    def __len__(self):
        return len(self.entries)

    def word(self, token):
        """The translation of one token (the token itself if unknown)."""
        if token in self.entries:
            return self.entries[token]
        return self.lowered.get(token.lower(), token)

    def translate(self, text):
        """`text` translated word by word, detokenized."""
        return detokenize([self.word(token) for token in tokenize(text)])

    def gloss(self, text):
        """`text`'s tokens translated and joined by spaces: what the
        `DictionaryGloss` layer computes in TensorFlow ops.

        >>> Lexicon({"das": "the", "Haus": "house"}).gloss("Das Haus, bitte")
        'the house , bitte'
        """
        return " ".join(self.word(token) for token in tokenize(text))

    def gloss_layer(self):
        """A `DictionaryGloss` layer holding this lexicon: `gloss` in
        TensorFlow ops, for tf.data and the export's graph."""
        from rnnapps.tasks.translation.gloss import DictionaryGloss

        return DictionaryGloss(self.entries)
