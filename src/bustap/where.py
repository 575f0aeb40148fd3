"""The condition language of ``bustap query --where`` and of alert rules.

One parser, one meaning: :func:`parse` turns the text into a small tree that
the store compiles to parameterised SQL (:mod:`bustap.store.query`) and that
the alert engine evaluates on live records (:meth:`Node.match`). Nothing is
ever evaluated as code.

    cond   := path OP value | path contains 'text' | path exists
    expr   := term ((and|or) term)*        term := not term | ( expr ) | cond
    OP     := = != < <= > >= ~             (~ is an RE2 regular expression)

``path`` is a column of the store (``topic``, ``qos``, ``device``...) or a
path under ``fields``, ``payload``, ``headers``, ``properties`` or
``extra``. ``fields`` is flat by contract, so ``fields.disk.persistent.percent``
names the key ``disk.persistent.percent`` (a nested path is tried next).

Evaluation follows SQL's three-valued logic, so a rule and a query agree: a
comparison with a missing value is unknown, ``not unknown`` is unknown, and
only a true condition matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from .errors import ConfigError
from .store.schema import BY_NAME, COLUMN_NAMES

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?![\w.])
    | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<op>==|!=|<>|<=|>=|=|<|>|~)
    | (?P<paren>[()])
    | (?P<word>[A-Za-z_$][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)*)
    )""", re.VERBOSE)
_WORDS = {"and", "or", "not", "true", "false", "null", "exists", "contains"}
JSON_ROOTS = ("fields", "payload", "headers", "properties", "extra")
_SEGMENT = re.compile(r"[A-Za-z0-9_\-]+")
_INT_COLUMNS = frozenset(c.name for c in BY_NAME.values() if c.duck in ("BIGINT", "SMALLINT"))
_BOOL_COLUMNS = frozenset(c.name for c in BY_NAME.values() if c.duck == "BOOLEAN")
MAX_LENGTH = 2000
MAX_DEPTH = 20


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    text: str
    pos: int


# --- the tree -----------------------------------------------------------------


class Node:
    def match(self, rec: dict[str, Any]) -> bool:
        """True when the condition holds for ``rec`` (unknown is not a match)."""
        return self.eval(rec) is True

    def eval(self, rec: dict[str, Any]) -> bool | None:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class BoolOp(Node):
    op: str  # "and" | "or"
    items: tuple[Node, ...]

    def eval(self, rec: dict[str, Any]) -> bool | None:
        unknown = False
        stop = self.op == "or"  # or: the first true decides; and: the first false
        for item in self.items:
            v = item.eval(rec)
            if v is None:
                unknown = True
            elif v is stop:
                return stop
        return None if unknown else not stop


@dataclass(frozen=True, slots=True)
class Not(Node):
    item: Node

    def eval(self, rec: dict[str, Any]) -> bool | None:
        v = self.item.eval(rec)
        return None if v is None else not v


