"""What a PromQL expression reads: metric names, label matchers, grouping labels, range windows.

    >>> refs = extract('sum by (route) (rate(codesync_http_requests_total{status_code=~"5.."}[5m]))')
    >>> [s.name for s in refs.selectors]
    ['codesync_http_requests_total']
    >>> refs.selectors[0].matchers[0]
    Matcher(label='status_code', op='=~', value='5..')
    >>> sorted(refs.grouping_labels), refs.selectors[0].range_s
    (['route'], 300.0)

The verifier needs to know which series and labels a rule or a dashboard panel depends on
(a rule on a series that is never exported can never fire) and which windows it uses; it
does not need to evaluate PromQL, which Prometheus does. So this is a tokenizer plus a
single pass over the tokens, not a parser: it understands selectors, `{matchers}`,
`[range]` and `[range:step]` subqueries, `offset`, `by/without/on/ignoring/group_left/
group_right (labels)`, and the destination label of `label_replace`/`label_join`, and it
ignores everything else (operators, numbers, functions it does not know). An expression
that cannot be tokenized raises PromQLError naming the position, so a typo in a rules file
is reported rather than silently read as "uses no series".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from codesync_load.stack.durations import parse_duration

__all__ = [
    "Matcher",
    "PromQLError",
    "PromQLRefs",
    "Selector",
    "extract",
    "parse_duration_s",
    "tokenize",
]


class PromQLError(ValueError):
    """An expression this module cannot read; the message names the offset and the text there."""


# Keywords that take a parenthesised list of label names.
GROUPING_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
# Binary set operators and modifiers: never metric names.
OPERATOR_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "atan2"})
AGGREGATIONS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    }
)
NUMBER_WORDS = frozenset({"inf", "nan"})
# Functions that add a label named by their second argument.
LABEL_CREATING_FUNCTIONS = frozenset({"label_replace", "label_join"})


def parse_duration_s(text: str) -> float:
    """Seconds in a PromQL/Prometheus duration such as `5m`, `1h30m`, `500ms`.

    >>> parse_duration_s("1m30s")
    90.0

    The grammar is the one of `codesync_load.stack.durations` (units in descending order,
    each at most once, as Prometheus' model.ParseDuration); only the plain-seconds form that
    newer Prometheus accepts in PromQL ("300") is added here.
    """
    text = text.strip()
    try:
        return parse_duration(text) / 1000
    except ValueError as err:
        try:
            return float(text)
        except ValueError:
            raise PromQLError(str(err)) from None


@dataclass(frozen=True)
class Token:
    kind: str  # ident, string, number, duration, op, punct
    text: str
    pos: int


_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<duration>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*(?![A-Za-z0-9_]))
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[=<>+\-*/%^@])
  | (?P<punct>[{}()\[\],:])
    """,
    re.VERBOSE,
)


