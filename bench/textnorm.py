"""The text normaliser of the reconciliation benchmark's WER: references and every engine's
output go through the same function, so that writing conventions are not counted as errors.

A short version of Whisper's English normaliser, applied word by word (a word is a run of
non-space characters), so that each normalised token can be traced back to the engine word it
came from (the benchmark locates errors in time that way):

1. NFKC, lower case, curly apostrophes made straight; `%` becomes "percent", `&` "and", a
   leading `$`/`£`/`€` becomes a trailing "dollars"/"pounds"/"euros".
2. Common contractions are expanded ("let's" -> "let us", "don't" -> "do not"; a possessive 's
   stays); a few abbreviations are spelled out ("dr" -> "doctor", "mr" -> "mister",
   "ok" -> "okay"); a short list of British spellings becomes American ("harbour" -> "harbor").
3. Hyphens and slashes split words; other punctuation goes (apostrophes inside a word stay).
4. Numbers written as digits become words, one rule for everyone: thousands separators dropped,
   "8.4" -> "eight point four", "3rd" -> "third", "7:15" -> "seven fifteen" ("8:00" ->
   "eight"), every integer in full, years too ("1,200" and "1200" -> "one thousand two
   hundred", "1894" -> "one thousand eight hundred ninety four"; no "and"): engines write
   years and amounts as digits, so one rule for all digits is the consistent one. Numbers
   already written in words are kept ("twenty-two" -> "twenty two").
5. Hesitations (uh, um, er, ah, hmm, mm) are dropped.

Not handled (counted as errors for every engine alike): a number written in words one way and
digits read another way ("four four three" against "443"), times of day in words against digits
("seven fifteen" matches "7:15", but "half past seven" does not), years written in words.
"""

from __future__ import annotations

import re
import unicodedata

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}

CONTRACTIONS = {
    "let's": "let us",
    "it's": "it is",
    "that's": "that is",
    "there's": "there is",
    "here's": "here is",
    "what's": "what is",
    "he's": "he is",
    "she's": "she is",
    "who's": "who is",
    "i'm": "i am",
    "won't": "will not",
    "can't": "can not",
    "cannot": "can not",
    "shan't": "shall not",
    "ain't": "is not",
}
_SUFFIXES = (("n't", " not"), ("'re", " are"), ("'ll", " will"), ("'ve", " have"))
WORDS = {
    "dr": "doctor",
    "mr": "mister",
    "mrs": "missus",
    "ms": "miss",
    "ok": "okay",
    "o.k": "okay",
    "vs": "versus",
    "colour": "color",
    "favour": "favor",
    "harbour": "harbor",
    "neighbour": "neighbor",
    "centre": "center",
    "metre": "meter",
    "metres": "meters",
    "kilometres": "kilometers",
    "theatre": "theater",
    "organisation": "organization",
    "quantisation": "quantization",
    "analyse": "analyze",
    "programme": "program",
    "travelled": "traveled",
    "cancelling": "canceling",
    "practising": "practicing",
    "grey": "gray",
}
HESITATIONS = frozenset({"uh", "um", "er", "ah", "hmm", "mm", "uhm", "erm"})
_CURRENCY = {"$": "dollars", "£": "pounds", "€": "euros"}
_NUMBER = re.compile(r"^(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(st|nd|rd|th)?$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_PUNCT = re.compile(r"[^\w'.:,$£€%]+")


def integer_words(n: int) -> list[str]:
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        tens, ones = divmod(n, 10)
        return [_TENS[tens]] + ([_ONES[ones]] if ones else [])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return [_ONES[hundreds], "hundred"] + (integer_words(rest) if rest else [])
    for value, name in _SCALES:
        if n >= value:
            high, rest = divmod(n, value)
            return integer_words(high) + [name] + (integer_words(rest) if rest else [])
    raise AssertionError(n)


def ordinal(words: list[str]) -> list[str]:
    last = words[-1]
    if last in _ORDINAL:
        new = _ORDINAL[last]
    elif last.endswith("y"):
        new = last[:-1] + "ieth"
    else:
        new = last + "th"
    return [*words[:-1], new]


def number_words(token: str) -> list[str] | None:
    """Words for a token that is a number written with digits, else None."""
    time = _TIME.match(token)
    if time:
        hour, minute = int(time.group(1)), int(time.group(2))
        out = integer_words(hour)
        if minute:
            out += (["oh"] if minute < 10 else []) + integer_words(minute)
        return out
    match = _NUMBER.match(token)
    if not match:
        return None
    digits, decimals, suffix = match.groups()
    value = int(digits.replace(",", ""))
    words = integer_words(value)
    if decimals is not None:
        words += ["point"] + [_ONES[int(d)] for d in decimals]
    if suffix is not None:
        words = ordinal(words)
    return words


def normalise_word(word: str) -> list[str]:
    """One engine word (or whitespace-free chunk of a reference) as normalised tokens."""
    text = unicodedata.normalize("NFKC", word).casefold().replace("\u2019", "'")
    text = text.replace("\u2018", "'")
    out: list[str] = []
    for part in re.split(r"[-/\u2013\u2014]+", text):
        out += _normalise_part(part)
    return out


def _normalise_part(part: str) -> list[str]:
    part = _PUNCT.sub("", part)
    # Trailing sentence punctuation, then leading quotes.
    part = part.strip(".,:;'")
    if not part:
        return []
    unit = None
    if part[0] in _CURRENCY:
        unit, part = _CURRENCY[part[0]], part[1:]
    percent = part.endswith("%")
    if percent:
        part = part.rstrip("%")
    if part in CONTRACTIONS:
        tokens = CONTRACTIONS[part].split()
    else:
        tokens = [part]
        for suffix, expansion in _SUFFIXES:
            if part.endswith(suffix) and len(part) > len(suffix):
                tokens = (part[: -len(suffix)] + expansion).split()
                break
    out: list[str] = []
    for token in tokens:
        numbers = number_words(token)
        if numbers is not None:
            out += numbers
            continue
        token = token.replace(",", "").replace(":", "")
        if token not in WORDS:
            token = token.replace(".", "")  # "a.m." -> "am"; "o.k" is looked up first
        token = WORDS.get(token, token)
        if token and token not in HESITATIONS:
            out.append(token)
    if percent:
        out.append("percent")
    if unit:
        out.append(unit)
    return out


def normalise(text: str) -> list[str]:
    return [token for word in text.split() for token in normalise_word(word)]
