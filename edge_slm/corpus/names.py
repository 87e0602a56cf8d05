"""Synthetic device names, so that a model learns `{name}` from context, not from a list.

Real homes are full of names no inventory predicts: model codes, words of other languages,
nicknames, made-up words ("nova k210", "lampara_salon", "zorbi", "testplug02"). A share of
`{name}` slots is filled with names built here from odd words, foreign words, pseudo-words,
codes and numbers; the slot value is the name itself.
"""

from __future__ import annotations

import random
import string
from typing import Dict, Tuple

WORDS: Tuple[str, ...] = (
    # ordinary words people name things after
    "old", "new", "big", "little", "main", "back", "front", "side", "top", "corner", "window",
    "table", "dinner", "desk", "sofa", "bar", "shelf", "wall", "floor", "ceiling", "mirror",
    "bed", "cabinet", "counter", "island", "stairs", "porch", "door", "pool", "garden", "tree",
    "star", "moon", "sun", "cloud", "rainbow", "comet", "orbit", "pixel", "nova", "echo", "zen",
    "neo", "max", "mini", "pro", "ultra", "smart", "magic", "party", "cozy", "night", "morning",
    "reading", "study", "gaming", "movie", "music", "fish", "cat", "dog", "bird", "plant",
    "monstera", "fern", "cactus", "lava", "salt", "globe", "cube", "tube", "strip", "panel",
    "squares", "lines", "canvas", "beam", "spot", "dot", "ring", "arc", "halo", "glow",
    # names
    "bob", "alice", "tom", "emma", "dad", "mom", "grandma", "jake", "lucy", "max's", "mia's",
    "moms", "kids", "leo", "sam", "zoe", "oscar", "nick's", "ivy",
    # words of other languages that users keep in their device names
    "luz", "luces", "lampara", "salon", "cocina", "dormitorio", "sala", "enchufe", "persiana",
    "ventilador", "quarto", "cozinha", "lampada", "interruptor", "lampa", "kuchnia", "pokoj",
    "salon", "keuken", "woonkamer", "licht", "verlichting", "schakelaar", "rolluik", "zolder",
    "wohnzimmer", "kueche", "stehlampe", "steckdose", "deckenlicht", "rollladen", "keller",
    "lumiere", "chambre", "cuisine", "lampe", "prise", "soggiorno", "cucina", "luce",
    "presa", "vardagsrum", "kok", "sovrum", "taklampa", "stue", "kjokken", "olohuone", "valo",
)
#: Syllables for made-up words ("zorbi", "kilvo", "brasto"): brand names, nicknames and
#: words the tokenizer has never seen, so that a model learns the slot from its context.
ONSETS = ("", "b", "br", "d", "f", "g", "gr", "h", "j", "k", "kl", "l", "m", "n", "p", "pl",
          "r", "s", "sh", "st", "t", "tr", "v", "w", "z", "ch", "x", "y")
NUCLEI = ("a", "e", "i", "o", "u", "a", "e", "o", "ee", "oo", "ai", "ei", "y", "ou")
CODAS = ("", "", "", "n", "r", "l", "s", "x", "m", "k", "t", "nd", "st", "rk")
DOMAIN_NOUNS = {
    "light": ("light", "lamp", "lights", "bulb", "led", "spot", "strip", "lamps", "dimmer"),
    "switch": ("switch", "plug", "socket", "outlet", "relay", "power", "pump", "heater"),
    "fan": ("fan", "ventilator", "extractor"),
    "media_player": ("tv", "speaker", "radio", "player", "soundbar", "stereo"),
    "cover": ("blinds", "shade", "curtain", "shutter", "cover", "gate"),
    "lock": ("lock", "door lock", "deadbolt"),
    "climate": ("thermostat", "heating", "ac", "heat pump"),
    "sensor": ("sensor", "meter", "probe"),
    "binary_sensor": ("sensor", "contact", "detector"),
    "vacuum": ("vacuum", "robot", "cleaner"),
    "lawn_mower": ("mower", "robot", "mowbot"),
    "todo": ("list", "shopping list", "todo list"),
    "script": ("script", "routine"),
    "scene": ("scene", "mode"),
    "input_boolean": ("mode", "switch"),
}