def tokenize(expr: str) -> list[Token]:
    """Split an expression into tokens; whitespace and `#` comments are dropped."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN_RE.match(expr, pos)
        if match is None:
            raise PromQLError(f"unexpected character {expr[pos]!r} at offset {pos} in {_clip(expr)}")
        kind = match.lastgroup or ""
        if kind not in ("space", "comment"):
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str

    def matches(self, value: str) -> bool:
        """Whether a label value satisfies this matcher (regexes are anchored, as in Prometheus)."""
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        found = re.fullmatch(self.value, value) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class Selector:
    """One vector selector: `name{matchers}[range] offset d`."""

    name: str | None
    matchers: tuple[Matcher, ...] = ()
    range_s: float | None = None
    range_text: str | None = None

    def matcher(self, label: str) -> Matcher | None:
        for m in self.matchers:
            if m.label == label:
                return m
        return None

    @property
    def label_names(self) -> set[str]:
        return {m.label for m in self.matchers if m.label != "__name__"}

    @property
    def instant(self) -> str:
        """`name{matchers}` without range or offset, for querying the series it reads (named
        selectors only; a `__name__` matcher is the name itself)."""
        inner = ", ".join(f'{m.label}{m.op}"{m.value}"' for m in self.matchers if m.label != "__name__")
        return f"{self.name}{{{inner}}}"

    def __str__(self) -> str:
        inner = ", ".join(f'{m.label}{m.op}"{m.value}"' for m in self.matchers)
        text = (self.name or "") + (f"{{{inner}}}" if inner or not self.name else "")
        return text + (f"[{self.range_text}]" if self.range_text else "")


@dataclass
class PromQLRefs:
    """Everything `extract` found in one expression."""

    expr: str
    selectors: list[Selector] = field(default_factory=list)
    grouping_labels: set[str] = field(default_factory=set)
    created_labels: set[str] = field(default_factory=set)
    # (text, seconds, kind) with kind "range", "subquery" or "step"
    windows: list[tuple[str, float, str]] = field(default_factory=list)
    functions: set[str] = field(default_factory=set)

    @property
    def metric_names(self) -> list[str]:
        """Distinct metric names in order of first use."""
        seen: dict[str, None] = {}
        for sel in self.selectors:
            if sel.name:
                seen.setdefault(sel.name, None)
        return list(seen)


def _clip(expr: str, width: int = 80) -> str:
    flat = " ".join(expr.split())
    return repr(flat if len(flat) <= width else flat[: width - 3] + "...")


def _unquote(text: str) -> str:
    if text[0] == "`":
        return text[1:-1]
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


class _Reader:
    """A cursor over the tokens with the small lookaheads `extract` needs."""

    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = tokenize(expr)
        self.i = 0

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def next(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise PromQLError(f"expression ends too early: {_clip(self.expr)}")
        self.i += 1
        return tok

    def expect(self, text: str) -> Token:
        tok = self.next()
        if tok.text != text:
            raise PromQLError(f"expected {text!r} at offset {tok.pos}, found {tok.text!r} in {_clip(self.expr)}")
        return tok


def _read_label_list(reader: _Reader) -> list[str]:
    reader.expect("(")
    labels: list[str] = []
    while True:
        tok = reader.next()
        if tok.text == ")":
            return labels
        if tok.text == ",":
            continue
        if tok.kind not in ("ident", "string"):
            raise PromQLError(f"label name expected at offset {tok.pos}, found {tok.text!r} in {_clip(reader.expr)}")
        labels.append(_unquote(tok.text) if tok.kind == "string" else tok.text)


def _read_matchers(reader: _Reader) -> list[Matcher]:
    reader.expect("{")
    matchers: list[Matcher] = []
    while True:
        tok = reader.next()
        if tok.text == "}":
            return matchers
        if tok.text == ",":
            continue
        if tok.kind == "string":  # Prometheus 3 quoted metric name: {"name"}
            matchers.append(Matcher("__name__", "=", _unquote(tok.text)))
            continue
        if tok.kind != "ident":
            raise PromQLError(f"label name expected at offset {tok.pos}, found {tok.text!r} in {_clip(reader.expr)}")
        op = reader.next()
        if op.text not in ("=", "!=", "=~", "!~"):
            raise PromQLError(
                f"matcher operator expected at offset {op.pos}, found {op.text!r} in {_clip(reader.expr)}"
            )
        value = reader.next()
        if value.kind != "string":
            raise PromQLError(f"quoted label value expected at offset {value.pos} in {_clip(reader.expr)}")
        matchers.append(Matcher(tok.text, op.text, _unquote(value.text)))


def _read_window(reader: _Reader, refs: PromQLRefs) -> tuple[str, float, bool]:
    """`[5m]` or the subquery `[5m:1m]` / `[5m:]`; returns the range part and whether it is a plain range."""
    opening = reader.expect("[")
    while True:
        tok = reader.next()
        if tok.text == "]":
            break
    # Read the raw text: the tokenizer may glue ":30s" into one identifier-like token.
    parts = [part.strip() for part in reader.expr[opening.pos + 1 : tok.pos].split(":")]
    range_text = parts[0]
    if not range_text:
        raise PromQLError(f"empty range [] in {_clip(reader.expr)}")
    seconds = parse_duration_s(range_text)
    if len(parts) > 1:
        refs.windows.append((range_text, seconds, "subquery"))
        if parts[1]:
            refs.windows.append((parts[1], parse_duration_s(parts[1]), "step"))
        return range_text, seconds, False
    refs.windows.append((range_text, seconds, "range"))
    return range_text, seconds, True


def _attach_range(refs: PromQLRefs, text: str, seconds: float) -> None:
    """A `[range]` right after a selector belongs to that selector."""
    if refs.selectors:
        last = refs.selectors[-1]
        refs.selectors[-1] = Selector(last.name, last.matchers, seconds, text)


def extract(expr: str) -> PromQLRefs:
    """Read the selectors, grouping labels and windows of one PromQL expression."""
    refs = PromQLRefs(expr=expr)
    reader = _Reader(expr)
    # Stack of open calls: (function name, paren depth, index of argument being read).
    calls: list[list] = []
    depth = 0
    previous: Token | None = None
    while reader.peek() is not None:
        tok = reader.peek()
        assert tok is not None
        if tok.kind == "ident":
            word = tok.text
            lower = word.lower()
            nxt = reader.peek(1)
            if lower in GROUPING_KEYWORDS and nxt is not None and nxt.text == "(":
                reader.next()
                refs.grouping_labels.update(_read_label_list(reader))
            elif lower in GROUPING_KEYWORDS:
                reader.next()  # group_left without a label list
            elif lower == "offset":
                reader.next()
                sign = reader.peek()
                if sign is not None and sign.text == "-":
                    reader.next()
                reader.next()
            elif lower in OPERATOR_KEYWORDS or lower in NUMBER_WORDS:
                reader.next()
            elif nxt is not None and nxt.text == "(" and ":" not in word:
                reader.next()
                refs.functions.add(word)
                calls.append([word, depth + 1, 0])
            elif lower in AGGREGATIONS and nxt is not None and nxt.text.lower() in GROUPING_KEYWORDS:
                reader.next()  # `sum by (x) (...)`: the grouping is read next, then the call
                refs.functions.add(word)
                reader.next()
                refs.grouping_labels.update(_read_label_list(reader))
                if reader.peek() is not None and reader.peek().text == "(":  # type: ignore[union-attr]
                    calls.append([word, depth + 1, 0])
            else:
                reader.next()
                matchers: list[Matcher] = []
                if nxt is not None and nxt.text == "{":
                    matchers = _read_matchers(reader)
                refs.selectors.append(Selector(word, tuple(matchers)))
            previous = tok
            continue
        if tok.text == "{":
            matchers = _read_matchers(reader)
            name_matcher = next((m for m in matchers if m.label == "__name__" and m.op == "="), None)
            refs.selectors.append(Selector(name_matcher.value if name_matcher else None, tuple(matchers)))
            previous = tok
            continue
        if tok.text == "[":
            text, seconds, plain = _read_window(reader, refs)
            if plain and previous is not None and previous.text != ")":
                _attach_range(refs, text, seconds)
            previous = tok
            continue
        reader.next()
        if tok.text == "(":
            depth += 1
        elif tok.text == ")":
            if calls and calls[-1][1] == depth:
                calls.pop()
            depth -= 1
        elif tok.text == "," and calls and calls[-1][1] == depth:
            calls[-1][2] += 1
        elif tok.kind == "string" and calls and calls[-1][1] == depth:
            name, _, arg_index = calls[-1]
            if name in LABEL_CREATING_FUNCTIONS and arg_index == 1:
                refs.created_labels.add(_unquote(tok.text))
        previous = tok
    if depth != 0:
        raise PromQLError(f"unbalanced parentheses in {_clip(expr)}")
    return refs
