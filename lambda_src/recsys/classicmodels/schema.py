"""The tables: the eight of the public classicmodels sample (mysqltutorial.org), column for column, plus the course
lab's `ratings`; and `Dataset`, one set of rows for all of them (generated, or read from the sample's dump)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

TableName = Literal[
    "productlines", "products", "offices", "employees", "customers", "payments", "orders", "orderdetails", "ratings"
]
# Parents before children: the order tables are created and filled in.
TABLES: tuple[TableName, ...] = (
    "productlines", "products", "offices", "employees", "customers", "payments", "orders", "orderdetails", "ratings"
)
SAMPLE_TABLES: tuple[TableName, ...] = TABLES[:-1]

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
Row = tuple[Any, ...]


@dataclass(frozen=True)
class Dataset:
    scale: int
    seed: int
    tables: dict[TableName, list[Row]] = field(repr=False)

    def counts(self) -> dict[TableName, int]:
        return {name: len(self.tables[name]) for name in TABLES}
