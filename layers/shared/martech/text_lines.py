"""A binary stream read as numbered lines of text, a chunk at a time: UTF-8 (or a charset that writes
ASCII as ASCII, or UTF-16 with its BOM, read as UTF-8), a line that is not so set aside alone."""

from __future__ import annotations

import codecs
import io
import re
from collections import deque
from typing import IO, Any
from collections.abc import Iterator

from martech.records import UnreadableFile

CHUNK = 1 << 16
# No record can be sent larger than this (a vendor's whole post is at most a few MB): a line or a JSON
# array item past it is set aside or fails the file, instead of filling the memory.
LONGEST_RECORD = 8 << 20
_SHOWN_OF_TOO_LONG = 200  # bytes of such a line kept, to say which it was
BOM = b"\xef\xbb\xbf"
_BOM_AT_LINE_START = re.compile("(^|[\r\n])\ufeff")


class Utf16AsUtf8(io.RawIOBase):
    """UTF-16 bytes read as UTF-8 bytes; text that is not UTF-16, or cut short, raises UnicodeError."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder("utf-16")()  # takes the byte order from the BOM
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            data = self._raw.read(len(buffer))
            self._pending = self._decoder.decode(data, final=not data).encode("utf-8")
            if not data:
                break
        n = min(len(buffer), len(self._pending))
        buffer[:n], self._pending = self._pending[:n], self._pending[n:]
        return n


class Readable(io.RawIOBase):
    """Adapts any object with ``read(n)`` (a botocore StreamingBody, say) to io.RawIOBase."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n


