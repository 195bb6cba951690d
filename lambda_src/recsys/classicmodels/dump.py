"""The public classicmodels dump lab users have (`mysqlsampledatabase.sql`, mysqltutorial.org) as a `Dataset`: its real
rows for the eight sample tables, plus `ratings` generated over the (customer, product) pairs its orders really hold.

The dump is what SQLyog/mysqldump write: comments (`/* */`, `/*!40101 ... */`, `-- `, `#`), `CREATE`/`DROP`/`SET`/`USE`
statements (skipped: the lab's schema is `recsys.classicmodels.schema`), and multi-row
`insert  into `t`(`c1`,...) values (...),(...);` statements, read here with MySQL's quoting and escapes (`\\'`,
`''`, `\\r\\n`, ...). Values get their column's type from the lab's DDL (int, decimal, date, text); the rows must
satisfy the DDL's NOT NULL columns, primary keys and foreign keys, as a MySQL load would require. Anything else is a
`DumpError`: one line saying what is wrong and what file was expected.

The ratings follow the same hidden preferences as the generated catalogue's (`recsys.classicmodels.ratings`: region x
product line, credit limit x price, large scales, per-customer taste, noise), computed from the dump's real countries,
credit limits, lines, scales and prices; the same seed always gives the same ratings.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, NoReturn, cast

from recsys.classicmodels.generator import DEFAULT_SEED
from recsys.classicmodels.ratings import Preferences, draw_tastes, mean_sd, ordered_pairs, rate
from recsys.classicmodels.schema import COLUMNS, DDL, SAMPLE_TABLES, Dataset, Row, TableName
from recsys.classicmodels.world import COUNTRY_REGION

# The published dump is about 200 KB; anything far bigger is another file (and would not fit a Lambda's memory anyway).
MAX_DUMP_BYTES = 64 * 1024 * 1024
EXPECTED = ("expected mysqlsampledatabase.sql from mysqltutorial.org (the classicmodels sample's CREATE TABLE and "
            "INSERT statements)")


class DumpError(ValueError):
    """The file is not a classicmodels dump this reader can load; the message is one line and names the file."""


# --- tokens -------------------------------------------------------------------------------------------------------
Kind = Literal["string", "name", "number", "word", "symbol"]

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>/\*.*?\*/|--(?:[ \t\r\n][^\n]*)?(?=\n|$)|\#[^\n]*)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<name>`(?:[^`]|``)*`)
  | (?P<number>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<symbol>[(),;.])
  | (?P<unclosed>/\*|['"`])
  | (?P<other>.)
""", re.DOTALL | re.VERBOSE)
_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a", "%": "\\%", "_": "\\_"}
_ESCAPE = re.compile(r"\\(.)|('')|(\"\")", re.DOTALL)


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str  # strings unquoted and unescaped, names unquoted
    at: int  # offset in the text, for line numbers in errors


