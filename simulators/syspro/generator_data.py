"""Word lists and code tables the customer generator draws from (a US-based outdoor-goods distributor
with customers in five countries)."""

# ruff: noqa: RUF001  (Windows-1252 punctuation in literals is deliberate data)

from __future__ import annotations

FIRST_NAMES = (
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Susan",
    "Thabo",
    "Naledi",
    "Sipho",
    "Lerato",
    "Pieter",
    "Annelie",
    "Oliver",
    "Amelia",
    "Jack",
    "Isla",
    "Liam",
    "Chloé",
    "José",
    "María",
    "Zoë",
    "Søren",
    "Björn",
    "François",
    "Renée",
    "Siobhán",
    "Jürgen",
    "Léa",
    "Ñuño",
    "Noël",
    "Aoife",
    "Mateo",
    "Priya",
    "Wei",
    "Ahmed",
    "Fatima",
)
SURNAMES = (
    "Johnson",
    "Smith",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Wilson",
    "Taylor",
    "Anderson",
    "O'Brien",
    "O’Connor",
    "MacDonald",
    "van der Merwe",
    "Botha",
    "Naidoo",
    "Nkosi",
    "Dlamini",
    "Müller",
    "Schröder",
    "Sørensen",
    "Ørsted",
    "Núñez",
    "García",
    "Peña",
    "Dubois",
    "Lefèvre",
    "Kowalski",
    "Nguyen",
    "Öztürk",
    "Brontë",
    "Fischer",
    "Rossi",
    "Kim",
    "Patel",
    "Singh",
    "Murphy",
    "Walsh",
    "Kelly",
    "Evans",
)
TRADES = (
    "Bicycles",
    "Cycles",
    "Outdoor Supplies",
    "Camping",
    "Sports",
    "Hardware",
    "Marine",
    "Adventure Gear",
    "Outfitters",
    "Trading",
    "Distributors",
    "Hiking Co",
    "Climbing",
    "Surf Shop",
    "Angling",
    "Tackle",
    "Ski & Snow",
    "Trail Runners",
    "Garden & Outdoor",
    "Leisure",
)
ADJECTIVES = ("Summit", "Peak", "Blue Ridge", "Coastal", "Northern", "Wild", "Golden", "Evergreen", "Alpine")
NOUNS = ("Trails", "Horizons", "Rivers", "Outdoors", "Pathways", "Basecamp")
SUFFIXES = ("", "", "", "Inc", "LLC", "Ltd", "(Pty) Ltd", "Co.", "Corp", "& Sons")
DIRECTIONS = ("North", "South", "East", "West", "Central", "Downtown", "Mall")
STREETS = (
    "Main",
    "Oak",
    "Church",
    "Market",
    "High",
    "Station",
    "Park",
    "Victoria",
    "Long",
    "Jan Smuts",
    "Bay",
    "King",
    "Queen",
    "Mill",
    "River",
    "Lakeview",
    "Commissioner",
    "Rue de la Gare",
    "Königsallee",
)
STREET_TYPES = ("Street", "Road", "Avenue", "Drive", "Lane", "Blvd", "St", "Rd", "Ave")
UNITS = ("Suite 100", "Unit 4", "Floor 2", "Building B", "Shop 12", "Industrial Park", "Business Centre")

# country code, currency char(3), phone format, postal format, [(city, state/province, us-state-code)]
COUNTRIES: tuple[tuple[str, str, str, str, str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "USA",
        "$  ",
        "United States",
        "(###) 555-####",
        "#####",
        (
            ("Denver", "Colorado", "CO"),
            ("Seattle", "Washington", "WA"),
            ("Austin", "Texas", "TX"),
            ("Portland", "Oregon", "OR"),
            ("Boise", "Idaho", "ID"),
            ("Burlington", "Vermont", "VT"),
            ("Asheville", "North Carolina", "NC"),
            ("Santa Fe", "New Mexico", "NM"),
            ("Bend", "Oregon", "OR"),
            ("Salt Lake City", "Utah", "UT"),
            ("Anchorage", "Alaska", "AK"),
            ("Duluth", "Minnesota", "MN"),
        ),
    ),
    (
        "CAN",
        "CAD",
        "Canada",
        "###-555-####",
        "A#A #A#",
        (
            ("Toronto", "Ontario", ""),
            ("Montréal", "Québec", ""),
            ("Vancouver", "British Columbia", ""),
            ("Calgary", "Alberta", ""),
        ),
    ),
    (
        "GBR",
        "GBP",
        "United Kingdom",
        "0## #### ####",
        "AA# #AA",
        (
            ("London", "Greater London", ""),
            ("Manchester", "", ""),
            ("Keswick", "Cumbria", ""),
            ("Edinburgh", "", ""),
        ),
    ),
    (
        "ZAF",
        "ZAR",
        "South Africa",
        "0## 555 ####",
        "####",
        (
            ("Johannesburg", "Gauteng", ""),
            ("Cape Town", "Western Cape", ""),
            ("Durban", "KwaZulu-Natal", ""),
            ("Stellenbosch", "Western Cape", ""),
        ),
    ),
    (
        "AUS",
        "AUD",
        "Australia",
        "(0#) 5550 ####",
        "####",
        (
            ("Sydney", "NSW", ""),
            ("Melbourne", "VIC", ""),
            ("Hobart", "TAS", ""),
            ("Cairns", "QLD", ""),
        ),
    ),
)
COUNTRY_WEIGHTS = (0.62, 0.10, 0.10, 0.10, 0.08)

BRANCHES = tuple(str(b) for b in range(10, 25))
AREAS = ("N", "S", "E", "W", "C", "NE", "NW", "SE", "SW", "INT", "EXP")
SALESPEOPLE = tuple(str(s) for s in range(100, 140))
CUSTOMER_CLASSES = ("", "", "RT", "RT", "WS", "DL", "KA", "GV", "ED", "OE")
PRICE_CODES = ("", "A", "B", "C", "WS", "RT")
TERMS_CODES = ("30", "30", "60", "CO", "EM", "  ")
CREDIT_LIMITS = (0, 1000, 5000, 10000, 25000, 50000, 99999, 250000, 1000000)
# CreditStatus spread over current, 30..180 days, manual hold 9 and blank.
CREDIT_STATUSES = (
    ("0",) * 55
    + ("1",) * 12
    + ("2",) * 7
    + ("3",) * 5
    + ("4",) * 3
    + ("5",) * 2
    + ("6",) * 3
    + ("9",) * 3
    + (" ",) * 10
)
USER_FIELD1 = ("",) * 85 + ("INACTIVE",) * 4 + ("WEB",) * 5 + ("VIP",) * 3 + ("DNM",) * 3
LANGUAGE_CODES = ("  ",) * 8 + ("EN", "FR")
INVALID_EMAILS = ("john@", "n/a", "N/A", "none", "-", "accounts at {d}", "{l}@{s}", "{l}@@{d}", "{l} @{d}")
EMAIL_LOCALS = ("accounts", "info", "sales", "orders", "purchasing", "admin", "office")
TLDS = ("example.com", "example.net", "example.org", "example")
