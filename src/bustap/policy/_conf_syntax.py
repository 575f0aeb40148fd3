"""A reader for nats-server's configuration syntax (conf/lex.go, conf/parse.go).

Hand-written because no maintained Python library reads this format: it is
neither JSON, HOCON nor TOML (``key: value``, ``key = value`` and ``key
value`` all work; maps and arrays take commas, semicolons or newlines; ``#``
and ``//`` comments; bare strings; ``$VAR`` references resolved against the
enclosing blocks, then the environment; ``include FILE``). Only what the
authorization part of a config needs is interpreted; every value keeps the
line it was written on so a decision can name it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..errors import ConfigError

_BARE_END = set(" \t\r\n,;]}")
_KEY_END = set(" \t\r\n:=")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
_MAX_INCLUDE_DEPTH = 10


class Text(str):
    """A string value with the file and line it was written on."""

    line: int
    file: str

    def __new__(cls, value: str, file: str, line: int) -> Text:
        obj = super().__new__(cls, value)
        obj.line = line
        obj.file = file
        return obj


class Block(dict[str, Any]):
    """A map value; ``var`` is the variable it was reached through, if any."""

    line: int = 0
    file: str = ""
    var: str | None = None


class Array(list[Any]):
    line: int = 0


class _Reader:
    def __init__(self, text: str, path: Path, depth: int) -> None:
        self.s = text
        self.i = 0
        self.line = 1
        self.path = path
        self.name = path.name
        self.depth = depth

    def error(self, what: str) -> ConfigError:
        return ConfigError(f"{self.name}:{self.line}: {what}", value=str(self.path))

    # --- low level -------------------------------------------------------------

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def advance(self, n: int = 1) -> None:
        self.line += self.s.count("\n", self.i, self.i + n)
        self.i += n

    def skip(self, newlines: bool = True) -> None:
        """Whitespace and comments; newlines too unless told otherwise."""
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t\r" or (newlines and c == "\n"):
                self.advance()
            elif c == "#" or self.s.startswith("//", self.i):
                j = self.s.find("\n", self.i)
                self.i = len(self.s) if j < 0 else j
            else:
                return

    # --- structure -------------------------------------------------------------

    def entries(self, into: Block, scopes: list[Block], end: str) -> None:
        while True:
            self.skip()
            c = self.peek()
            if not c:
                if end:
                    raise self.error(f"missing {end!r} at end of file")
                return
            if c == end:
                self.advance()
                return
            if c in ",;":
                self.advance()
                continue
            key_line = self.line
            key = self.key()
            self.skip(newlines=False)
            if key == "include" and self.peek() not in ":=":
                self.include(into, scopes)
                continue
            if self.peek() in ":=":
                self.advance()
                self.skip(newlines=False)
            value = self.value([*scopes, into])
            if isinstance(value, Block) and not value.line:
                value.line = key_line
            into[key] = value

    def key(self) -> str:
        c = self.peek()
        if c in "\"'":
            return str(self.quoted(c))
        start = self.i
        while self.i < len(self.s) and self.s[self.i] not in _KEY_END and \
                self.s[self.i] not in "{[":
            self.i += 1
        if self.i == start:
            raise self.error(f"expected a key, found {c!r}")
        return self.s[start:self.i]

    def include(self, into: Block, scopes: list[Block]) -> None:
        value = self.value(scopes)
        if not isinstance(value, str):
            raise self.error("include needs a file name")
        if self.depth >= _MAX_INCLUDE_DEPTH:
            raise self.error(f"include nested more than {_MAX_INCLUDE_DEPTH} deep")
        target = (self.path.parent / str(value)).resolve()
        try:
            text = target.read_text(encoding="utf-8")
        except OSError as exc:
            raise self.error(f"cannot include {value!r}: {exc.strerror}") from exc
        _Reader(text, target, self.depth + 1).entries(into, scopes, "")

    def value(self, scopes: list[Block]) -> Any:
        c = self.peek()
        line = self.line
        if c == "{":
            self.advance()
            block = Block()
            block.line, block.file = line, self.name
            self.entries(block, scopes, "}")
            return block
        if c == "[":
            self.advance()
            arr = Array()
            arr.line = line
            while True:
                self.skip()
                c = self.peek()
                if not c:
                    raise self.error("missing ']' at end of file")
                if c == "]":
                    self.advance()
                    return arr
                if c in ",;":
                    self.advance()
                    continue
                arr.append(self.value(scopes))
        if c in "\"'":
            return self.quoted(c)
        if c == "$":
            return self.variable(scopes)
        if c == "(":
            raise self.error("block strings '( ... )' are not supported here")
        start = self.i
        while self.i < len(self.s) and self.s[self.i] not in _BARE_END:
            self.i += 1
        word = self.s[start:self.i]
        if not word:
            raise self.error(f"expected a value, found {c or 'end of file'!r}")
        low = word.lower()
        if low in _BOOLS:
            return _BOOLS[low]
        if _NUMBER.fullmatch(word):
            return float(word) if any(ch in word for ch in ".eE") else int(word)
        return Text(word, self.name, line)

    def quoted(self, quote: str) -> Text:
        line = self.line
        out: list[str] = []
        self.advance()
        while True:
            if self.i >= len(self.s):
                raise self.error("unterminated string")
            c = self.s[self.i]
            if c == quote:
                self.advance()
                return Text("".join(out), self.name, line)
            if c == "\n":
                raise self.error("newline inside a quoted string")
            if c == "\\" and quote == '"':
                nxt = self.s[self.i + 1:self.i + 2]
                esc = {"t": "\t", "n": "\n", "r": "\r", '"': '"', "\\": "\\"}.get(nxt)
                if esc is not None:
                    out.append(esc)
                    self.advance(2)
                    continue
                if nxt == "u":
                    code = self.s[self.i + 2:self.i + 6]
                    try:
                        out.append(chr(int(code, 16)))
                    except ValueError:
                        raise self.error(f"bad escape \\u{code}") from None
                    self.advance(6)
                    continue
                raise self.error(f"bad escape \\{nxt}")
            out.append(c)
            self.advance()

    def variable(self, scopes: list[Block]) -> Any:
        line = self.line
        self.advance()
        start = self.i
        while self.i < len(self.s) and (self.s[self.i].isalnum() or self.s[self.i] in "_-"):
            self.i += 1
        name = self.s[start:self.i]
        if not name:
            raise self.error("'$' without a variable name")
        for scope in reversed(scopes):
            if name in scope:
                found = scope[name]
                if isinstance(found, Block):
                    # The same block under another name: keep where it is written.
                    ref = Block(found)
                    ref.line, ref.file, ref.var = found.line, found.file, name
                    return ref
                return found
        env = os.environ.get(name)
        if env is not None:
            return _Reader(env, self.path, self.depth).value(scopes) if env else \
                Text("", self.name, line)
        raise self.error(f"variable reference for {name!r} can not be found")


def parse_conf(text: str, path: Path) -> Block:
    """The whole file as nested :class:`Block`, :class:`Array` and scalars."""
    top = Block()
    top.file = path.name
    _Reader(text, path, 0).entries(top, [], "")
    return top


def load_conf(path: str | Path) -> Block:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", value=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text", value=str(path)) from exc
    return parse_conf(text, p)
