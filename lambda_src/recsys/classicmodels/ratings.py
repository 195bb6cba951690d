"""The hidden preferences ratings are drawn around, shared by the generated catalogue and the sample's real one.

A customer's rating of a product is 3 stars plus:
- how much the customer's region likes the product's line (`REGION_LINE_AFFINITY`; 0 for a region or line not listed);
- the customer's own taste for that line (drawn once per customer and line, `TASTE_SD`);
- credit x price: customers with a high credit limit like expensive models, those with a low one cheap models
  (`PRICE_AFFINITY` per product of the two z-scores);
- a bonus for large scales (`LARGE_SCALE_BONUS`);
plus noise (`NOISE_SD`), rounded and clamped to 1-5. The platform trains on exactly these features (customer country
and creditLimit; product line, scale and price), so a model can learn most of it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from recsys.classicmodels.schema import Row
from recsys.classicmodels.world import ProductLine, Region

# The hidden preferences: how much each region likes each product line (added to a 3-star baseline).
REGION_LINE_AFFINITY: dict[Region, dict[ProductLine, float]] = {
    "north_america": {"Classic Cars": 1.0, "Motorcycles": 0.6, "Trucks and Buses": 0.5, "Vintage Cars": 0.0,
                      "Planes": -0.4, "Ships": -0.8, "Trains": -0.6},
    "western_europe": {"Vintage Cars": 1.0, "Trains": 0.8, "Classic Cars": 0.2, "Ships": 0.0, "Planes": -0.2,
                       "Motorcycles": -0.5, "Trucks and Buses": -0.8},
    "nordics": {"Ships": 1.1, "Planes": 0.6, "Trains": 0.3, "Vintage Cars": 0.0, "Classic Cars": -0.5,
                "Motorcycles": -0.4, "Trucks and Buses": 0.2},
    "asia_pacific": {"Motorcycles": 1.1, "Planes": 0.7, "Classic Cars": 0.3, "Ships": 0.2, "Vintage Cars": -0.7,
                     "Trains": -0.4, "Trucks and Buses": -0.5},
}
LARGE_SCALE_BONUS: dict[str, float] = {"1:10": 0.3, "1:12": 0.2}
PRICE_AFFINITY = 0.6  # rating points per (credit z-score x price z-score)
TASTE_SD = 0.25  # per-customer, per-line taste the features cannot explain
NOISE_SD = 0.45
# How strongly liking a product line turns into buying from it (0: customers buy lines at random).
LIKING_TO_BUYING = 0.8

def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation (1.0 when every value is the same, so z-scores stay finite)."""
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) or 1.0


def draw_tastes(rng: random.Random, customers: Iterable[int], lines: Sequence[str]) -> dict[int, dict[str, float]]:
    """Each customer's taste for each line, drawn in the given orders (the draws are part of a seed's data)."""
    return {n: {line: rng.gauss(0.0, TASTE_SD) for line in lines} for n in customers}


@dataclass(frozen=True)
class Preferences:
    """Everything a rating depends on: per customer region, credit limit and taste; per product line, scale and MSRP;
    and the means and deviations the z-scores use."""

    region: Mapping[int, Region | None]
    credit: Mapping[int, float | None]
    taste: Mapping[int, Mapping[str, float]]
    line: Mapping[str, str]
    scale: Mapping[str, str]
    msrp: Mapping[str, float]
    credit_mean: float
    credit_sd: float
    msrp_mean: float
    msrp_sd: float

    def affinity(self, customer: int, line: str) -> float:
        region = self.region[customer]
        if region is None:
            return 0.0
        # A dump's product lines are whatever strings it holds: a line the table does not name is liked neutrally.
        return cast("Mapping[str, float]", REGION_LINE_AFFINITY[region]).get(line, 0.0)

    def preference(self, customer: int, code: str) -> float:
        line = self.line[code]
        credit = self.credit[customer]
        credit_z = 0.0 if credit is None else (credit - self.credit_mean) / self.credit_sd
        price_z = (self.msrp[code] - self.msrp_mean) / self.msrp_sd
        return (self.affinity(customer, line) + self.taste[customer][line]
                + PRICE_AFFINITY * credit_z * price_z + LARGE_SCALE_BONUS.get(self.scale[code], 0.0))


def ordered_pairs(orders: Sequence[Row], orderdetails: Sequence[Row]) -> list[tuple[int, str]]:
    """The distinct (customerNumber, productCode) pairs the order lines record, sorted: what `ratings` rates."""
    customer_of = {order[0]: order[6] for order in orders}
    return sorted({(customer_of[line[0]], line[1]) for line in orderdetails})


def clamp_rating(score: float) -> int:
    return max(1, min(5, int(math.floor(score + 0.5))))


def rate(rng: random.Random, preferences: Preferences, pairs: Iterable[tuple[int, str]]) -> list[Row]:
    """One `ratings` row per (customer, productCode) pair, in the pairs' order."""
    return [(customer, code, clamp_rating(3.0 + preferences.preference(customer, code) + rng.gauss(0.0, NOISE_SD)))
            for customer, code in pairs]