class Utf8Text:
    """A binary stream read as UTF-8 text (a BOM dropped); text that is not UTF-8 makes the file
    unreadable, with the line it is on."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._line = 1  # the line the text read next starts on

    def read(self, size: int) -> str:
        data = self._raw.read(size)
        try:
            text = self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:  # exc.object: the bytes not yet decoded, this chunk's and any before
            line = self._line + exc.object.count(b"\n", 0, exc.start)
            raise UnreadableFile(f"line {line}: not UTF-8 text (byte {exc.object[exc.start]:#04x})") from None
        self._line += text.count("\n")
        return text


class Lines:
    """A binary stream's lines of text, a chunk at a time, numbered from 1 and ending as written
    (``\\n``, ``\\r\\n`` or ``\\r``). A BOM is dropped. A line that is not UTF-8 (or not the
    ``encoding`` given, one that writes ASCII as ASCII) is decoded with replacement characters and
    noted in ``undecodable`` with what is wrong, so that its record alone is set aside. A CSV's (``of_csv``)
    lines from ``keep_from`` on are kept, to be read again (``between``), and a line that is not UTF-8
    says that the file's charset can be named."""

    def __init__(self, raw: IO[bytes], of_csv: bool = False, encoding: str = "utf-8", mislabelled: str = "") -> None:
        self._raw = raw
        self._of_csv = of_csv
        self._encoding = encoding
        self._chunks: deque[tuple[int, list[str]]] = deque()  # (number of the chunk's first line, lines)
        self._next = 1
        self.keep_from = 1
        self.undecodable: dict[int, str] = {}
        self._mislabelled = mislabelled  # what to say if the text is UTF-8 after all (see _check_label)
        self._label_checked = encoding == "utf-8"

    def __iter__(self) -> Iterator[list[str]]:
        pieces: list[bytes] = []  # of a line that goes on past the chunks read so far
        held = 0  # their length
        chunk = self._raw.read(CHUNK).removeprefix(BOM)
        while chunk:
            # The lines end where the last one does: a UTF-8 character never holds a newline byte.
            # A \r at the very end may yet be followed by \n, so it is left for the next chunk.
            cut = chunk.rfind(b"\n") + 1 or chunk.rfind(b"\r", 0, len(chunk) - 1) + 1
            if cut:
                pieces.append(chunk[:cut])
                yield self._numbered(self._decode(b"".join(pieces)))
                pieces = [chunk[cut:]]
                held = len(pieces[0])
            else:
                pieces.append(chunk)
                held += len(chunk)
                if held > LONGEST_RECORD:  # its start is kept to say which line it was; the rest is skipped
                    yield self._numbered([self._too_long(b"".join(pieces[:2]))])  # a chunk holds more than is kept
                    pieces, held = [], 0
                    chunk = self._after_line(self._raw.read(CHUNK)) or self._raw.read(CHUNK)
                    continue
            chunk = self._raw.read(CHUNK)
        if rest := b"".join(pieces):
            yield self._numbered(self._decode(rest))

    def _too_long(self, start: bytes) -> str:
        self.undecodable[self._next] = (f"the line runs over {LONGEST_RECORD >> 20} MiB, larger than any record can be"
                                        " sent; a whole JSON array on one line belongs in a .json file")
        return start[:_SHOWN_OF_TOO_LONG].decode(self._encoding, errors="replace") + "…"

    def _after_line(self, chunk: bytes) -> bytes:
        """What follows the end of the line under way, reading on from ``chunk``; empty at the stream's end."""
        while chunk:
            ends = [i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0]
            if ends:
                end = min(ends)
                rest = chunk[end + 1:]
                if chunk[end] == 13:  # \r, perhaps of \r\n
                    rest = (rest or self._raw.read(CHUNK)).removeprefix(b"\n")
                return rest
            chunk = self._raw.read(CHUNK)
        return b""

    def _numbered(self, lines: list[str]) -> list[str]:
        if self._of_csv:
            while self._chunks and self._chunks[0][0] + len(self._chunks[0][1]) <= self.keep_from:
                self._chunks.popleft()
            self._chunks.append((self._next, lines))
        self._next += len(lines)
        return lines

    def _decode(self, data: bytes) -> list[str]:
        if not self._label_checked and not data.isascii():
            self._check_label(data)
        try:
            text = data.decode(self._encoding)
        except UnicodeDecodeError:
            pass
        else:
            # Files joined with their BOMs (Excel's "CSV UTF-8" writes one): each starts the line it is at.
            # Looking costs nothing in text of Latin-1 alone, where no BOM can be.
            if "\ufeff" in text:
                text = _BOM_AT_LINE_START.sub(r"\1", text)
            return io.StringIO(text, newline="").readlines()
        lines = io.StringIO(data.decode("latin-1"), newline="").readlines()  # the bytes, split where text would be
        for number, line in enumerate(lines, start=self._next):
            raw = line.encode("latin-1").removeprefix(BOM)
            try:
                lines[number - self._next] = raw.decode(self._encoding)
            except UnicodeDecodeError as exc:
                self.undecodable[number] = _undecodable(raw, exc.start, self._encoding, self._of_csv)
                lines[number - self._next] = raw.decode(self._encoding, errors="replace")
        return lines

    def _check_label(self, data: bytes) -> None:
        """A file its Content-Type says is in another charset, whose first text past ASCII is UTF-8, is
        UTF-8 mislabelled (text in Windows-1252 and the like is next to never also UTF-8): read as
        labelled, each é would be sent as Ã©."""
        self._label_checked = True
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return
        raise UnreadableFile(self._mislabelled)

    def between(self, first: int, last: int) -> list[str]:
        """Lines ``first`` to ``last``, read already and not before ``keep_from``."""
        found: list[str] = []
        for start, lines in self._chunks:
            if start <= last and first < start + len(lines):
                found += lines[max(0, first - start):last - start + 1]
        return found


def _undecodable(line: bytes, at: int, encoding: str, of_csv: bool) -> str:
    """Why a line is not text in ``encoding``. For UTF-8, also the character the byte would be in
    Windows-1252, which is what Excel and older tools write unless told to save UTF-8; a CSV may say
    so in its Content-Type."""
    reason = f"not {'UTF-8' if encoding == 'utf-8' else encoding} text: byte {at + 1} of the line is {line[at]:#04x}"
    character = line[at:at + 1].decode("cp1252", errors="ignore")
    if encoding == "utf-8" and character.isprintable() and character.strip():
        reason += f" (it would be {character!r} in Windows-1252: save the file as UTF-8; Excel calls it CSV UTF-8"
        reason += ", or upload it with Content-Type text/csv; charset=windows-1252)" if of_csv else ")"
    return reason
