"""The WQL subset WinRM's WMI plugin hands to WMI, evaluated over ``Host.wmi_enumerate`` results.

``SELECT * | p1, p2 FROM Class [WHERE ...]`` with ``=``, ``<>``/``!=``, ``<``, ``>``, ``<=``, ``>=``, ``LIKE``,
``AND``, ``OR``, ``NOT``, parentheses, ``IS [NOT] NULL``. WMI's rules kept here because clients trip on them:
property and class names are case-insensitive, string comparison is case-insensitive, and inside a string
literal the backslash is an escape character -- ``'C:\\Windows'`` is the path ``C:\\Windows`` written once,
``'C:\\\\Windows'`` in Python source; a lone backslash before any other character is an invalid query
(WBEM_E_INVALID_QUERY), which is what Windows answers for an unescaped path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from . import faults


class WqlError(ValueError):
    """The query is not valid WQL (WMI answers WBEM_E_INVALID_QUERY)."""

    def to_fault(self) -> faults.WsmanFault:
        return faults.cannot_process_filter(str(self))


@dataclass(frozen=True)
class Token:
    kind: str  # "ident", "string", "number", "op", "punct", "star", "end"
    text: str
    value: object = None


_KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IS", "NULL", "TRUE", "FALSE", "LIKE"}
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>-?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d+)?))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><>|!=|<=|>=|=|<|>)
  | (?P<punct>[(),])
  | (?P<star>\*)
  | (?P<quote>['"])
    """,
    re.VERBOSE,
)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise WqlError(f"unexpected character {text[pos]!r} at offset {pos}")
        kind = match.lastgroup or ""
        if kind == "quote":
            value, pos = _read_string(text, pos)
            tokens.append(Token("string", value, value))
            continue
        pos = match.end()
        if kind == "ws":
            continue
        word = match.group()
        if kind == "number":
            number: object = int(word, 16) if word.lower().lstrip("-").startswith("0x") else (
                float(word) if "." in word else int(word))
            tokens.append(Token("number", word, number))
        else:
            tokens.append(Token(kind, word))
    tokens.append(Token("end", ""))
    return tokens


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    pos = start + 1
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            nxt = text[pos + 1] if pos + 1 < len(text) else ""
            if nxt not in ("\\", "'", '"'):
                raise WqlError(f"invalid escape sequence '\\{nxt}' in string literal at offset {pos}")
            out.append(nxt)
            pos += 2
            continue
        if char == quote:
            return "".join(out), pos + 1
        out.append(char)
        pos += 1
    raise WqlError("unterminated string literal")


# --- AST ------------------------------------------------------------------------------------------------

Props = Mapping[str, object]


class Node:
    def evaluate(self, props: Props) -> bool:
        raise NotImplementedError


@dataclass
class BoolOp(Node):
    op: str
    left: Node
    right: Node

    def evaluate(self, props: Props) -> bool:
        if self.op == "AND":
            return self.left.evaluate(props) and self.right.evaluate(props)
        return self.left.evaluate(props) or self.right.evaluate(props)


@dataclass
class Not(Node):
    operand: Node

    def evaluate(self, props: Props) -> bool:
        return not self.operand.evaluate(props)


@dataclass
class IsNull(Node):
    prop: str
    negate: bool

    def evaluate(self, props: Props) -> bool:
        return (lookup(props, self.prop) is None) != self.negate


@dataclass
class Compare(Node):
    prop: str
    op: str
    literal: object

    def evaluate(self, props: Props) -> bool:
        return compare(lookup(props, self.prop), self.op, self.literal)


def lookup(props: Props, name: str) -> object:
    if name in props:
        return props[name]
    lowered = name.lower()
    for key, value in props.items():
        if key.lower() == lowered:
            return value
    raise WqlError(f"the class has no property {name!r}")


def _swap(op: str) -> str:
    return {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)


# --- comparison -----------------------------------------------------------------------------------------


def compare(value: object, op: str, literal: object) -> bool:
    if literal is None:
        if op not in ("=", "<>", "!="):
            raise WqlError(f"NULL cannot be used with {op}")
        return (value is None) == (op == "=")
    if value is None:
        return False
    if isinstance(value, (list, tuple)):
        raise WqlError("array properties cannot be compared in a WHERE clause")
    if op == "LIKE":
        return _like(str(value), _as_text(literal))
    left, right = _coerce(value, literal)
    return _ORDER[op](left, right)


_ORDER: dict[str, Callable[[object, object], bool]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,  # type: ignore[operator]
    ">": lambda a, b: a > b,  # type: ignore[operator]
    "<=": lambda a, b: a <= b,  # type: ignore[operator]
    ">=": lambda a, b: a >= b,  # type: ignore[operator]
}


def _coerce(value: object, literal: object) -> tuple[object, object]:
    """Both sides in one comparable type, following WMI's conversions of the literal to the property type."""
    if isinstance(value, bool):
        return value, _as_bool(literal)
    if isinstance(value, (int, float)):
        return value, _as_number(literal)
    if isinstance(value, datetime):
        return _aware(value), _as_datetime(literal)
    return str(value).casefold(), _as_text(literal).casefold()


