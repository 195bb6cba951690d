"""Shoppers' sessions as the lab's producer sends them, made from the source database's customers and products.

`{"session_id", "customer_number", "city", "country", "credit_limit", "browse_history": [{"product_code", "quantity"
(a string), "in_shopping_cart" (bool)}]}`. Used by the producer Lambda and by `python -m harness stream produce`.

Sessions are realistic rather than uniform: a shopper browses mostly within one product line, puts some of what they
browse in the cart, and some sessions come from people who are not customers yet (a customer number the database does
not know, a city and country taken from real customers), which the model must serve from their features alone.
Generation is pure and deterministic for a seed; reading the catalogue and writing to Kinesis are thin functions
around it.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

KINESIS_BATCH = 500  # PutRecords' limit per call
NEW_CUSTOMER_BASE = 900_000


class CatalogueError(RuntimeError):
    """The source database has no customers or products to make sessions from."""


@dataclass(frozen=True)
class Customer:
    number: int
    city: str
    country: str
    credit_limit: float | None


@dataclass(frozen=True)
class Product:
    code: str
    line: str


@dataclass(frozen=True)
class Catalogue:
    customers: tuple[Customer, ...]
    products: tuple[Product, ...]

    def __post_init__(self) -> None:
        if not self.customers or not self.products:
            raise CatalogueError(
                f"the source database has {len(self.customers)} customers and {len(self.products)} products; "
                "sessions need both: seed it first (`python -m harness seed`)"
            )


@dataclass(frozen=True)
class SessionMix:
    """How sessions vary. `new_customer_rate`: sessions from people not in `customers`; `empty_history_rate`: sessions
    with nothing browsed (the lab's failure case), 0 unless asked for, to show that one bad record fails alone."""

    new_customer_rate: float = 0.05
    empty_history_rate: float = 0.0
    max_history: int = 8
    cart_rate: float = 0.3
    same_line_rate: float = 0.8

    def __post_init__(self) -> None:
        for name in ("new_customer_rate", "empty_history_rate", "cart_rate", "same_line_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.max_history < 1:
            raise ValueError(f"max_history must be at least 1, got {self.max_history}")


def load_catalogue(conn: Any) -> Catalogue:
    """Customers and products from a classicmodels-shaped database (a DB-API connection, pymysql in practice)."""
    with conn.cursor() as cur:
        cur.execute("SELECT customerNumber, city, country, creditLimit FROM customers ORDER BY customerNumber")
        customers = tuple(
            Customer(int(n), str(city), str(country), None if limit is None else float(limit))
            for n, city, country, limit in cur.fetchall()
        )
        cur.execute("SELECT productCode, productLine FROM products ORDER BY productCode")
        products = tuple(Product(str(code), str(line)) for code, line in cur.fetchall())
    return Catalogue(customers, products)


def _history(rng: random.Random, catalogue: Catalogue, by_line: dict[str, list[Product]], mix: SessionMix,
             lines: Sequence[str]) -> list[dict[str, Any]]:
    favourite = by_line[rng.choice(lines)]
    length = rng.randint(1, mix.max_history)
    seen: set[str] = set()
    history = []
    for _ in range(length):
        pool = favourite if rng.random() < mix.same_line_rate else catalogue.products
        product = rng.choice(pool)
        if product.code in seen:
            continue
        seen.add(product.code)
        history.append({
            "product_code": product.code,
            "quantity": str(rng.randint(1, 10)),
            "in_shopping_cart": rng.random() < mix.cart_rate,
        })
    return history


def generate_sessions(catalogue: Catalogue, count: int, *, seed: int, mix: SessionMix | None = None
                      ) -> Iterator[dict[str, Any]]:
    """`count` sessions, the same ones for the same seed and catalogue."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    mix = mix or SessionMix()
    rng = random.Random(seed)
    by_line: dict[str, list[Product]] = {}
    for product in catalogue.products:
        by_line.setdefault(product.line, []).append(product)
    lines = sorted(by_line)
    for _ in range(count):
        customer = rng.choice(catalogue.customers)
        number = customer.number
        if rng.random() < mix.new_customer_rate:
            # Someone new: a customer number nobody has, living where some customer lives.
            number = NEW_CUSTOMER_BASE + rng.randrange(100_000)
        credit = customer.credit_limit if customer.credit_limit is not None else 0.0
        history = [] if rng.random() < mix.empty_history_rate else _history(rng, catalogue, by_line, mix, lines)
        yield {
            "session_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "customer_number": number,
            "city": customer.city,
            "country": customer.country,
            # Whole units, as the lab's events carry them (59811, not 59811.00).
            "credit_limit": int(round(credit)),
            "browse_history": history,
        }


def kinesis_entries(sessions: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for session in sessions:
        data = json.dumps(session, separators=(",", ":")).encode("utf-8")
        yield {"Data": data, "PartitionKey": session["session_id"]}


class PutRecordsError(RuntimeError):
    """Kinesis kept refusing some records (throttling) after every retry."""


def put_all(kinesis: Any, stream_name: str, entries: Sequence[dict[str, Any]], *, attempts: int = 5,
            sleep: Callable[[float], None] = time.sleep) -> int:
    """PutRecords in batches of 500, re-sending only the entries Kinesis refused (it answers per record), with backoff.
    Returns how many were written; raises `PutRecordsError` rather than silently dropping a refused record."""
    written = 0
    for start in range(0, len(entries), KINESIS_BATCH):
        pending = list(entries[start : start + KINESIS_BATCH])
        for attempt in range(attempts):
            response = kinesis.put_records(StreamName=stream_name, Records=pending)
            results = response.get("Records", [])
            refused = [entry for entry, result in zip(pending, results, strict=True) if result.get("ErrorCode")]
            codes = {str(result["ErrorCode"]) for result in results if result.get("ErrorCode")}
            written += len(pending) - len(refused)
            if not refused:
                break
            pending = refused
            if attempt + 1 < attempts:
                sleep(min(0.1 * 2**attempt, 2.0))
        else:
            raise PutRecordsError(
                f"Kinesis refused {len(pending)} record(s) of stream {stream_name} after {attempts} attempts "
                f"(last errors: {', '.join(sorted(codes))}); {written} were written"
            )
    return written
