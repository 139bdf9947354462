"""An original template grammar of everyday English sentences for speech synthesis.

Templates name slots in braces; a slot is filled from a word list or by a small function (numbers,
times, prices), and a slot's value may itself contain slots. Numbers are always spelled out in
words, so every sentence reads the same to a TTS engine and to a plain text normaliser.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_IRREGULAR_ORDINALS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth",
    "eight": "eighth", "nine": "ninth", "twelve": "twelfth",
}


def number_words(n: int) -> str:
    """0 <= n < 1,000,000 in English words, British style: 342 -> 'three hundred and forty-two'."""
    if not 0 <= n < 1_000_000:
        raise ValueError(f"number_words covers 0..999999, got {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" and {number_words(rest)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    joiner = " and " if 0 < rest < 100 else " "
    return f"{number_words(thousands)} thousand" + (joiner + number_words(rest) if rest else "")


def ordinal_words(n: int) -> str:
    """1 -> 'first', 22 -> 'twenty-second', 40 -> 'fortieth'."""
    words = number_words(n)
    head, sep, last = words.rpartition("-") if "-" in words else words.rpartition(" ")
    if last in _IRREGULAR_ORDINALS:
        last = _IRREGULAR_ORDINALS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{number_words(n)} {singular if n == 1 else plural or singular + 's'}"


def _article(phrase: str) -> str:
    # "one" is spoken with a leading w sound, so it takes "a" despite the vowel letter.
    vowel = phrase[0] in "aeiou" and not phrase.startswith("one")
    return f"{'an' if vowel else 'a'} {phrase}"


def _clock_time(rng: random.Random) -> str:
    hour = rng.randint(1, 12)
    minute = rng.randrange(0, 60, 5)
    next_hour = number_words(hour % 12 + 1)
    if minute == 0:
        return f"{number_words(hour)} o'clock"
    if minute == 15:
        return f"a quarter past {number_words(hour)}"
    if minute == 30:
        return f"half past {number_words(hour)}"
    if minute == 45:
        return f"a quarter to {next_hour}"
    if rng.random() < 0.5:  # digital-clock reading, "seven oh five", "ten forty"
        return f"{number_words(hour)} {'oh five' if minute == 5 else number_words(minute)}"
    if minute < 30:
        return f"{number_words(minute)} past {number_words(hour)}"
    return f"{number_words(60 - minute)} to {next_hour}"


def _temperature(rng: random.Random) -> str:
    degrees = rng.randint(-12, 38)
    spoken = _count(abs(degrees), "degree")
    return f"minus {spoken}" if degrees < 0 else spoken


def _price(rng: random.Random) -> str:
    dollars = _count(rng.randint(1, 99), "dollar")
    cents = rng.randrange(0, 100, 5)
    return f"{dollars} and {_count(cents, 'cent')}" if cents else dollars


def _distance(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return _article(f"{number_words(rng.randint(2, 30))}-minute walk")
    return _count(rng.randint(1, 20), "kilometer")


def _room_on_floor(rng: random.Random) -> str:
    floor = rng.randint(1, 9)
    return f"{number_words(floor * 100 + rng.randint(1, 40))} is on the {ordinal_words(floor)} floor"


def _choice(options: tuple[str, ...]) -> Callable[[random.Random], str]:
    return lambda rng: rng.choice(options)


NAMES = (
    "Alice", "Benjamin", "Chloe", "Daniel", "Emma", "Farid", "Grace", "Hannah", "Isaac", "Julia",
    "Kenji", "Laura", "Mateo", "Nadia", "Oliver", "Priya", "Quentin", "Rosa", "Samuel", "Tara",
    "Umar", "Valerie", "William", "Yusuf", "Zoe", "Aisha", "Bruno", "Carmen", "Dmitri", "Elena",
    "Felix", "Greta", "Hugo", "Ingrid", "Jonas", "Kofi", "Leila", "Marcus", "Nora", "Oscar",
    "Paula", "Rahul", "Sofia", "Thomas", "Ursula", "Victor", "Wendy", "Yara", "Zachary", "Martha",
)
CITIES = (
    "Lisbon", "Madrid", "Paris", "Berlin", "Vienna", "Prague", "Warsaw", "Dublin", "Edinburgh",
    "Cardiff", "Manchester", "Bristol", "Oslo", "Stockholm", "Helsinki", "Copenhagen", "Amsterdam",
    "Brussels", "Zurich", "Geneva", "Milan", "Rome", "Naples", "Athens", "Istanbul", "Cairo",
    "Nairobi", "Lagos", "Accra", "Cape Town", "Mumbai", "Delhi", "Bangkok", "Singapore", "Tokyo",
    "Osaka", "Seoul", "Sydney", "Melbourne", "Auckland", "Toronto", "Montreal", "Vancouver",
    "Chicago", "Boston", "Denver", "Seattle", "Mexico City", "Lima", "Santiago", "Buenos Aires",
    "Havana", "Reykjavik", "Glasgow",
)

# Slot name -> how to fill it. Values may contain further {slots}.
_SLOTS: dict[str, Callable[[random.Random], str]] = {
    "name": _choice(NAMES),
    "city": _choice(CITIES),
    "weekday": _choice(("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")),
    "month": _choice(("January", "February", "March", "April", "May", "June", "July", "August",
                      "September", "October", "November", "December")),
    "season": _choice(("spring", "summer", "autumn", "winter")),
    "place": _choice((
        "the library", "the bakery", "the train station", "the post office", "the market",
        "the museum", "the pharmacy", "the harbor", "the town hall", "the swimming pool", "the park",
        "the bus stop", "the hospital", "the bank", "the cinema", "the school", "the gym",
        "the bookshop", "the airport", "the supermarket", "the hardware store", "the office",
    )),
    "landmark": _choice((
        "the old cathedral", "the central station", "the river", "the main square", "the beach",
        "the castle", "the botanical garden", "the football stadium", "the city walls", "the old bridge",
    )),
    "shop": _choice((
        "a pharmacy", "a bakery", "a hardware store", "an ice cream shop", "a post office",
        "a laundromat", "a bicycle shop", "a flower shop", "a grocery store", "a cash machine",
    )),
    "clock_time": _clock_time,
    "opening_hour": lambda rng: f"{number_words(rng.randint(7, 11))} in the morning",
    "closing_hour": lambda rng: f"{number_words(rng.randint(5, 10))} in the evening",
    "day_ordinal": lambda rng: ordinal_words(rng.randint(1, 31)),
    "temperature": _temperature,
    "price": _price,
    "distance": _distance,
    "room_on_floor": _room_on_floor,
    "small_number": lambda rng: number_words(rng.randint(2, 12)),
    "platform": lambda rng: number_words(rng.randint(1, 16)),
    "population": lambda rng: number_words(rng.randint(12, 9999) * 100),
    "extension": lambda rng: " ".join(number_words(rng.randint(0, 9)) for _ in range(4)),
    "count_minutes": lambda rng: _count(rng.randint(2, 59), "minute"),
    "count_days": lambda rng: _count(rng.randint(1, 14), "day"),
    "count_years": lambda rng: _count(rng.randint(2, 40), "year"),
    "count_blocks": lambda rng: _count(rng.randint(1, 6), "block"),
    "count_kilometers": lambda rng: _count(rng.randint(2, 42), "kilometer"),
    "count_guests": lambda rng: f"{number_words(rng.randint(2, 12))} "
                                + rng.choice(("guests", "friends", "colleagues", "neighbors", "cousins")),
    "count_fruit": lambda rng: f"{number_words(rng.randint(2, 12))} " + rng.choice((
        "apples", "oranges", "lemons", "pears", "peaches", "bananas", "mangoes", "plums",
        "avocados", "tomatoes", "potatoes", "cucumbers", "onions", "limes")),
    "party_supplies": lambda rng: f"{number_words(rng.randint(2, 30))} " + rng.choice((
        "more chairs", "extra plates", "bottles of lemonade", "paper cups", "candles", "balloons")),
    "weather": _choice((
        "light rain in the morning", "heavy snow after dark", "clear skies all day",
        "strong winds from the north", "thick fog near the coast", "scattered showers in the afternoon",
        "a thunderstorm late in the evening", "sunshine with a few clouds", "a high of {temperature}",
        "frost overnight and a bright morning", "drizzle until lunchtime",
    )),
    "weather_adj": _choice(("warm", "humid", "dry", "mild", "windy", "sunny", "cool", "rainy", "grey", "calm")),
    "weather_adj_bad": _choice(("cold", "wet", "windy", "icy", "hot", "foggy", "stormy")),
    "weather_verb": _choice(("rain", "snow", "clear up", "get colder", "warm up", "stay dry", "turn windy")),
    "when": _choice(("tomorrow", "this weekend", "on {weekday}", "later tonight", "next week",
                     "before {clock_time}", "in the afternoon")),
    "garment": _choice(("a warm coat", "a light jacket", "a woolen hat", "a raincoat", "a thick scarf",
                        "two sweaters", "new boots", "woolen gloves", "a sun hat")),
    "train_kind": _choice(("first", "next", "last", "early", "late", "express", "slow", "overnight")),
    "traffic_reason": _choice(("heavy traffic", "roadworks", "snow on the road", "a parade",
                               "an accident on the bridge", "a broken signal", "a flooded tunnel")),
    "delay_reason": _choice(("a signal failure", "bad weather", "a broken down train ahead",
                             "engineering works", "a fallen tree on the line", "a staff shortage")),
    "team": _choice(("marketing", "design", "sales", "finance", "support", "legal", "research",
                     "logistics", "planning", "recruitment")),
    "document": _choice(("the quarterly report", "the meeting notes", "the new budget",
                         "the signed contract", "the draft proposal", "the updated schedule",
                         "the invoice", "the travel plan", "the slides for the workshop")),
    "deadline": _choice(("the end of the day", "noon tomorrow", "{weekday} morning",
                         "the end of {month}", "lunch", "the next meeting")),
    "project": _choice(("the website redesign", "the budget review", "the new training course",
                        "the office move", "the customer survey", "the spring catalog",
                        "the warehouse audit")),
    "workplace": _choice(("home", "the office in {city}", "the library", "a cafe near the station",
                          "the new office downtown")),
    "company": _choice(("a small bakery", "an engineering firm", "a shipping company",
                        "a public library", "a children's hospital", "a software company",
                        "a family hotel", "a music school", "a local newspaper")),
    "oven_degrees": lambda rng: number_words(rng.randrange(300, 476, 25)),
    "baked_dish": _choice(("bread", "apple pie", "chicken", "vegetables", "cookies", "lasagna",
                           "fish", "banana cake", "potatoes", "muffins")),
    "amount": _choice(("a pinch", "a spoonful", "two spoonfuls", "half a cup", "a cup", "a handful",
                       "a splash", "a generous knob")),
    "ingredient": _choice(("flour", "sugar", "rice", "salt", "honey", "olive oil", "butter", "milk",
                           "cream", "grated cheese", "yogurt", "oats", "vinegar", "cinnamon",
                           "black pepper", "chocolate", "lentils", "chopped nuts")),
    "pot_dish": _choice(("soup", "sauce", "stew", "risotto", "porridge", "curry", "chili")),
    "dish": _choice(("a vegetable curry", "roast chicken", "mushroom risotto", "fish tacos",
                     "lentil soup", "a big salad", "homemade pizza", "spaghetti with tomato sauce",
                     "pancakes", "a bean stew")),
    "vegetable": _choice(("onion", "garlic", "carrot", "pepper", "celery", "ginger", "leek",
                          "zucchini", "cabbage", "parsley", "fennel")),
    "room_feature": _choice(("elevators", "stairs", "vending machine", "fire exit",
                             "laundry room", "meeting rooms")),
}

TEMPLATES = (
    # weather
    "The forecast for {city} promises {weather} on {weekday}.",
    "It was {temperature} in {city} this morning, so {name} wore {garment}.",
    "Do you think it will {weather_verb} in {city} {when}?",
    "Summers in {city} are usually {weather_adj} and {weather_adj}.",
    "If the weather stays {weather_adj}, we could have a picnic in the park on {weekday}.",
    "{name} usually cycles to {place}, but today it was too {weather_adj_bad} to ride.",
    "What a {weather_adj} day it has been in {city}!",
    # travel
    "The {train_kind} train to {city} leaves from platform {platform} at {clock_time}.",
    "{name} is flying from {city} to {city} on the {day_ordinal} of {month}.",
    "How long does it take to drive from {city} to {city}?",
    "The bus to {place} was {count_minutes} late because of {traffic_reason}.",
    "Our hotel in {city} is {distance} from {landmark}.",
    "Please have your passport ready when the train reaches {city}.",
    "Sorry, the train to {city} has been delayed by {count_minutes} due to {delay_reason}.",
    "Have you ever been to {city} in the {season}?",
    "Turn left at {place}, then walk straight on for {count_blocks}.",
    "Is there {shop} near {landmark} that is open on {weekday}s?",
    # work
    "{name} has a meeting with the {team} team at {clock_time} on {weekday}.",
    "Could you send {document} to {name} before {deadline}?",
    "The {team} team finished {project} {count_days} ahead of schedule.",
    "I will be working from {workplace} on {weekday} and {weekday}.",
    "{name} started a new job at {company} in {city} last {month}.",
    "The meeting has been moved from {weekday} to {weekday} at {clock_time}.",
    "Please call me back on extension {extension}.",
    # cooking
    "Preheat the oven to {oven_degrees} degrees and bake the {baked_dish} for {count_minutes}.",
    "Add {amount} of {ingredient} and stir the {pot_dish} for another {count_minutes}.",
    "{name} is making {dish} for {count_guests} tonight.",
    "Chop the {vegetable} finely before you add it to the pan.",
    "Do we still have {ingredient} in the kitchen, or should I buy some more?",
    # numbers, shopping, places
    "{name} bought {count_fruit} for {price} at the market on {weekday}.",
    "The total comes to {price}, and you can pay by card or in cash.",
    "There are {population} people living in the town where {name} grew up.",
    "Room {room_on_floor}, next to the {room_feature}.",
    "We need {party_supplies} for the party on {weekday}, and {name} is bringing the cake.",
    "Thank you for waiting, {name}; your table for {small_number} will be ready in {count_minutes}.",
    # times and dates
    "My alarm goes off at {clock_time} every {weekday} morning.",
    "{name}'s birthday is on the {day_ordinal} of {month}, and the party starts at {clock_time}.",
    "The museum is open from {opening_hour} until {closing_hour}, except on {weekday}s.",
    "We should leave by {clock_time} if we want to catch the ferry to {city}.",
    "The library books are due back on {weekday}, the {day_ordinal} of {month}.",
    "{name} ran {count_kilometers} in {count_minutes} this morning.",
    "{name} has lived in {city} for {count_years}, but still gets lost near {landmark}.",
    "What a lovely surprise to see you in {city}, {name}!",
)

_SLOT = re.compile(r"\{(\w+)\}")


def _expand(template: str, rng: random.Random) -> str:
    used: dict[str, set[str]] = {}

    def fill_slot(match: re.Match[str]) -> str:
        seen = used.setdefault(match.group(1), set())
        value = _expand(_SLOTS[match.group(1)](rng), rng)
        while value in seen:  # "from Lisbon to Lisbon" reads as a mistake
            value = _expand(_SLOTS[match.group(1)](rng), rng)
        seen.add(value)
        return value

    return _SLOT.sub(fill_slot, template)


def fill_template(template: str, rng: random.Random) -> str:
    """Fill every slot, capitalising the first letter; a slot named twice gets two different values."""
    text = _expand(template, rng)
    return text[0].upper() + text[1:]