def _as_text(literal: object) -> str:
    if isinstance(literal, bool):
        return "TRUE" if literal else "FALSE"
    return str(literal)


def _as_bool(literal: object) -> bool:
    if isinstance(literal, bool):
        return literal
    if isinstance(literal, (int, float)):
        return literal != 0
    text = str(literal).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise WqlError(f"{literal!r} is not a boolean")


def _as_number(literal: object) -> float | int:
    if isinstance(literal, (int, float)) and not isinstance(literal, bool):
        return literal
    try:
        return int(str(literal), 0)
    except ValueError:
        try:
            return float(str(literal))
        except ValueError as exc:
            raise WqlError(f"{literal!r} is not a number") from exc


_DMTF = re.compile(r"^(\d{14})\.(\d{6})([+-])(\d{3})$")


def _as_datetime(literal: object) -> datetime:
    """WMI compares datetimes given as DMTF strings (``20100101000000.000000+000``); ISO 8601 is accepted too."""
    text = str(literal).strip()
    match = _DMTF.match(text)
    if match:
        base = datetime.strptime(match.group(1), "%Y%m%d%H%M%S").replace(microsecond=int(match.group(2)))
        minutes = int(match.group(4)) * (1 if match.group(3) == "+" else -1)
        return base.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    try:
        return _aware(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError as exc:
        raise WqlError(f"{literal!r} is not a datetime") from exc


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _like(value: str, pattern: str) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.IGNORECASE | re.DOTALL) is not None


# --- parser ---------------------------------------------------------------------------------------------


@dataclass
class Query:
    properties: list[str] | None  # None = SELECT *
    class_name: str
    where: Node | None

    def matches(self, props: Props) -> bool:
        return self.where is None or self.where.evaluate(props)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def next(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token.kind == "ident" and token.text.upper() == word:
            self.pos += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            raise WqlError(f"expected {word}, found {self.peek().text or 'end of query'!r}")

    def identifier(self) -> str:
        token = self.next()
        if token.kind != "ident" or token.text.upper() in _KEYWORDS:
            raise WqlError(f"expected a name, found {token.text or 'end of query'!r}")
        return token.text

    def query(self) -> Query:
        self.expect_keyword("SELECT")
        properties = self.select_list()
        self.expect_keyword("FROM")
        class_name = self.identifier()
        where = self.expression() if self.keyword("WHERE") else None
        if self.peek().kind != "end":
            raise WqlError(f"unexpected {self.peek().text!r} after the query")
        return Query(properties, class_name, where)

    def select_list(self) -> list[str] | None:
        if self.peek().kind == "star":
            self.next()
            return None
        names = [self.identifier()]
        while self.peek().kind == "punct" and self.peek().text == ",":
            self.next()
            names.append(self.identifier())
        return names

    def expression(self) -> Node:
        node = self.conjunction()
        while self.keyword("OR"):
            node = BoolOp("OR", node, self.conjunction())
        return node

    def conjunction(self) -> Node:
        node = self.negation()
        while self.keyword("AND"):
            node = BoolOp("AND", node, self.negation())
        return node

    def negation(self) -> Node:
        if self.keyword("NOT"):
            return Not(self.negation())
        return self.primary()

    def primary(self) -> Node:
        token = self.peek()
        if token.kind == "punct" and token.text == "(":
            self.next()
            node = self.expression()
            closing = self.next()
            if closing.text != ")":
                raise WqlError("missing closing parenthesis")
            return node
        if token.kind == "ident" and token.text.upper() not in _KEYWORDS:
            return self.comparison_from_property()
        literal = self.literal()
        op = self.operator()
        return Compare(self.identifier(), _swap(op), literal)

    def comparison_from_property(self) -> Node:
        prop = self.identifier()
        if self.keyword("IS"):
            negate = self.keyword("NOT")
            self.expect_keyword("NULL")
            return IsNull(prop, negate)
        op = self.operator()
        return Compare(prop, op, self.literal())

    def operator(self) -> str:
        if self.keyword("LIKE"):
            return "LIKE"
        token = self.next()
        if token.kind != "op":
            raise WqlError(f"expected a comparison operator, found {token.text or 'end of query'!r}")
        return token.text

    def literal(self) -> object:
        token = self.next()
        if token.kind in ("string", "number"):
            return token.value
        if token.kind == "ident" and token.text.upper() in ("TRUE", "FALSE"):
            return token.text.upper() == "TRUE"
        if token.kind == "ident" and token.text.upper() == "NULL":
            return None
        raise WqlError(f"expected a value, found {token.text or 'end of query'!r}")


def parse(text: str) -> Query:
    return _Parser(text).query()


def select(query: Query, props: Props) -> list[tuple[str, object]]:
    """The selected properties of one instance under the class's own spelling of their names."""
    if query.properties is None:
        return list(props.items())
    return [(canonical_name(props, name), lookup(props, name)) for name in query.properties]


def canonical_name(props: Props, name: str) -> str:
    lowered = name.lower()
    return next((key for key in props if key.lower() == lowered), name)
