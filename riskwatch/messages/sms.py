"""SMS length rules: one message is 160 GSM-7 characters, or 70 UTF-16 units when it needs UCS-2.

GSM 03.38: the basic character set counts one septet per character, the extension table
(``^{}\\[~]|€`` and form feed) two. Any other character forces the whole message into UCS-2,
where the limit falls to 70. Latin accents outside GSM-7 (``á``, ``ê``, ``ç``...) are folded to
their base letter in the short form so that French and Spanish texts keep the 160 limit; Arabic
stays in UCS-2.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

GSM7_LIMIT = 160
UCS2_LIMIT = 70

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

# Typographic characters with a plain GSM-7 equivalent.
_REPLACEMENTS = {
    "’": "'",
    "‘": "'",
    "“": '"',
    "”": '"',
    "«": '"',
    "»": '"',
    "…": "...",
    "–": "-",
    "—": "-",
    "\u00a0": " ",
    "\u202f": " ",
    "→": "->",
    "←": "<-",
    "œ": "oe",
    "Œ": "OE",
}


@dataclass(frozen=True)
class SmsLength:
    """How a text is encoded as one SMS: encoding, length in that encoding's units, limit."""

    encoding: str  # "gsm7" or "ucs2"
    length: int
    limit: int

    @property
    def fits(self) -> bool:
        return self.length <= self.limit


GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM-7 basic set or its extension table."""
    return GSM7_ALL.issuperset(text)


def sms_length(text: str) -> SmsLength:
    """The encoding one SMS needs for ``text``, its length in units and the single-SMS limit."""
    if is_gsm7(text):
        extension = sum(text.count(char) for char in GSM7_EXTENSION if char in text)
        return SmsLength("gsm7", len(text) + extension, GSM7_LIMIT)
    return SmsLength("ucs2", len(text.encode("utf-16-le")) // 2, UCS2_LIMIT)


def fold_to_gsm7(text: str) -> str:
    """``text`` with Latin accents and typography folded into GSM-7 where possible.

    Characters already in GSM-7 (``é``, ``à``, ``ñ``...) are kept; others lose their accent
    when that makes them GSM-7; characters without such a form (Arabic) are left as they are,
    so the result is GSM-7 only when the language allows it.
    """
    if is_gsm7(text):
        return text
    out: list[str] = []
    for char in text:
        if char in GSM7_ALL:
            out.append(char)
            continue
        if char in _REPLACEMENTS:
            out.append(_REPLACEMENTS[char])
            continue
        base = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        out.append(base if base and is_gsm7(base) else char)
    return "".join(out)


def fit_sms(candidates: list[str]) -> str:
    """The first candidate that fits one SMS (after GSM-7 folding), else the last one cut.

    Candidates go from the richest text to the barest; cutting keeps whole characters and
    marks the cut with ``...`` (GSM-7) or ``…`` (UCS-2).
    """
    if not candidates:
        return ""
    for candidate in candidates:  # prepared one by one: the first usually fits
        text = _prepare(candidate)
        if sms_length(text).fits:
            return text
    text = _prepare(candidates[-1])
    while text and not sms_length(text + _ellipsis(text)).fits:
        text = text[:-1]
    return text.rstrip() + _ellipsis(text)


def _prepare(text: str) -> str:
    text = " ".join(text.split())
    folded = fold_to_gsm7(text)
    return folded if is_gsm7(folded) else text


def _ellipsis(text: str) -> str:
    return "..." if is_gsm7(text) else "…"