#: Domains whose entities are not devices: people, places, lists and pet-named robots are
#: called what people call them, not "<word> <noun>".
NAMED_LIKE_PEOPLE: Dict[str, Tuple[str, ...]] = {
    "person": (
        "anna", "james", "maria", "john", "linda", "michael", "sofia", "daniel", "olivia",
        "noah", "grace", "liam", "chloe", "ethan", "ava", "lucas", "isabel", "mason", "nina",
        "omar", "priya", "raj", "yuki", "hana", "carlos", "elena", "pierre", "ingrid", "kofi",
        "amara", "mum", "dad", "grandpa", "nana", "the kids", "my wife", "my husband",
    ),
    "weather": (
        "paris", "berlin", "tokyo", "new york", "chicago", "seattle", "madrid", "rome",
        "sydney", "toronto", "dublin", "oslo", "lisbon", "austin", "denver", "boston",
        "amsterdam", "vienna", "prague", "cape town", "mumbai", "the cabin", "the beach house",
        "grandma's", "the lake", "downtown", "the airport",
    ),
    "todo": (
        "costco", "aldi", "ikea", "target", "walmart", "whole foods", "home depot", "pharmacy",
        "birthday", "party", "holiday", "camping", "garden", "renovation", "school",
        "weekend", "errands", "gifts", "baby", "moving", "wedding", "books to read",
        "movies to watch", "bucket list", "honey do",
    ),
    "lawn_mower": (
        "mowgli", "mowbot", "grassy", "trim", "chomper", "lawnie", "husky", "bob",
        "edward", "zippy", "greta", "mo", "sheep",
    ),
    "vacuum": (
        "dusty", "robbie", "zoomba", "hoovie", "bot", "sweepy", "dobby", "wall-e", "r2",
        "rosie", "chewie", "dirtbag", "suzy", "henry", "max",
    ),
}


def synth_name(rng: random.Random, domain: str) -> str:
    """A plausible, never-seen name for an entity of `domain`."""
    people = NAMED_LIKE_PEOPLE.get(domain)
    if people and rng.random() < 0.7:
        name = rng.choice(people)
        if domain in ("lawn_mower", "vacuum") and rng.random() < 0.3:
            name = f"{name} {rng.choice(DOMAIN_NOUNS.get(domain, ('bot',)))}"
        return name
    r = rng.random()
    nouns = DOMAIN_NOUNS.get(domain, ("device",))
    if r < 0.2:  # a made-up word: "zorbi", "kilvo lamp"
        name = pseudo_word(rng)
        if rng.random() < 0.35:
            name = f"{name} {rng.choice(nouns)}"
        elif rng.random() < 0.15:
            name = f"{rng.choice(WORDS)} {name}"
        return name
    if r < 0.4:  # a code: "k210", "sw3", "plug07", "zx-9"
        letters = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(1, 3)))
        if rng.random() < 0.4:
            letters = rng.choice(WORDS).replace("'", "")
        digits = str(rng.randint(0, 999)).zfill(rng.choice((1, 2, 3)))
        sep = rng.choice(("", "", " ", "_", "-"))
        name = f"{letters}{sep}{digits}"
        if rng.random() < 0.35:
            name = f"{rng.choice(WORDS)} {name}"
        return name
    words = [rng.choice(WORDS) for _ in range(rng.choice((1, 1, 2, 2, 3)))]
    if rng.random() < 0.45:
        words.append(rng.choice(nouns))
    if rng.random() < 0.2:
        words.append(str(rng.randint(1, 12)))
    sep = "_" if rng.random() < 0.05 else " "
    return sep.join(words)


def pseudo_word(rng: random.Random) -> str:
    """A pronounceable word that no dictionary has: 2 or 3 syllables, sometimes a digit."""
    word = "".join(rng.choice(ONSETS) + rng.choice(NUCLEI) + rng.choice(CODAS)
                   for _ in range(rng.choice((2, 2, 3))))
    if rng.random() < 0.1:
        word += str(rng.randint(1, 9))
    return word