@dataclass(frozen=True, slots=True)
class Cond(Node):
    root: str  # a column name or a JSON root
    path: tuple[str, ...]  # below a JSON root; () for a column
    op: str  # = != < <= > >= ~ contains exists
    value: Any = None
    numeric: bool = False  # compared as numbers
    regex: Any = None  # compiled RE2 for ~

    def eval(self, rec: dict[str, Any]) -> bool | None:
        found, v = lookup(rec, self.root, self.path)
        if self.op == "exists":
            return found and v is not None
        if self.value is None:  # = null / != null
            missing = not found or v is None
            return missing if self.op == "=" else not missing
        if not found or v is None:
            return None
        if self.op == "contains":
            return str(self.value).lower() in as_text(v).lower()
        if self.op == "~":
            return self.regex.search(as_text(v)) is not None
        if self.numeric:
            x = _number(v)
            if x is None:
                return None
            return _compare(self.op, x, float(self.value))
        if isinstance(self.value, bool) and isinstance(v, bool):
            return _compare(self.op, v, self.value)
        return _compare(self.op, as_text(v), as_text(self.value))

    @property
    def name(self) -> str:
        return ".".join((self.root, *self.path))


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "=":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def as_text(v: Any) -> str:
    """The text the stores compare with (json_extract_string / ->>)."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    try:
        return orjson.dumps(v, default=str).decode()
    except TypeError:
        return str(v)


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def lookup(rec: dict[str, Any], root: str, path: tuple[str, ...] = ()) -> tuple[bool, Any]:
    """``(found, value)`` of a path in a record, as the store sees it."""
    if root == "extra":
        if not path:
            return False, None
        base: Any = rec
    else:
        key = BY_NAME[root].key if root in BY_NAME else root
        if key not in rec:
            return False, None
        base = rec[key]
        if not path:
            return True, base
    if not isinstance(base, dict):
        return False, None
    if len(path) > 1:  # flat first: fields are flat by contract
        flat = ".".join(path)
        if flat in base:
            return True, base[flat]
    v = base
    for seg in path:
        if isinstance(v, dict) and seg in v:
            v = v[seg]
        elif isinstance(v, list) and seg.isdigit() and int(seg) < len(v):
            v = v[int(seg)]
        else:
            return False, None
    return True, v


# --- parsing --------------------------------------------------------------------


def parse(text: str, *, what: str = "--where") -> Node:
    """Parse a condition; a :class:`ConfigError` names the text and the reason."""
    if not isinstance(text, str):
        raise ConfigError(f"invalid {what}: expected a string, not {text!r}", value=text)
    if len(text) > MAX_LENGTH:
        raise ConfigError(f"invalid {what}: longer than {MAX_LENGTH} characters",
                          value=text[:80])
    return _Parser(text, what).parse()


def _tokens(text: str, error: Any) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise error(f"unexpected {text[pos:].strip()[:20]!r} at position {pos}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        start = m.start(kind)
        if kind == "word" and value.lower() in _WORDS:
            kind, value = "kw", value.lower()
        out.append(_Tok(kind, value, start))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.toks = _tokens(text, self.error)
        self.i = 0

    def error(self, reason: str) -> ConfigError:
        return ConfigError(f"invalid {self.what} {self.text!r}: {reason}", value=self.text)

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise self.error("unexpected end")
        self.i += 1
        return tok

    def parse(self) -> Node:
        if not self.toks:
            raise self.error("empty")
        node = self.expr(0)
        tok = self.peek()
        if tok is not None:
            raise self.error(f"unexpected {tok.text!r}")
        return node

    def expr(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise self.error("nested too deep")
        # and binds tighter than or, as in SQL
        ors = [self.conj(depth)]
        while (tok := self.peek()) is not None and tok.kind == "kw" and tok.text == "or":
            self.i += 1
            ors.append(self.conj(depth))
        return ors[0] if len(ors) == 1 else BoolOp("or", tuple(ors))

    def conj(self, depth: int) -> Node:
        ands = [self.term(depth)]
        while (tok := self.peek()) is not None and tok.kind == "kw" and tok.text == "and":
            self.i += 1
            ands.append(self.term(depth))
        return ands[0] if len(ands) == 1 else BoolOp("and", tuple(ands))

    def term(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise self.error("nested too deep")
        tok = self.take()
        if tok.kind == "kw" and tok.text == "not":
            return Not(self.term(depth + 1))
        if tok.kind == "paren" and tok.text == "(":
            inner = self.expr(depth + 1)
            close = self.take()
            if close.text != ")":
                raise self.error("missing ')'")
            return inner
        if tok.kind != "word":
            raise self.error(f"expected a field name, found {tok.text!r}")
        return self.condition(tok.text)

    def literal(self) -> Any:
        tok = self.take()
        if tok.kind == "num":
            return float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
        if tok.kind == "str":
            return re.sub(r"\\(.)", r"\1", tok.text[1:-1])
        if tok.kind == "kw" and tok.text in ("true", "false"):
            return tok.text == "true"
        if tok.kind == "kw" and tok.text == "null":
            return None
        if tok.kind == "word":  # a bare word is a string: event = link_down
            return tok.text
        raise self.error(f"expected a value, found {tok.text!r}")

    def condition(self, name: str) -> Cond:
        root, path = self.path(name)
        op_tok = self.take()
        if op_tok.kind == "kw" and op_tok.text == "exists":
            return Cond(root, path, "exists")
        if op_tok.kind == "kw" and op_tok.text == "contains":
            op = "contains"
        elif op_tok.kind == "op":
            op = {"==": "=", "<>": "!="}.get(op_tok.text, op_tok.text)
        else:
            raise self.error(f"expected an operator after {name!r}, found {op_tok.text!r}")
        value = self.literal()
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if value is None and op not in ("=", "!="):
            raise self.error("null only compares with = or !=")
        if not path and root in _INT_COLUMNS and not numeric and value is not None \
                and op not in ("contains", "~"):
            raise self.error(f"{root} is a number: compare it with a number")
        regex = None
        if op == "~":
            regex = compile_regex(str(value), self.error)
        numeric = numeric and op not in ("contains", "~")
        if not path and root in _BOOL_COLUMNS and numeric:
            # the stores cast '1' and '0' to true and false, and refuse others
            if value not in (0, 1):
                raise self.error(f"{root} is true or false: compare it with true or false")
            value = bool(value)
        if not path and root not in _INT_COLUMNS:
            numeric = False  # text columns compare as text, as in the stores
        return Cond(root, path, op, value, numeric, regex)

    def path(self, name: str) -> tuple[str, tuple[str, ...]]:
        segs = name.split(".")
        root = segs[0]
        if root in JSON_ROOTS and len(segs) > 1:
            for seg in segs[1:]:
                if not _SEGMENT.fullmatch(seg):
                    raise self.error(f"bad path segment {seg!r}")
            return root, tuple(segs[1:])
        if len(segs) > 1 or root not in BY_NAME:
            known = ", ".join([*COLUMN_NAMES, *(f"{r}.PATH" for r in JSON_ROOTS)])
            raise self.error(f"unknown field {name!r} (known: {known})")
        return root, ()


def compile_regex(pattern: str, error: Any) -> Any:
    """RE2, as DuckDB's regexp_matches: linear time, so a rule's regular
    expression cannot stall capture on a hostile payload."""
    import re2

    try:
        return re2.compile(pattern)
    except Exception as exc:
        raise error(f"bad regular expression {pattern!r}: {exc}") from None


def conditions(node: Node) -> list[Cond]:
    """Every comparison in the tree (rules list the fields they read)."""
    if isinstance(node, Cond):
        return [node]
    if isinstance(node, Not):
        return conditions(node.item)
    if isinstance(node, BoolOp):
        return [c for item in node.items for c in conditions(item)]
    return []
