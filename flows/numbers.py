"""Numbers written as words, in English and Spanish ("fifteen", "twenty-one", "tengo quince años",
"treinta y dos"): an age is often typed that way, and "Sorry, how old are you?" again would loop."""
from __future__ import annotations

import re
import unicodedata

_UNITS = {
    "en": {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
           "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
           "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
           "fiveteen": 15, "sixten": 16, "seventen": 17, "fourten": 14, "eightteen": 18},
    # written without accents (see _plain)
    "es": {"dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7, "ocho": 8, "nueve": 9,
           "diez": 10, "once": 11, "doce": 12, "trece": 13, "catorce": 14, "quince": 15, "dieciseis": 16,
           "diecisiete": 17, "dieciocho": 18, "diecinueve": 19, "veintiuno": 21, "veintiun": 21,
           # as often typed: s for c/z ("dies", "quinse", "catorse", "diesiseis")
           "dies": 10, "onse": 11, "dose": 12, "trese": 13, "catorse": 14, "quinse": 15, "diesiseis": 16,
           "diesisiete": 17, "diesiocho": 18, "diesinueve": 19,
           "veintiuna": 21, "veintidos": 22, "veintitres": 23, "veinticuatro": 24, "veinticinco": 25,
           "veintiseis": 26, "veintisiete": 27, "veintiocho": 28, "veintinueve": 29},
}
# "one" / "uno" only after a ten ("twenty-one", "treinta y uno"): alone they are rarely a number.
_ONES = {"en": {"one": 1}, "es": {"uno": 1, "un": 1, "una": 1}}
_TENS = {
    "en": {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
           "ninety": 90},
    "es": {"veinte": 20, "treinta": 30, "cuarenta": 40, "cincuenta": 50, "sesenta": 60, "setenta": 70, "ochenta": 80,
           "noventa": 90},
}
_JOINERS = {"y", "and", "-"}


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def number_in(text: str, lang: str) -> int | None:
    """The first number written in words in `text`, in `lang` ("I am fifteen" -> 15, "treinta y dos" -> 32).

    One language at a time: "once" is 11 in Spanish and a word in English."""
    units, tens = _UNITS.get(lang, {}), _TENS.get(lang, {})
    after_ten = {**units, **_ONES.get(lang, {})}
    tokens = re.findall(r"[a-z]+|-", _plain(text))
    for i, token in enumerate(tokens):
        if token in tens:
            value, rest = tens[token], tokens[i + 1:i + 3]
            if rest and rest[0] in _JOINERS:
                rest = rest[1:]
            if rest and rest[0] in after_ten and after_ten[rest[0]] < 10:
                value += after_ten[rest[0]]
            return value
        if token in units:
            value, rest = units[token], tokens[i + 1:i + 3]
            # "diez y seis" (16): the older spelling of a teen
            if value == 10 and len(rest) == 2 and rest[0] in _JOINERS and units.get(rest[1], 10) < 10:
                value += units[rest[1]]
            return value
    return None
