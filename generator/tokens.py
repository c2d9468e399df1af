"""Hugging Face tokens: how to find one, also encoded, and the one redaction every message goes through.

A token is `hf_` and 34 letters (gitleaks' huggingface-access-token). It is found as written,
and inside a run of text that decodes to it: base64 (standard or URL-safe, padded or not, at any
offset), percent-encoding (`hf%5F...`, `%68%66...`) and hex, each up to two layers deep (base64 of a
URL-encoded token, ...). `redact` replaces every such run with `hf_***`; errors.py applies it to every
message and every location, the CLI to everything else it prints, so no path can quote a token.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator
from urllib.parse import unquote_to_bytes

MASK = "hf_***"
HF_TOKEN = re.compile(r"hf_[A-Za-z]{34}")
_RAW = re.compile(r"hf_[A-Za-z0-9]{34,}")             # a token and whatever letters or digits stick to it
_TOKEN_BYTES = re.compile(rb"hf_[A-Za-z]{34}")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{50,}=*")        # 37 bytes (a token) take at least 50 characters
_PERCENT = re.compile(r"(?:[A-Za-z0-9_.~+-]|%[0-9A-Fa-f]{2})*%[0-9A-Fa-f]{2}(?:[A-Za-z0-9_.~+-]|%[0-9A-Fa-f]{2})*")
_HEX = re.compile(r"[0-9A-Fa-f]{74,}")                  # 37 bytes, two digits each
_DEPTH = 2
_QUICK = re.compile(r"hf_|%[0-9A-Fa-f]{2}|[A-Za-z0-9+/_-]{50}")   # text without these cannot hold a token


def holds_token(text: str) -> bool:
    """True when `text` holds a Hugging Face token, as written or encoded."""
    if _QUICK.search(text) is None:
        return False
    return HF_TOKEN.search(text) is not None or any(_bytes_hold(decoded, _DEPTH) for decoded in _decodings(text))


def redact(text: str) -> str:
    """`text` with every token, and every encoded run that decodes to one, replaced by `hf_***`."""
    if _QUICK.search(text) is None:
        return text
    text = _RAW.sub(MASK, text)
    for pattern in _patterns(text):
        text = pattern.sub(_mask_if_token, text)
    return text


def _mask_if_token(match: re.Match[str]) -> str:
    run = match.group()
    return MASK if any(_bytes_hold(decoded, _DEPTH) for decoded in _decode_run(run)) else run


def _bytes_hold(data: bytes, depth: int) -> bool:
    if _TOKEN_BYTES.search(data):
        return True
    if depth <= 1:
        return False
    text = data.decode("latin-1")
    return any(_bytes_hold(decoded, depth - 1) for decoded in _decodings(text))


def _decodings(text: str) -> Iterator[bytes]:
    """Every decoding of every encoded-looking run in `text`."""
    for pattern in _patterns(text):
        for match in pattern.finditer(text):
            yield from _decode_run(match.group())


def _patterns(text: str) -> tuple[re.Pattern[str], ...]:
    return (_PERCENT, _BASE64, _HEX) if "%" in text else (_BASE64, _HEX)


def _decode_run(run: str) -> Iterator[bytes]:
    decoders: list[Callable[[str], Iterator[bytes]]] = [_from_percent, _from_base64, _from_hex]
    for decode in decoders:
        yield from decode(run)


def _from_percent(run: str) -> Iterator[bytes]:
    if "%" in run:
        yield unquote_to_bytes(run)


def _from_base64(run: str) -> Iterator[bytes]:
    """A base64 run decoded at each of the four alignments (the token may start anywhere in it)."""
    body = run.rstrip("=").replace("-", "+").replace("_", "/")
    if "%" in body:
        return
    for offset in range(4):
        chunk = body[offset:]
        chunk = chunk[:-1] if len(chunk) % 4 == 1 else chunk + "=" * (-len(chunk) % 4)
        try:
            yield base64.b64decode(chunk, validate=True)
        except (binascii.Error, ValueError):
            continue


def _from_hex(run: str) -> Iterator[bytes]:
    for offset in range(2):
        chunk = run[offset:]
        chunk = chunk[: len(chunk) // 2 * 2]
        if len(chunk) >= 74 and _HEX.fullmatch(chunk):
            yield bytes.fromhex(chunk)
