"""A deterministic, classicmodels-shaped source database: the eight tables of the public MySQL sample plus `ratings`.

Pure Python, standard library only: the same code runs in `harness seed`'s workflow and in the `source-seeder` Lambda.

Scale 1 has the sample's sizes (122 customers, 110 products in 7 product lines, 326 orders, 2,996 order lines,
23 employees, 7 offices, 273 payments); scale N multiplies customers, products, orders, order lines, payments and sales
reps. `ratings` holds one 1-5 rating for every distinct product a customer ordered.

Ratings are not random: they follow hidden preferences a model can learn from the features the platform trains on
(customer country, creditLimit; product line, scale, price), plus a little per-customer taste and noise:
- each region likes some product lines and dislikes others (`REGION_LINE_AFFINITY`);
- customers with a high credit limit like expensive models, those with a low one like cheap models;
- large scales (1:10, 1:12) are liked a little more by everyone.
Customers also order more of what they like, as real customers do, so ratings lean positive.

`load(conn, database, dataset)` writes a dataset through any DB-API connection with the `format` paramstyle (pymysql):
into a staging database first, then all tables swapped in with one `RENAME TABLE`, so readers never see a half-loaded
table and a failed load leaves the previous data in place.

`dataset_from_dump(data, seed)` reads the public sample's own dump instead (`mysqlsampledatabase.sql`, the file lab
users have): its real rows, plus ratings drawn around the same hidden preferences over the (customer, product) pairs its
orders hold, so recommendations name the lab's products.

Modules: `schema` (tables, columns, DDL, `Dataset`), `world` (what generated rows are drawn from), `ratings` (the hidden
preferences), `generator` (`validate`, `generate`), `dump` (reading the sample's dump), `writer` (`load`). This package
re-exports their public names.
"""

from __future__ import annotations

from recsys.classicmodels.dump import MAX_DUMP_BYTES, DumpError, dataset_from_dump, dump_ratings, parse_dump
from recsys.classicmodels.generator import DEFAULT_SEED, MAX_SCALE, generate, validate
from recsys.classicmodels.ratings import (
    LARGE_SCALE_BONUS,
    LIKING_TO_BUYING,
    NOISE_SD,
    PRICE_AFFINITY,
    REGION_LINE_AFFINITY,
    TASTE_SD,
)
from recsys.classicmodels.schema import COLUMNS, DDL, SAMPLE_TABLES, TABLES, Dataset, Row, TableName
from recsys.classicmodels.world import (
    COUNTRY_REGION,
    FIRST_NAMES,
    FIRST_ORDER_DATE,
    LAST_NAMES,
    LAST_ORDER_DATE,
    LINE_BASE_PRICE,
    LINE_DESCRIPTIONS,
    LINE_NAME_PARTS,
    LINE_SCALES,
    NAME_SUFFIXES,
    NAME_WORDS,
    ORDER_COMMENTS,
    ORDER_STATUSES,
    PLACES,
    PRODUCT_LINES,
    PRODUCTS_PER_LINE,
    SCALE_PRICE_FACTOR,
    STREETS,
    VENDORS,
    Place,
    ProductLine,
    Region,
    Territory,
)
from recsys.classicmodels.writer import RETIRED_SUFFIX, STAGING_SUFFIX, Progress, insert_statement, load

__all__ = [
    "COLUMNS", "COUNTRY_REGION", "DDL", "DEFAULT_SEED", "Dataset", "DumpError", "FIRST_NAMES", "FIRST_ORDER_DATE",
    "LARGE_SCALE_BONUS", "LAST_NAMES", "LAST_ORDER_DATE", "LIKING_TO_BUYING", "LINE_BASE_PRICE",
    "LINE_DESCRIPTIONS", "LINE_NAME_PARTS", "LINE_SCALES", "MAX_DUMP_BYTES", "MAX_SCALE", "NAME_SUFFIXES",
    "NAME_WORDS", "NOISE_SD", "ORDER_COMMENTS", "ORDER_STATUSES", "PLACES", "PRICE_AFFINITY", "PRODUCTS_PER_LINE",
    "PRODUCT_LINES", "Place", "ProductLine", "Progress", "REGION_LINE_AFFINITY", "RETIRED_SUFFIX", "Region", "Row",
    "SAMPLE_TABLES", "SCALE_PRICE_FACTOR", "STAGING_SUFFIX", "STREETS", "TABLES", "TASTE_SD", "TableName",
    "Territory", "VENDORS", "dataset_from_dump", "dump_ratings", "generate", "insert_statement", "load",
    "parse_dump", "validate",
]
