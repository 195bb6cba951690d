"""The world the generated data is drawn from: the sample's product lines and scales, the places customers live in
(each in a sales territory and a taste region), and the names, streets and dates rows are made of."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

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

# Each country's taste region (`recsys.classicmodels.ratings`), for customers of a real dump: every country of the
# public sample is here.
COUNTRY_REGION: dict[str, Region] = {place.country: place.region for place in PLACES}


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
