"""Generating the classicmodels-shaped database for a (scale, seed): the sample's sizes times the scale, the same rows
for the same arguments, and ratings drawn around the hidden preferences (`recsys.classicmodels.ratings`)."""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

from recsys.classicmodels.ratings import (
    LIKING_TO_BUYING,
    REGION_LINE_AFFINITY,
    Preferences,
    draw_tastes,
    mean_sd,
    ordered_pairs,
    rate,
)
from recsys.classicmodels.schema import Dataset, Row
from recsys.classicmodels.world import (
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
    Territory,
)

MAX_SCALE = 1000
DEFAULT_SEED = 42


def validate(scale: int, seed: int) -> None:
    """Raise ValueError naming the bad argument and what is allowed (before anything is generated or written)."""
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= MAX_SCALE:
        raise ValueError(f"scale must be a whole number from 1 to {MAX_SCALE} (got {scale!r}); "
                         "1 is the size of the classicmodels sample, N multiplies customers, products and orders")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0 (got {seed!r})")


def _money(value: float) -> Decimal:
    return Decimal(round(value * 100)).scaleb(-2)


def _postal(rng: random.Random, pattern: str | None) -> str | None:
    if pattern is None:
        return None
    return "".join(str(rng.randrange(10)) if ch == "9" else rng.choice("ABCDEFGHJKLMNPRSTVWXY") if ch == "A" else ch
                   for ch in pattern)


def _phone(rng: random.Random) -> str:
    return f"+{rng.randint(1, 99)} {rng.randint(10, 999)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"


def _spread(rng: random.Random, total: int, weights: Sequence[float], minimum: int, maximum: int) -> list[int]:
    """Split `total` into len(weights) whole parts, each in [minimum, maximum], roughly proportional to weights."""
    n = len(weights)
    if n == 0:
        return []
    total = max(min(total, n * maximum), n * minimum)
    parts = [minimum] * n
    left = total - n * minimum
    cumulative: list[float] = []
    running = 0.0
    for w in weights:
        running += w
        cumulative.append(running)
    total_weight = cumulative[-1]
    draw = rng.random
    while left > 0:
        i = min(bisect.bisect(cumulative, draw() * total_weight), n - 1)
        if parts[i] >= maximum:
            # total <= n * maximum, so while something is left some part still has room
            i = rng.choice([j for j in range(n) if parts[j] < maximum])
        parts[i] += 1
        left -= 1
    return parts