def _unescape(body: str) -> str:
    """A MySQL string literal's content: backslash escapes (`\\%` and `\\_` keep their backslash) and doubled quotes."""
    def one(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return _ESCAPES.get(match.group(1), match.group(1))
        return match.group(0)[0]
    return _ESCAPE.sub(one, body)


def _tokens(text: str, source: str) -> Iterator[Token]:
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        if kind in ("space", "comment"):
            continue
        value = match.group()
        if kind == "unclosed":
            what = "comment" if value == "/*" else "quoted text"
            raise DumpError(f"{source}: line {_line(text, match.start())}: {what} that never ends: {EXPECTED}")
        if kind == "other":
            yield Token("symbol", value, match.start())
        elif kind == "string":
            yield Token("string", _unescape(value[1:-1]), match.start())
        elif kind == "name":
            yield Token("name", value[1:-1].replace("``", "`"), match.start())
        else:
            yield Token(cast(Kind, kind), value, match.start())


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _statements(tokens: Iterator[Token]) -> Iterator[list[Token]]:
    statement: list[Token] = []
    for token in tokens:
        if token.kind == "symbol" and token.text == ";":
            if statement:
                yield statement
            statement = []
        else:
            statement.append(token)
    if statement:
        yield statement


# --- INSERT statements --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Insert:
    table: str
    columns: tuple[str, ...] | None  # None: the statement names no columns (the table's order)
    rows: list[tuple[int, list[Any]]]  # (offset of the row's "(", raw values: str, None, or Number)


@dataclass(frozen=True)
class Number:
    text: str  # an unquoted numeric literal, converted by the column's type


class _Reader:
    """One statement's tokens, read left to right; `fail` names the line of the token at hand."""

    def __init__(self, tokens: list[Token], text: str, source: str) -> None:
        self.tokens, self.text, self.source, self.i = tokens, text, source, 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self, what: str) -> Token:
        token = self.peek()
        if token is None:
            self.fail(f"the statement ends where {what} should be", self.tokens[-1].at)
        self.i += 1
        return token

    def word(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.upper() in words:
            self.i += 1
            return True
        return False

    def symbol(self, symbol: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "symbol" and token.text == symbol:
            self.i += 1
            return True
        return False

    def expect(self, symbol: str, what: str) -> None:
        if not self.symbol(symbol):
            token = self.next(what)
            self.fail(f"expected {what}, found {token.text[:20]!r}", token.at)

    def identifier(self, what: str) -> str:
        token = self.next(what)
        if token.kind not in ("name", "word"):
            self.fail(f"expected {what}, found {token.text[:20]!r}", token.at)
        return token.text

    def fail(self, message: str, at: int) -> NoReturn:
        raise DumpError(f"{self.source}: line {_line(self.text, at)}: {message}: {EXPECTED}")


def _insert(reader: _Reader, wanted: set[str]) -> Insert | None:
    """An INSERT into one of `wanted` (lower-case names), or None for any other table's INSERT."""
    reader.word("LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY")
    reader.word("IGNORE")
    if not reader.word("INTO"):
        reader.fail("expected INTO after INSERT", reader.next("INTO").at)
    table = reader.identifier("a table name")
    if reader.symbol("."):  # `database`.`table`
        table = reader.identifier("a table name")
    if table.lower() not in wanted:
        return None
    columns: tuple[str, ...] | None = None
    if reader.symbol("("):
        names = [reader.identifier("a column name")]
        while reader.symbol(","):
            names.append(reader.identifier("a column name"))
        reader.expect(")", "`)` after the column names")
        columns = tuple(names)
    if not reader.word("VALUES", "VALUE"):
        reader.fail(f"expected VALUES in the INSERT into `{table}`", reader.next("VALUES").at)
    rows: list[tuple[int, list[Any]]] = []
    while True:
        start = reader.next("a row `(`")
        if not (start.kind == "symbol" and start.text == "("):
            reader.fail(f"expected a row `(` in the INSERT into `{table}`, found {start.text[:20]!r}", start.at)
        values = [_value(reader, table)]
        while reader.symbol(","):
            values.append(_value(reader, table))
        reader.expect(")", f"`)` closing a row of `{table}`")
        rows.append((start.at, values))
        if not reader.symbol(","):
            break
    trailing = reader.peek()
    if trailing is not None:
        reader.fail(f"unexpected {trailing.text[:20]!r} after the rows of `{table}`", trailing.at)
    return Insert(table=table.lower(), columns=columns, rows=rows)


def _value(reader: _Reader, table: str) -> Any:
    token = reader.next("a value")
    if token.kind == "string":
        return token.text
    if token.kind == "number":
        return Number(token.text)
    if token.kind == "word" and token.text.upper() == "NULL":
        return None
    return reader.fail(f"a value of `{table}` that is not a quoted string, a number or NULL: {token.text[:20]!r}",
                       token.at)


# --- types and constraints, from the lab's DDL --------------------------------------------------------------------
ColumnType = Literal["int", "decimal", "date", "text"]
TYPE_NAMES: dict[ColumnType, str] = {"int": "a whole number", "decimal": "a decimal number",
                                     "date": "a date (YYYY-MM-DD)", "text": "text"}
_COLUMN_DDL = re.compile(r"^\s*`(\w+)` (\w+)")
_PRIMARY_KEY = re.compile(r"PRIMARY KEY \(([^)]*)\)")
_FOREIGN_KEY = re.compile(r"FOREIGN KEY \(`(\w+)`\) REFERENCES `(\w+)` \(`(\w+)`\)")


@dataclass(frozen=True)
class TableRules:
    types: dict[str, ColumnType]
    not_null: frozenset[str]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[tuple[str, TableName, str], ...]  # (column, parent table, parent column)


def _rules(table: TableName) -> TableRules:
    types: dict[str, ColumnType] = {}
    not_null: set[str] = set()
    for line in DDL[table].splitlines():
        column = _COLUMN_DDL.match(line)
        if column is None:
            continue  # CREATE TABLE, keys, constraints
        name, sql_type = column.group(1), column.group(2).lower()
        types[name] = ("int" if sql_type in ("int", "smallint", "tinyint", "bigint") else
                       "decimal" if sql_type == "decimal" else "date" if sql_type == "date" else "text")
        if " NOT NULL" in line:
            not_null.add(name)
    primary = _PRIMARY_KEY.search(DDL[table])
    assert primary is not None and set(types) == set(COLUMNS[table]), table  # the DDL is ours: a typo is a bug
    return TableRules(types=types, not_null=frozenset(not_null),
                      primary_key=tuple(c.strip(" `") for c in primary.group(1).split(",")),
                      foreign_keys=tuple((c, cast(TableName, p), pc) for c, p, pc in _FOREIGN_KEY.findall(DDL[table])))


RULES: dict[TableName, TableRules] = {table: _rules(table) for table in SAMPLE_TABLES}


def _convert(raw: Any, column_type: ColumnType) -> Any:
    """A raw dump value as the column's Python type (ValueError when it cannot be one)."""
    if raw is None:
        return None
    text = raw.text if isinstance(raw, Number) else raw
    if column_type == "int":
        return int(text)
    if column_type == "decimal":
        try:
            return Decimal(text)
        except InvalidOperation:
            raise ValueError(text) from None
    if column_type == "date":
        return date.fromisoformat(text)
    return text


# --- the dump as tables -------------------------------------------------------------------------------------------
def _decode(data: bytes | str, source: str) -> str:
    if isinstance(data, str):
        return data
    if data.startswith(b"PK\x03\x04"):
        raise DumpError(f"{source} is a zip archive: unzip it and pass the mysqlsampledatabase.sql inside")
    if data.startswith(b"\x1f\x8b"):
        raise DumpError(f"{source} is gzip-compressed: gunzip it and pass the .sql file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DumpError(f"{source} is not UTF-8 text (byte {err.start}): {EXPECTED}") from None


def check_size(size: int, source: str) -> None:
    """Refuse a file far bigger than the dump before reading it (it would be another file, and fill the memory)."""
    if size > MAX_DUMP_BYTES:
        raise DumpError(f"{source} is {size:,} bytes, far more than the classicmodels dump (about 200 KB): {EXPECTED}")


def parse_dump(data: bytes | str, *, source: str = "the dump") -> dict[TableName, list[Row]]:
    """The eight sample tables' rows from the dump, each row in `COLUMNS` order with the DDL's types.

    `source` names the file in error messages (a path, `s3://bucket/key`)."""
    check_size(len(data), source)
    text = _decode(data, source)
    wanted: set[str] = set(SAMPLE_TABLES)
    tables: dict[TableName, list[Row]] = {}
    offsets: dict[TableName, list[int]] = {}  # where each row starts, for errors (lines are counted only then)
    for statement in _statements(_tokens(text, source)):
        reader = _Reader(statement, text, source)
        if not reader.word("INSERT"):
            continue
        insert = _insert(reader, wanted)
        if insert is None:
            continue
        table = cast(TableName, insert.table)
        order = _column_order(insert, table, reader)
        rules = RULES[table]
        for at, values in insert.rows:
            if len(values) != len(order):
                reader.fail(f"a row of `{table}` has {len(values)} values for {len(order)} columns", at)
            row: list[Any] = [None] * len(order)
            for column, raw in zip(order, values, strict=True):
                try:
                    value = _convert(raw, rules.types[column])
                except ValueError:
                    reader.fail(f"`{table}`.{column} holds {str(getattr(raw, 'text', raw))[:30]!r}, not "
                                f"{TYPE_NAMES[rules.types[column]]}", at)
                if value is None and column in rules.not_null:
                    reader.fail(f"`{table}`.{column} is NULL, but the column is NOT NULL", at)
                row[COLUMNS[table].index(column)] = value
            tables.setdefault(table, []).append(tuple(row))
            offsets.setdefault(table, []).append(at)
    missing = [t for t in SAMPLE_TABLES if t not in tables]
    if len(missing) == len(SAMPLE_TABLES):
        raise DumpError(f"{source} holds no INSERT into any classicmodels table: {EXPECTED}")
    if missing:
        raise DumpError(f"{source} has no rows for {', '.join(f'`{t}`' for t in missing)}: expected the whole "
                        "mysqlsampledatabase.sql from mysqltutorial.org (all eight classicmodels tables)")
    _check_keys(tables, offsets, text, source)
    return {table: tables[table] for table in SAMPLE_TABLES}


def _column_order(insert: Insert, table: TableName, reader: _Reader) -> tuple[str, ...]:
    if insert.columns is None:
        return COLUMNS[table]
    by_lower = {c.lower(): c for c in COLUMNS[table]}
    order = tuple(by_lower.get(c.lower(), c) for c in insert.columns)
    unknown = [c for c in order if c not in by_lower.values()]
    absent = [c for c in COLUMNS[table] if c not in order]
    if unknown or absent or len(set(order)) != len(order):
        detail = "; ".join(part for part in (
            f"unknown {', '.join(unknown)}" if unknown else "", f"missing {', '.join(absent)}" if absent else "",
            "a column named twice" if len(set(order)) != len(order) else "") if part)
        reader.fail(f"the INSERT into `{table}` names other columns than the sample's ({detail})", insert.rows[0][0])
    return order


def _check_keys(tables: dict[TableName, list[Row]], offsets: dict[TableName, list[int]], text: str, source: str
                ) -> None:
    """Primary keys unique, foreign keys resolved: what loading the rows into the lab's schema requires."""
    keys: dict[tuple[TableName, str], set[Any]] = {}
    for table, rules in RULES.items():
        index = [COLUMNS[table].index(c) for c in rules.primary_key]
        seen: set[tuple[Any, ...]] = set()
        for row, at in zip(tables[table], offsets[table], strict=True):
            key = tuple(row[i] for i in index)
            if key in seen:
                raise DumpError(f"{source}: line {_line(text, at)}: `{table}` holds {', '.join(map(str, key))} twice "
                                f"(primary key {', '.join(rules.primary_key)}): {EXPECTED}")
            seen.add(key)
        for column in COLUMNS[table]:
            keys[(table, column)] = {row[COLUMNS[table].index(column)] for row in tables[table]}
    for table, rules in RULES.items():
        for column, parent, parent_column in rules.foreign_keys:
            i = COLUMNS[table].index(column)
            known = keys[(parent, parent_column)]
            for row, at in zip(tables[table], offsets[table], strict=True):
                if row[i] is not None and row[i] not in known:
                    raise DumpError(f"{source}: line {_line(text, at)}: `{table}`.{column} {row[i]!r} names no row of "
                                    f"`{parent}` ({parent_column}): {EXPECTED}")


# --- ratings over the real orders ---------------------------------------------------------------------------------
def dump_ratings(tables: dict[TableName, list[Row]], seed: int = DEFAULT_SEED) -> list[Row]:
    """One 1-5 rating per distinct (customer, product) the dump's orders hold, sorted, deterministic for `seed`."""
    customers = {row[0]: row for row in tables["customers"]}
    products = {row[0]: row for row in tables["products"]}
    pairs = ordered_pairs(tables["orders"], tables["orderdetails"])
    ordering = sorted({customer for customer, _ in pairs})
    column = COLUMNS["customers"].index
    credit = {n: None if customers[n][column("creditLimit")] is None else float(customers[n][column("creditLimit")])
              for n in ordering}
    product = COLUMNS["products"].index
    msrp = {code: float(row[product("MSRP")]) for code, row in products.items()}
    credits = [c for c in credit.values() if c is not None]
    credit_mean, credit_sd = mean_sd(credits) if credits else (0.0, 1.0)
    msrp_mean, msrp_sd = mean_sd(list(msrp.values()))
    rng = random.Random(seed)
    taste = draw_tastes(rng, ordering, [row[0] for row in tables["productlines"]])
    preferences = Preferences(
        # 'Norway  ' (sic) in the sample: the country is matched without its padding, the row keeps it.
        region={n: COUNTRY_REGION.get(str(customers[n][column("country")]).strip()) for n in ordering},
        credit=credit, taste=taste,
        line={code: row[product("productLine")] for code, row in products.items()},
        scale={code: row[product("productScale")] for code, row in products.items()},
        msrp=msrp, credit_mean=credit_mean, credit_sd=credit_sd, msrp_mean=msrp_mean, msrp_sd=msrp_sd)
    return rate(rng, preferences, pairs)


def dataset_from_dump(data: bytes | str, seed: int = DEFAULT_SEED, *, source: str = "the dump") -> Dataset:
    """The dump's eight tables as they are, plus generated `ratings` (scale 1: the dump is the sample itself)."""
    tables = parse_dump(data, source=source)
    all_tables: dict[TableName, list[Row]] = {**tables, "ratings": dump_ratings(tables, seed)}
    return Dataset(scale=1, seed=seed, tables=all_tables)

