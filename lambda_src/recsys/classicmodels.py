"""A deterministic, classicmodels-shaped source database: the eight tables of the public MySQL sample plus `ratings`.

Pure Python, standard library only: the same code runs in `python -m harness seed` and in the `source-seeder` Lambda.

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
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

TableName = Literal[
    "productlines", "products", "offices", "employees", "customers", "payments", "orders", "orderdetails", "ratings"
]
# Parents before children: the order tables are created and filled in.
TABLES: tuple[TableName, ...] = (
    "productlines", "products", "offices", "employees", "customers", "payments", "orders", "orderdetails", "ratings"
)
SAMPLE_TABLES: tuple[TableName, ...] = TABLES[:-1]

MAX_SCALE = 1000
DEFAULT_SEED = 42

COLUMNS: dict[TableName, tuple[str, ...]] = {
    "productlines": ("productLine", "textDescription", "htmlDescription", "image"),
    "products": ("productCode", "productName", "productLine", "productScale", "productVendor", "productDescription",
                 "quantityInStock", "buyPrice", "MSRP"),
    "offices": ("officeCode", "city", "phone", "addressLine1", "addressLine2", "state", "country", "postalCode",
                "territory"),
    "employees": ("employeeNumber", "lastName", "firstName", "extension", "email", "officeCode", "reportsTo",
                  "jobTitle"),
    "customers": ("customerNumber", "customerName", "contactLastName", "contactFirstName", "phone", "addressLine1",
                  "addressLine2", "city", "state", "postalCode", "country", "salesRepEmployeeNumber", "creditLimit"),
    "payments": ("customerNumber", "checkNumber", "paymentDate", "amount"),
    "orders": ("orderNumber", "orderDate", "requiredDate", "shippedDate", "status", "comments", "customerNumber"),
    "orderdetails": ("orderNumber", "productCode", "quantityOrdered", "priceEach", "orderLineNumber"),
    "ratings": ("customerNumber", "productCode", "productRating"),
}

# The public sample's DDL (mysqltutorial.org), column for column; `ratings` is the course lab's addition.
DDL: dict[TableName, str] = {
    "productlines": """CREATE TABLE `productlines` (
  `productLine` varchar(50) NOT NULL,
  `textDescription` varchar(4000) DEFAULT NULL,
  `htmlDescription` mediumtext,
  `image` mediumblob,
  PRIMARY KEY (`productLine`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    "products": """CREATE TABLE `products` (
  `productCode` varchar(15) NOT NULL,
  `productName` varchar(70) NOT NULL,
  `productLine` varchar(50) NOT NULL,
  `productScale` varchar(10) NOT NULL,
  `productVendor` varchar(50) NOT NULL,
  `productDescription` text NOT NULL,
  `quantityInStock` smallint(6) NOT NULL,
  `buyPrice` decimal(10,2) NOT NULL,
  `MSRP` decimal(10,2) NOT NULL,
  PRIMARY KEY (`productCode`),
  KEY `productLine` (`productLine`),
  CONSTRAINT `products_ibfk_1` FOREIGN KEY (`productLine`) REFERENCES `productlines` (`productLine`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    "offices": """CREATE TABLE `offices` (
  `officeCode` varchar(10) NOT NULL,
  `city` varchar(50) NOT NULL,
  `phone` varchar(50) NOT NULL,
  `addressLine1` varchar(50) NOT NULL,
  `addressLine2` varchar(50) DEFAULT NULL,
  `state` varchar(50) DEFAULT NULL,
  `country` varchar(50) NOT NULL,
  `postalCode` varchar(15) NOT NULL,
  `territory` varchar(10) NOT NULL,
  PRIMARY KEY (`officeCode`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    "employees": """CREATE TABLE `employees` (
  `employeeNumber` int(11) NOT NULL,
  `lastName` varchar(50) NOT NULL,
  `firstName` varchar(50) NOT NULL,
  `extension` varchar(10) NOT NULL,
  `email` varchar(100) NOT NULL,
  `officeCode` varchar(10) NOT NULL,
  `reportsTo` int(11) DEFAULT NULL,
  `jobTitle` varchar(50) NOT NULL,
  PRIMARY KEY (`employeeNumber`),
  KEY `reportsTo` (`reportsTo`),
  KEY `officeCode` (`officeCode`),
  CONSTRAINT `employees_ibfk_1` FOREIGN KEY (`reportsTo`) REFERENCES `employees` (`employeeNumber`),
  CONSTRAINT `employees_ibfk_2` FOREIGN KEY (`officeCode`) REFERENCES `offices` (`officeCode`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    "customers": """CREATE TABLE `customers` (
  `customerNumber` int(11) NOT NULL,
  `customerName` varchar(50) NOT NULL,
  `contactLastName` varchar(50) NOT NULL,
  `contactFirstName` varchar(50) NOT NULL,
  `phone` varchar(50) NOT NULL,
  `addressLine1` varchar(50) NOT NULL,
  `addressLine2` varchar(50) DEFAULT NULL,
  `city` varchar(50) NOT NULL,
  `state` varchar(50) DEFAULT NULL,
  `postalCode` varchar(15) DEFAULT NULL,
  `country` varchar(50) NOT NULL,
  `salesRepEmployeeNumber` int(11) DEFAULT NULL,
  `creditLimit` decimal(10,2) DEFAULT NULL,
  PRIMARY KEY (`customerNumber`),
  KEY `salesRepEmployeeNumber` (`salesRepEmployeeNumber`),
  CONSTRAINT `customers_ibfk_1` FOREIGN KEY (`salesRepEmployeeNumber`) REFERENCES `employees` (`employeeNumber`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    "payments": """CREATE TABLE `payments` (
  `customerNumber` int(11) NOT NULL,
  `checkNumber` varchar(50) NOT NULL,
  `paymentDate` date NOT NULL,
  `amount` decimal(10,2) NOT NULL,
  PRIMARY KEY (`customerNumber`,`checkNumber`),
  CONSTRAINT `payments_ibfk_1` FOREIGN KEY (`customerNumber`) REFERENCES `customers` (`customerNumber`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    "orders": """CREATE TABLE `orders` (
  `orderNumber` int(11) NOT NULL,
  `orderDate` date NOT NULL,
  `requiredDate` date NOT NULL,
  `shippedDate` date DEFAULT NULL,
  `status` varchar(15) NOT NULL,
  `comments` text,
  `customerNumber` int(11) NOT NULL,
  PRIMARY KEY (`orderNumber`),
  KEY `customerNumber` (`customerNumber`),
  CONSTRAINT `orders_ibfk_1` FOREIGN KEY (`customerNumber`) REFERENCES `customers` (`customerNumber`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    "orderdetails": """CREATE TABLE `orderdetails` (
  `orderNumber` int(11) NOT NULL,
  `productCode` varchar(15) NOT NULL,
  `quantityOrdered` int(11) NOT NULL,
  `priceEach` decimal(10,2) NOT NULL,
  `orderLineNumber` smallint(6) NOT NULL,
  PRIMARY KEY (`orderNumber`,`productCode`),
  KEY `productCode` (`productCode`),
  CONSTRAINT `orderdetails_ibfk_1` FOREIGN KEY (`orderNumber`) REFERENCES `orders` (`orderNumber`),
  CONSTRAINT `orderdetails_ibfk_2` FOREIGN KEY (`productCode`) REFERENCES `products` (`productCode`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    "ratings": """CREATE TABLE `ratings` (
  `customerNumber` int(11) NOT NULL,
  `productCode` varchar(15) NOT NULL,
  `productRating` int(11) NOT NULL,
  PRIMARY KEY (`customerNumber`,`productCode`),
  KEY `productCode` (`productCode`),
  CONSTRAINT `ratings_ibfk_1` FOREIGN KEY (`customerNumber`) REFERENCES `customers` (`customerNumber`),
  CONSTRAINT `ratings_ibfk_2` FOREIGN KEY (`productCode`) REFERENCES `products` (`productCode`),
  CONSTRAINT `ratings_range` CHECK (`productRating` BETWEEN 1 AND 5)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
}

# ---------------------------------------------------------------------------------------------------------------------
# the world the data is drawn from

ProductLine = Literal["Classic Cars", "Motorcycles", "Planes", "Ships", "Trains", "Trucks and Buses", "Vintage Cars"]
PRODUCT_LINES: tuple[ProductLine, ...] = (
    "Classic Cars", "Motorcycles", "Planes", "Ships", "Trains", "Trucks and Buses", "Vintage Cars"
)
# Products per line at scale 1, as in the sample (110 in all).
PRODUCTS_PER_LINE: dict[ProductLine, int] = {
    "Classic Cars": 38, "Vintage Cars": 24, "Motorcycles": 13, "Planes": 12, "Trucks and Buses": 11, "Ships": 9,
    "Trains": 3,
}
LINE_DESCRIPTIONS: dict[ProductLine, str] = {
    "Classic Cars": "Attention car enthusiasts: make your wildest car ownership dreams come true with die-cast "
                    "replicas of the classics, detailed down to the dashboard.",
    "Motorcycles": "Our motorcycles are state of the art replicas of classic as well as contemporary motorcycle "
                   "legends.",
    "Planes": "Unique, diecast airplane and helicopter replicas suitable for collections, as well as home, office or "
              "classroom decorations.",
    "Ships": "The perfect holiday or anniversary gift for executives, clients, friends, and family: handcrafted ships.",
    "Trains": "Model trains are a rewarding hobby for enthusiasts of all ages, from starter sets to collector pieces.",
    "Trucks and Buses": "The Truck and Bus models are realistic replicas of buses and specialized trucks produced from "
                        "the early 1920s to present.",
    "Vintage Cars": "Our Vintage Car models realistically portray automobiles produced from the early 1900s through "
                    "the 1940s.",
}
# Which scales each line is made in (the product code's prefix comes from the scale: 1:18 -> S18_...).
LINE_SCALES: dict[ProductLine, tuple[str, ...]] = {
    "Classic Cars": ("1:18", "1:18", "1:24", "1:12", "1:10"),
    "Vintage Cars": ("1:18", "1:24", "1:24", "1:32"),
    "Motorcycles": ("1:10", "1:12", "1:18", "1:24", "1:32", "1:50"),
    "Planes": ("1:72", "1:72", "1:24", "1:700", "1:18"),
    "Ships": ("1:700", "1:700", "1:72", "1:24"),
    "Trains": ("1:32", "1:50", "1:18"),
    "Trucks and Buses": ("1:12", "1:18", "1:24", "1:32", "1:50"),
}
# Bigger models cost more.
SCALE_PRICE_FACTOR: dict[str, float] = {
    "1:10": 1.6, "1:12": 1.45, "1:18": 1.2, "1:24": 0.95, "1:32": 0.8, "1:50": 0.7, "1:72": 0.75, "1:700": 0.8,
}
LINE_BASE_PRICE: dict[ProductLine, float] = {
    "Classic Cars": 58.0, "Vintage Cars": 44.0, "Motorcycles": 48.0, "Planes": 50.0, "Ships": 46.0, "Trains": 40.0,
    "Trucks and Buses": 52.0,
}
LINE_NAME_PARTS: dict[ProductLine, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Classic Cars": (("Ferrari", "Chevrolet", "Ford", "Porsche", "Mercedes-Benz", "Jaguar", "Alpine", "Dodge",
                      "Plymouth", "Lamborghini", "Aston Martin", "BMW", "Pontiac", "Toyota"),
                     ("Coupe", "Convertible", "Roadster", "Spider", "GT", "Hardtop", "Fastback", "Berlinetta")),
    "Vintage Cars": (("Ford Model T", "Bugatti", "Packard", "Duesenberg", "Rolls-Royce", "Chrysler", "Cadillac",
                      "Hispano-Suiza", "Delahaye", "Mercedes"),
                     ("Tourer", "Phaeton", "Landau", "Town Car", "Speedster", "Limousine", "Roadster")),
    "Motorcycles": (("Harley Davidson", "Ducati", "Honda", "BMW", "Triumph", "Indian", "Suzuki", "Yamaha"),
                    ("Ultimate Chopper", "Sport", "Touring", "Racer", "Scrambler", "Classic")),
    "Planes": (("Boeing", "Spitfire", "P-51 Mustang", "Corsair", "Douglas", "Lockheed", "Junkers", "Fokker"),
               ("Airliner", "Fighter", "Seaplane", "Trainer", "Bomber", "Biplane")),
    "Ships": (("HMS Bounty", "Mayflower", "Titanic", "Queen Mary", "USS Constitution", "Pirate Ship", "Cutty Sark"),
              ("Replica", "Deluxe", "Museum Edition", "Ltd", "Model")),
    "Trains": (("Collectable Wooden", "Steam Locomotive", "Diesel", "Orient Express", "Union Pacific"),
               ("Train", "Engine", "Set", "Express")),
    "Trucks and Buses": (("Ford", "Mack", "Volvo", "Peterbilt", "Dodge", "Greyhound", "VW", "Scania"),
                         ("Pickup", "Dump Truck", "Tanker", "School Bus", "Tow Truck", "Delivery Van", "Coach")),
}
VENDORS = (
    "Min Lin Diecast", "Classic Metal Creations", "Highway 66 Mini Classics", "Red Start Diecast",
    "Motor City Art Classics", "Second Gear Diecast", "Autoart Studio Design", "Welly Diecast Productions",
    "Unimax Art Galleries", "Studio M Art Models", "Exoto Designs", "Gearbox Collectibles", "Carousel DieCast Legends",
)

Region = Literal["north_america", "western_europe", "nordics", "asia_pacific"]
Territory = Literal["NA", "EMEA", "APAC", "Japan"]


@dataclass(frozen=True)
class Place:
    country: str
    city: str
    state: str | None
    postal_pattern: str | None  # '9' = digit, 'A' = letter; None: the country has no postal code here
    region: Region
    territory: Territory
    weight: float


PLACES: tuple[Place, ...] = (
    Place("USA", "San Francisco", "CA", "99999", "north_america", "NA", 3),
    Place("USA", "NYC", "NY", "99999", "north_america", "NA", 4),
    Place("USA", "Boston", "MA", "99999", "north_america", "NA", 2),
    Place("USA", "Pasadena", "CA", "99999", "north_america", "NA", 2),
    Place("USA", "Los Angeles", "CA", "99999", "north_america", "NA", 2),
    Place("USA", "Las Vegas", "NV", "99999", "north_america", "NA", 2),
    Place("USA", "Philadelphia", "PA", "99999", "north_america", "NA", 2),
    Place("USA", "New Haven", "CT", "99999", "north_america", "NA", 2),
    Place("USA", "Cambridge", "MA", "99999", "north_america", "NA", 2),
    Place("USA", "Glendale", "CA", "99999", "north_america", "NA", 1),
    Place("USA", "San Jose", "CA", "99999", "north_america", "NA", 2),
    Place("USA", "Allentown", "PA", "99999", "north_america", "NA", 1),
    Place("USA", "Nashua", "NH", "99999", "north_america", "NA", 1),
    Place("USA", "White Plains", "NY", "99999", "north_america", "NA", 1),
    Place("USA", "Burbank", "CA", "99999", "north_america", "NA", 1),
    Place("Canada", "Vancouver", "BC", "A9A 9A9", "north_america", "NA", 1),
    Place("Canada", "Montréal", "Québec", "A9A 9A9", "north_america", "NA", 1),
    Place("Canada", "Tsawassen", "BC", "A9A 9A9", "north_america", "NA", 1),
    Place("France", "Paris", None, "99999", "western_europe", "EMEA", 3),
    Place("France", "Nantes", None, "99999", "western_europe", "EMEA", 2),
    Place("France", "Marseille", None, "99999", "western_europe", "EMEA", 2),
    Place("France", "Lyon", None, "99999", "western_europe", "EMEA", 2),
    Place("France", "Lille", None, "99999", "western_europe", "EMEA", 1),
    Place("France", "Strasbourg", None, "99999", "western_europe", "EMEA", 1),
    Place("Germany", "Frankfurt", None, "99999", "western_europe", "EMEA", 3),
    Place("Germany", "Berlin", None, "99999", "western_europe", "EMEA", 3),
    Place("Germany", "München", None, "99999", "western_europe", "EMEA", 2),
    Place("Germany", "Köln", None, "99999", "western_europe", "EMEA", 2),
    Place("Germany", "Stuttgart", None, "99999", "western_europe", "EMEA", 2),
    Place("Germany", "Leipzig", None, "99999", "western_europe", "EMEA", 1),
    Place("Spain", "Madrid", None, "99999", "western_europe", "EMEA", 4),
    Place("Spain", "Barcelona", None, "99999", "western_europe", "EMEA", 2),
    Place("Spain", "Sevilla", None, "99999", "western_europe", "EMEA", 1),
    Place("Italy", "Torino", None, "99999", "western_europe", "EMEA", 1),
    Place("Italy", "Milan", None, "99999", "western_europe", "EMEA", 2),
    Place("Italy", "Bergamo", None, "99999", "western_europe", "EMEA", 1),
    Place("UK", "London", None, "AA9 9AA", "western_europe", "EMEA", 2),
    Place("UK", "Manchester", None, "A9 9AA", "western_europe", "EMEA", 2),
    Place("UK", "Liverpool", None, "A9 9AA", "western_europe", "EMEA", 1),
    Place("Ireland", "Dublin", None, None, "western_europe", "EMEA", 2),
    Place("Belgium", "Bruxelles", None, "9999", "western_europe", "EMEA", 1),
    Place("Belgium", "Charleroi", None, "9999", "western_europe", "EMEA", 1),
    Place("Switzerland", "Genève", None, "9999", "western_europe", "EMEA", 2),
    Place("Switzerland", "Bern", None, "9999", "western_europe", "EMEA", 1),
    Place("Austria", "Graz", None, "9999", "western_europe", "EMEA", 1),
    Place("Austria", "Salzburg", None, "9999", "western_europe", "EMEA", 1),
    Place("Netherlands", "Amsterdam", None, "9999 AA", "western_europe", "EMEA", 1),
    Place("Portugal", "Lisboa", None, "9999-999", "western_europe", "EMEA", 1),
    Place("Poland", "Warszawa", None, "99-999", "western_europe", "EMEA", 1),
    Place("Russia", "Saint Petersburg", None, "999999", "western_europe", "EMEA", 1),
    Place("Israel", "Herzlia", None, "99999", "western_europe", "EMEA", 1),
    Place("South Africa", "Johannesburg", None, None, "western_europe", "EMEA", 1),
    Place("Norway", "Oslo", None, "9999", "nordics", "EMEA", 2),
    Place("Norway", "Bergen", None, "9999", "nordics", "EMEA", 1),
    Place("Norway", "Stavern", None, "9999", "nordics", "EMEA", 1),
    Place("Sweden", "Luleå", None, "A-999 99", "nordics", "EMEA", 1),
    Place("Sweden", "Bräcke", None, "A-999 99", "nordics", "EMEA", 1),
    Place("Denmark", "København", None, "9999", "nordics", "EMEA", 2),
    Place("Denmark", "Århus", None, "9999", "nordics", "EMEA", 1),
    Place("Finland", "Helsinki", None, "99999", "nordics", "EMEA", 2),
    Place("Finland", "Espoo", None, "99999", "nordics", "EMEA", 1),
    Place("Finland", "Oulu", None, "99999", "nordics", "EMEA", 1),
    Place("Australia", "Melbourne", "Victoria", "9999", "asia_pacific", "APAC", 2),
    Place("Australia", "Glen Waverly", "Victoria", "9999", "asia_pacific", "APAC", 1),
    Place("Australia", "Chatswood", "NSW", "9999", "asia_pacific", "APAC", 1),
    Place("Australia", "North Sydney", "NSW", "9999", "asia_pacific", "APAC", 1),
    Place("Australia", "South Brisbane", "Queensland", "9999", "asia_pacific", "APAC", 1),
    Place("New Zealand", "Auckland", None, "9999", "asia_pacific", "APAC", 2),
    Place("New Zealand", "Wellington", None, "9999", "asia_pacific", "APAC", 2),
    Place("Singapore", "Singapore", None, "999999", "asia_pacific", "APAC", 3),
    Place("Hong Kong", "Central Hong Kong", None, None, "asia_pacific", "APAC", 1),
    Place("Philippines", "Makati City", None, "9999", "asia_pacific", "APAC", 1),
    Place("Japan", "Tokyo", "Tokyo", "999-9999", "asia_pacific", "Japan", 1),
    Place("Japan", "Osaka", "Osaka", "999-9999", "asia_pacific", "Japan", 1),
)

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

FIRST_NAMES = ("Carine", "Jean", "Peter", "Janine", "Jonas", "Susan", "Roland", "Julie", "Kwai", "Diego", "Christina",
               "Valarie", "Mary", "Eric", "Jeff", "Kelvin", "Juri", "Wendy", "Veysel", "Keith", "Isabel", "Martine",
               "Marie", "Jerry", "Michael", "Leslie", "Steve", "Yoshi", "Pascale", "Sue", "Georg", "Paolo", "Anna",
               "Rosa", "Dorothy", "Allen", "Violeta", "Elizabeth", "Daniel", "Wing", "Maria", "Sven", "Mats")
LAST_NAMES = ("Schmitt", "King", "Ferguson", "Labrune", "Bergulfsen", "Nelson", "Piestrzeniewicz", "Murphy", "Lee",
              "Freyre", "Berglund", "Petersen", "Saveley", "Natividad", "Young", "Leong", "Hashimoto", "Victorino",
              "Oeztan", "Franco", "de Castro", "Rancé", "Bertrand", "Tseng", "Donnermeyer", "Roulet", "Hernandez",
              "Citeaux", "Moroni", "Frick", "Kuo", "Lincoln", "Benitez", "Devon", "Tonini", "Pfalzheim", "Larsson")
NAME_WORDS = ("Atelier", "Signal", "Australian", "La Rochelle", "Baane", "Mini", "Land of Toys", "Euro+", "Volvo",
              "Danish", "Saveley", "Dragon", "Muscle Machine", "Diecast", "Technics", "Handji", "Herkku", "Royal",
              "Corporate", "Auto", "Vitachrome", "Toys4GrownUps", "Alpha", "Collectables", "Scandinavian", "Classic")
NAME_SUFFIXES = ("Gifts", "Collectors, Co.", "Souveniers", "Mall", "Imports", "Shopping Channel", "Models & Co.",
                 "Replicas, Ltd.", "Store", "Gift Stores", "Inc.", "Co.", "Distributors", "Traders", "Ltd.")
STREETS = ("rue Royale", "Hauptstr.", "Strawberry Ln", "Lyonerstr.", "Grenzacherweg", "Fauntleroy Circle",
           "Kirchgasse", "Dunitz St.", "Berliner Platz", "Garden House", "Moralzarzal", "Torikatu", "Drammensveien",
           "Hansastr.", "Avenue of the Americas", "Pretoria Avenue", "Smith St.", "Geislweg", "Via Monte Bianco",
           "Bank of Canada", "North Pkwy", "Ring Road", "Queen Street", "Via Ludovico il Moro")
ORDER_STATUSES = ("Shipped",) * 30 + ("Cancelled", "Resolved", "On Hold", "In Process", "Disputed")
ORDER_COMMENTS = ("Check on availability.", "Customer requested that FedEx Ground is used for this shipping",
                  "Customer very concerned about the exact color of the models.",
                  "Difficult to negotiate with customer. We need more marketing materials",
                  "Customer is interested in buying more models from this line.",
                  "Can we renegotiate this one?")
FIRST_ORDER_DATE = date(2003, 1, 6)
LAST_ORDER_DATE = date(2005, 5, 31)

# ---------------------------------------------------------------------------------------------------------------------
# generation


Row = tuple[Any, ...]


@dataclass(frozen=True)
class Dataset:
    scale: int
    seed: int
    tables: dict[TableName, list[Row]] = field(repr=False)

    def counts(self) -> dict[TableName, int]:
        return {name: len(self.tables[name]) for name in TABLES}


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


def _clamp_rating(score: float) -> int:
    return max(1, min(5, int(math.floor(score + 0.5))))


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
    msrps = list(product_msrp.values())
    msrp_mean = sum(msrps) / len(msrps)
    msrp_sd = math.sqrt(sum((m - msrp_mean) ** 2 for m in msrps) / len(msrps)) or 1.0

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
    credit_mean = sum(credits) / len(credits)
    credit_sd = math.sqrt(sum((c - credit_mean) ** 2 for c in credits) / len(credits)) or 1.0

    # the hidden preference of one customer for one product (what the rating is drawn around)
    taste: dict[int, dict[ProductLine, float]] = {
        n: {line: rng.gauss(0.0, TASTE_SD) for line in PRODUCT_LINES} for n in ordering
    }

    def preference(customer: int, code: str) -> float:
        line = product_line[code]
        credit = customer_credit[customer]
        credit_z = 0.0 if credit is None else (credit - credit_mean) / credit_sd
        price_z = (product_msrp[code] - msrp_mean) / msrp_sd
        return (REGION_LINE_AFFINITY[customer_place[customer].region][line] + taste[customer][line]
                + PRICE_AFFINITY * credit_z * price_z + LARGE_SCALE_BONUS.get(product_scale[code], 0.0))

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
    pairs = sorted(_customer_products(orders, orderdetails))
    ratings: list[Row] = [
        (customer, code, _clamp_rating(3.0 + preference(customer, code) + rng.gauss(0.0, NOISE_SD)))
        for customer, code in pairs
    ]

    return Dataset(scale=scale, seed=seed, tables={
        "productlines": productlines, "products": products, "offices": offices, "employees": employees,
        "customers": customers, "payments": payments, "orders": orders, "orderdetails": orderdetails,
        "ratings": ratings,
    })


def _customer_products(orders: list[Row], orderdetails: list[Row]) -> set[tuple[int, str]]:
    customer_of = {order[0]: order[6] for order in orders}
    return {(customer_of[line[0]], line[1]) for line in orderdetails}


# ---------------------------------------------------------------------------------------------------------------------
# loading (DB-API, `format` paramstyle: pymysql)

Progress = Callable[[TableName, int, int], None]
STAGING_SUFFIX = "__seed_staging"
RETIRED_SUFFIX = "__seed_retired"


def _quote(identifier: str) -> str:
    if not identifier or "`" in identifier or len(identifier) > 64 - len(STAGING_SUFFIX):
        raise ValueError(f"invalid database name {identifier!r}: 1 to {64 - len(STAGING_SUFFIX)} characters, no "
                         "backquotes")
    return f"`{identifier}`"


def insert_statement(table: TableName, database: str) -> str:
    columns = ", ".join(f"`{c}`" for c in COLUMNS[table])
    placeholders = ", ".join(["%s"] * len(COLUMNS[table]))
    return f"INSERT INTO {_quote(database)}.`{table}` ({columns}) VALUES ({placeholders})"


def load(conn: Any, database: str, dataset: Dataset, *, batch_size: int = 5000,
         progress: Progress | None = None) -> dict[TableName, int]:
    """Replace the classicmodels tables of `database` with `dataset`, all at once; returns rows written per table.

    The rows go into `<database>__seed_staging` first; one `RENAME TABLE` statement (atomic in MySQL and MariaDB) then
    swaps every table in. If anything fails before the swap, `database` still holds exactly what it held before.
    Tables of `database` that are not classicmodels tables are left alone. The user needs CREATE, DROP, INSERT and
    ALTER on `database` and on the two helper databases (an RDS master user has them).
    """
    target = _quote(database)
    staging = _quote(database + STAGING_SUFFIX)
    retired = _quote(database + RETIRED_SUFFIX)
    written: dict[TableName, int] = {}
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {target}")
        cur.execute(f"DROP DATABASE IF EXISTS {staging}")
        cur.execute(f"CREATE DATABASE {staging}")
        try:
            cur.execute(f"USE {staging}")
            for table in TABLES:
                cur.execute(DDL[table])
            # Parents come first anyway; checks off only makes the bulk insert cheaper, the swap re-uses the rows as is.
            cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
            for table in TABLES:
                rows = dataset.tables[table]
                sql = insert_statement(table, database + STAGING_SUFFIX)
                for start in range(0, len(rows), batch_size):
                    cur.executemany(sql, rows[start:start + batch_size])
                    # Staging only: committing per batch keeps the undo log small; atomicity comes from the swap.
                    conn.commit()
                    if progress is not None:
                        progress(table, min(start + batch_size, len(rows)), len(rows))
                if not rows and progress is not None:
                    progress(table, 0, 0)
                written[table] = len(rows)
            conn.commit()
            cur.execute("SET SESSION foreign_key_checks = 1, unique_checks = 1")
            _verify_counts(cur, database + STAGING_SUFFIX, written)

            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (database,))
            existing = {row[0] for row in cur.fetchall()} & set(TABLES)
            cur.execute(f"DROP DATABASE IF EXISTS {retired}")
            cur.execute(f"CREATE DATABASE {retired}")
            renames = [f"{target}.`{t}` TO {retired}.`{t}`" for t in TABLES if t in existing]
            renames += [f"{staging}.`{t}` TO {target}.`{t}`" for t in TABLES]
            cur.execute("RENAME TABLE " + ", ".join(renames))
            cur.execute(f"USE {target}")
        finally:
            cur.execute("SET SESSION foreign_key_checks = 0")
            cur.execute(f"DROP DATABASE IF EXISTS {retired}")
            cur.execute(f"DROP DATABASE IF EXISTS {staging}")
            cur.execute("SET SESSION foreign_key_checks = 1")
    return written


def _verify_counts(cur: Any, database: str, expected: dict[TableName, int]) -> None:
    for table, count in expected.items():
        cur.execute(f"SELECT COUNT(*) FROM {_quote(database)}.`{table}`")
        (found,) = cur.fetchone()
        if int(found) != count:
            raise RuntimeError(f"staging table {table} has {found} rows, expected {count}: nothing was swapped in")