def generate(scale: int = 1, seed: int = DEFAULT_SEED) -> Dataset:
    """The whole database for (scale, seed): the same arguments always give the same rows."""
    validate(scale, seed)
    rng = random.Random(seed * 1_000_003 + scale)

    productlines: list[Row] = [(line, LINE_DESCRIPTIONS[line], None, None) for line in PRODUCT_LINES]

    # products
    products: list[Row] = []
    product_line: dict[str, ProductLine] = {}
    product_scale: dict[str, str] = {}
    product_msrp: dict[str, float] = {}
    used_numbers: dict[str, int] = {}
    for line in PRODUCT_LINES:
        makes, models = LINE_NAME_PARTS[line]
        for _ in range(PRODUCTS_PER_LINE[line] * scale):
            model_scale = rng.choice(LINE_SCALES[line])
            prefix = model_scale.split(":")[1]
            number = used_numbers.get(prefix, 1000 + rng.randrange(0, 100)) + rng.randint(1, 37)
            used_numbers[prefix] = number
            code = f"S{prefix}_{number:04d}"
            year = rng.randint(1900, 1940) if line == "Vintage Cars" else rng.randint(1936, 2004)
            name = f"{year} {rng.choice(makes)} {rng.choice(models)}"[:70]
            buy = LINE_BASE_PRICE[line] * SCALE_PRICE_FACTOR[model_scale] * rng.uniform(0.55, 1.45)
            msrp = buy * rng.uniform(1.45, 2.2)
            products.append((code, name, line, model_scale, rng.choice(VENDORS),
                             f"This replica of the {name} in {model_scale} scale features detailed, working parts.",
                             rng.randint(15, 9997), _money(buy), _money(msrp)))
            product_line[code] = line
            product_scale[code] = model_scale
            product_msrp[code] = float(_money(msrp))
    codes_by_line: dict[ProductLine, list[str]] = {line: [] for line in PRODUCT_LINES}
    for code, line in product_line.items():
        codes_by_line[line].append(code)
    msrp_mean, msrp_sd = mean_sd(list(product_msrp.values()))

    # offices: the sample's seven, at every scale
    offices: list[Row] = [
        ("1", "San Francisco", "+1 650 219 4782", "100 Market Street", "Suite 300", "CA", "USA", "94080", "NA"),
        ("2", "Boston", "+1 215 837 0825", "1550 Court Place", "Suite 102", "MA", "USA", "02107", "NA"),
        ("3", "NYC", "+1 212 555 3000", "523 East 53rd Street", "apt. 5A", "NY", "USA", "10022", "NA"),
        ("4", "Paris", "+33 14 723 4404", "43 Rue Jouffroy D'abbans", None, None, "France", "75017", "EMEA"),
        ("5", "Tokyo", "+81 33 224 5000", "4-1 Kioicho", None, "Chiyoda-Ku", "Japan", "102-8578", "Japan"),
        ("6", "Sydney", "+61 2 9264 2451", "5-11 Wentworth Avenue", "Floor #2", None, "Australia", "NSW 2010", "APAC"),
        ("7", "London", "+44 20 7877 2041", "25 Old Broad Street", "Level 7", None, "UK", "EC2N 1HN", "EMEA"),
    ]
    office_territory: dict[str, Territory] = {row[0]: row[8] for row in offices}

    # employees: six managers, then 17 sales reps per scale unit
    def employee(number: int, office: str, reports_to: int | None, title: str) -> Row:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first[0].lower()}{last.lower().replace(' ', '')}@classicmodelcars.com"
        return (number, last, first, f"x{rng.randint(100, 9999)}", email, office, reports_to, title)

    employees: list[Row] = [
        employee(1002, "1", None, "President"),
        employee(1056, "1", 1002, "VP Sales"),
        employee(1076, "1", 1002, "VP Marketing"),
        employee(1088, "6", 1056, "Sales Manager (APAC)"),
        employee(1102, "4", 1056, "Sale Manager (EMEA)"),
        employee(1143, "1", 1056, "Sales Manager (NA)"),
    ]
    manager_for: dict[Territory, int] = {"APAC": 1088, "EMEA": 1102, "NA": 1143, "Japan": 1056}
    reps_by_territory: dict[Territory, list[int]] = {"NA": [], "EMEA": [], "APAC": [], "Japan": []}
    rep_offices = ("1", "1", "2", "2", "3", "3", "4", "4", "4", "4", "4", "5", "5", "6", "6", "6", "7")
    for i in range(17 * scale):
        office = rep_offices[i % len(rep_offices)] if i < len(rep_offices) else rng.choice(rep_offices)
        number = 1165 + i * 3
        territory = office_territory[office]
        employees.append(employee(number, office, manager_for[territory], "Sales Rep"))
        reps_by_territory[territory].append(number)

    # customers: a fifth never ordered (prospects: most have no sales rep, credit limit 0 or unknown)
    n_customers = 122 * scale
    n_ordering = 98 * scale
    place_weights = [p.weight for p in PLACES]
    customers: list[Row] = []
    customer_place: dict[int, Place] = {}
    customer_credit: dict[int, float | None] = {}
    ordering: list[int] = []
    prospect_slots = set(rng.sample(range(n_customers), n_customers - n_ordering))
    for i in range(n_customers):
        number = 103 + i * 3 + rng.randrange(3)
        place = rng.choices(PLACES, weights=place_weights)[0]
        prospect = i in prospect_slots
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        name = f"{rng.choice(NAME_WORDS)} {rng.choice(NAME_SUFFIXES)}"
        if prospect:
            rep = None if rng.random() < 0.9 else rng.choice(reps_by_territory[place.territory] or [1143])
            credit: float | None = None if rng.random() < 0.25 else 0.0
        else:
            rep = rng.choice(reps_by_territory[place.territory] or reps_by_territory["EMEA"])
            credit = round(rng.triangular(20_000, 230_000, 85_000), -2)
            ordering.append(number)
        customers.append((
            number, name[:50], last, first, _phone(rng), f"{rng.randint(1, 999)} {rng.choice(STREETS)}",
            rng.choice(("Level 3", "Suite 101", "Floor No. 4", "2nd Floor")) if rng.random() < 0.1 else None,
            place.city, place.state, _postal(rng, place.postal_pattern), place.country, rep,
            None if credit is None else _money(credit),
        ))
        customer_place[number] = place
        customer_credit[number] = credit

    credits = [c for n in ordering if (c := customer_credit[n]) is not None]
    credit_mean, credit_sd = mean_sd(credits)

    # each ordering customer's own taste per line (what the rating is drawn around, with the region and credit x price)
    taste = draw_tastes(rng, ordering, PRODUCT_LINES)

    # orders: 326 per scale unit; a few big customers order much more often (as in the sample)
    order_weights = [rng.paretovariate(2.5) for _ in ordering]
    orders_per_customer = _spread(rng, 326 * scale, order_weights, 1, 10_000)
    span = (LAST_ORDER_DATE - FIRST_ORDER_DATE).days
    orders: list[Row] = []
    order_customer: list[int] = []
    order_dates: list[date] = []
    for customer, count in zip(ordering, orders_per_customer, strict=True):
        for _ in range(count):
            order_customer.append(customer)
            order_dates.append(FIRST_ORDER_DATE + timedelta(days=rng.randrange(span + 1)))
    # order numbers follow order dates, as in the sample
    chronological = sorted(range(len(order_customer)), key=lambda i: (order_dates[i], order_customer[i]))
    for seq, i in enumerate(chronological):
        ordered_on = order_dates[i]
        status = rng.choice(ORDER_STATUSES)
        shipped = None if status in ("In Process", "On Hold") or (status == "Cancelled" and rng.random() < 0.5) \
            else ordered_on + timedelta(days=rng.randint(1, 6))
        comments = rng.choice(ORDER_COMMENTS) if status != "Shipped" or rng.random() < 0.1 else None
        orders.append((10100 + seq, ordered_on, ordered_on + timedelta(days=rng.randint(7, 10)), shipped, status,
                       comments, order_customer[i]))

    # order lines: 2,996 per scale unit; customers mostly buy from the lines they like
    line_sizes = _spread(rng, 2996 * scale, [1.0] * len(orders), 1, min(18, len(products)))
    orderdetails: list[Row] = []
    draw = rng.random
    line_weight_cache: dict[int, list[float]] = {}
    for order, size in zip(orders, line_sizes, strict=True):
        customer = order[6]
        weights = line_weight_cache.get(customer)
        if weights is None:
            affinity = REGION_LINE_AFFINITY[customer_place[customer].region]
            running, weights = 0.0, []
            for line in PRODUCT_LINES:
                liking = affinity[line] + taste[customer][line]
                running += len(codes_by_line[line]) * math.exp(LIKING_TO_BUYING * liking)
                weights.append(running)
            line_weight_cache[customer] = weights
        chosen: list[str] = []
        seen: set[str] = set()
        total_weight = weights[-1]
        while len(chosen) < size:
            line = PRODUCT_LINES[min(bisect.bisect(weights, draw() * total_weight), len(PRODUCT_LINES) - 1)]
            candidates = codes_by_line[line]
            code = candidates[int(draw() * len(candidates))]
            if code not in seen:
                seen.add(code)
                chosen.append(code)
        for line_number, code in enumerate(chosen, start=1):
            price = product_msrp[code] * (0.8 + 0.2 * draw())
            orderdetails.append((order[0], code, 20 + int(draw() * 31), _money(price), line_number))

    # payments: 273 per scale unit, at least one per ordering customer while there are enough
    payments_per_customer = _spread(rng, 273 * scale, orders_per_customer, 1, 10_000)
    payments: list[Row] = []
    for customer, count in zip(ordering, payments_per_customer, strict=True):
        checks: set[str] = set()
        while len(checks) < count:
            checks.add(f"{rng.choice('ABCDEFGHIJKLMNOPQRSTUVWXYZ')}{rng.choice('ABCDEFGHIJKLMNOPQRSTUVWXYZ')}"
                       f"{rng.randint(100000, 999999)}")
        for check in sorted(checks):
            paid_on = FIRST_ORDER_DATE + timedelta(days=rng.randrange(span + 1))
            payments.append((customer, check, paid_on, _money(rng.uniform(1_000, 120_000))))

    # ratings: one per distinct (customer, product) ordered
    pairs = ordered_pairs(orders, orderdetails)
    preferences = Preferences(
        region={n: customer_place[n].region for n in ordering}, credit=customer_credit, taste=taste,
        line=product_line, scale=product_scale, msrp=product_msrp, credit_mean=credit_mean, credit_sd=credit_sd,
        msrp_mean=msrp_mean, msrp_sd=msrp_sd)
    ratings = rate(rng, preferences, pairs)

    return Dataset(scale=scale, seed=seed, tables={
        "productlines": productlines, "products": products, "offices": offices, "employees": employees,
        "customers": customers, "payments": payments, "orders": orders, "orderdetails": orderdetails,
        "ratings": ratings,
    })
