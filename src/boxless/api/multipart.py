"""A streaming ``multipart/form-data`` parser (RFC 7578), sans-IO.

Theory of operation
-------------------
A browser's ``FormData`` upload of an album is one body with several files.
Starlette's own form parser spools files to temporary files -- plaintext on
disk -- and needs the ``python-multipart`` package; this parser instead
turns the body into events as it arrives so each file is encrypted while it
streams (the API never holds a whole video, never writes one to disk):

    Part(name, filename, content_type)   a part's headers were read
    Data(bytes)                          some of the current part's body
    PartEnd()                            the current part ended
    Done()                               the closing delimiter

Everything is attacker-controlled (a web page can post to the local API only
with the token, but the body may be anything): headers of a part are at most
:data:`MAX_HEADER_BYTES`, at most :data:`MAX_PARTS` parts, the boundary is
1-70 characters as RFC 2046 says, and bytes after the closing delimiter are
ignored. A malformed body raises :class:`MultipartError` saying what is wrong.
Memory: the parser keeps at most one delimiter's length of undelivered data
beyond the headers cap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from boxless.errors import UsageError

__all__ = [
    "MAX_PARTS",
    "Data",
    "Done",
    "Event",
    "MultipartError",
    "MultipartParser",
    "Part",
    "PartEnd",
    "boundary_of",
]

MAX_HEADER_BYTES = 8 * 1024
MAX_PARTS = 64
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_PARAM = re.compile(r';\s*([A-Za-z0-9_*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))')


class MultipartError(UsageError):
    """The multipart body is malformed; the message says how."""


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    filename: str | None
    content_type: str


@dataclass(frozen=True, slots=True)
class Data:
    data: bytes


@dataclass(frozen=True, slots=True)
class PartEnd:
    pass


@dataclass(frozen=True, slots=True)
class Done:
    pass


Event = Part | Data | PartEnd | Done


def _params(value: str) -> tuple[str, dict[str, str]]:
    head, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for m in _PARAM.finditer(";" + rest):
        raw = m[2] if m[2] is not None else m[3]
        params[m[1].lower()] = re.sub(r"\\(.)", r"\1", raw)
    return head.strip().lower(), params


def boundary_of(content_type: str) -> str:
    """The boundary of a ``multipart/form-data`` Content-Type; raises MultipartError."""
    kind, params = _params(content_type)
    if kind != "multipart/form-data":
        raise MultipartError("the body is not multipart/form-data")
    boundary = params.get("boundary", "")
    if not _BOUNDARY.fullmatch(boundary):
        raise MultipartError("the multipart boundary is missing or not 1-70 allowed characters")
    return boundary


class MultipartParser:
    """Feed body bytes, get events; call :meth:`finish` at the end of the body."""

    def __init__(self, boundary: str) -> None:
        if not _BOUNDARY.fullmatch(boundary):
            raise MultipartError("the multipart boundary is not 1-70 allowed characters")
        self._first = b"--" + boundary.encode()
        self._delim = b"\r\n--" + boundary.encode()
        self._buf = bytearray()
        self._state = "preamble"  # preamble | after_delim | headers | body | done
        self._at_start = True
        self.parts = 0

    def feed(self, data: bytes) -> list[Event]:
        if self._state == "done":
            return []
        self._buf += data
        events: list[Event] = []
        while self._step(events):
            pass
        return events

    def finish(self) -> list[Event]:
        events = self.feed(b"")
        if self._state != "done":
            raise MultipartError("the multipart body ends before its closing delimiter")
        return events

    def _step(self, events: list[Event]) -> bool:
        """Advance as far as the buffer allows; True if it should be called again."""
        buf = self._buf
        if self._state == "preamble":
            # the first delimiter may open the body (no CRLF before it) or follow a preamble
            if self._at_start:
                if len(buf) < len(self._first) and self._first.startswith(buf):
                    return False
                self._at_start = False
                if buf.startswith(self._first):
                    del buf[: len(self._first)]
                    self._state = "after_delim"
                    return True
            i = buf.find(self._delim)
            if i < 0:
                keep = len(self._delim) - 1
                if len(buf) > keep:
                    del buf[: len(buf) - keep]
                return False
            del buf[: i + len(self._delim)]
            self._state = "after_delim"
            return True
        if self._state == "after_delim":
            if len(buf) < 2:
                return False
            if buf[:2] == b"--":
                self._state = "done"
                events.append(Done())
                buf.clear()
                return False
            # transport padding (spaces/tabs) may follow a delimiter before its CRLF
            j = buf.find(b"\r\n")
            if j < 0:
                if len(buf) > 256:
                    raise MultipartError("a multipart delimiter is not followed by a line break")
                return False
            if buf[:j].strip(b" \t"):
                raise MultipartError("a multipart delimiter is followed by other text")
            del buf[: j + 2]
            self._state = "headers"
            return True
        if self._state == "headers":
            j = buf.find(b"\r\n\r\n")
            if j < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    raise MultipartError(f"a part's headers are over {MAX_HEADER_BYTES} bytes")
                return False
            if j > MAX_HEADER_BYTES:
                raise MultipartError(f"a part's headers are over {MAX_HEADER_BYTES} bytes")
            head = bytes(buf[:j])
            del buf[: j + 4]
            self.parts += 1
            if self.parts > MAX_PARTS:
                raise MultipartError(f"a body has at most {MAX_PARTS} parts")
            events.append(self._part(head))
            self._state = "body"
            return True
        if self._state == "body":
            i = buf.find(self._delim)
            if i < 0:
                keep = len(self._delim) - 1  # a delimiter may be split across feeds
                if len(buf) > keep:
                    events.append(Data(bytes(buf[: len(buf) - keep])))
                    del buf[: len(buf) - keep]
                return False
            if i:
                events.append(Data(bytes(buf[:i])))
            del buf[: i + len(self._delim)]
            events.append(PartEnd())
            self._state = "after_delim"
            return True
        return False

    @staticmethod
    def _part(head: bytes) -> Part:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError:
            raise MultipartError("a part's headers are not UTF-8") from None
        headers: dict[str, str] = {}
        for line in text.split("\r\n"):
            name, colon, value = line.partition(":")
            if not colon or not name.strip():
                raise MultipartError("a part's header line has no name")
            headers[name.strip().lower()] = value.strip()
        kind, params = _params(headers.get("content-disposition", ""))
        if kind != "form-data" or "name" not in params:
            raise MultipartError("a part lacks 'Content-Disposition: form-data; name=...'")
        content_type = headers.get("content-type", "text/plain").split(";")[0].strip().lower()
        return Part(params["name"], params.get("filename"), content_type)
