"""The memory benchmark's test set: facts a user might have stated, and later questions, each with the
fact it needs. About half share a telling word with their fact ("what's my daughter's name?"); the rest
say it another way ("what city am I in?" for "I live in Lisbon"), where a word index cannot help."""

from __future__ import annotations

FACTS = [
    "My daughter is called Ana.",
    "My son Leo is seven years old.",
    "My wife works as a pharmacist.",
    "I live in Lisbon.",
    "I grew up in a small village near Porto.",
    "I prefer tea to coffee.",
    "I'm allergic to peanuts.",
    "I'm vegetarian.",
    "My birthday is on the third of May.",
    "I work as a nurse at the city hospital.",
    "My dog is called Biscuit.",
    "I play the cello in an orchestra.",
    "I'm going to Paris next week.",
    "My dentist appointment is on Friday.",
    "My favourite band is Radiohead.",
    "I drive an old blue Volvo.",
    "My brother lives in Toronto.",
    "I'm learning Japanese.",
    "I run five kilometres every morning.",
    "My best friend is called Marta.",
    "I don't like horror films.",
    "The spare key is under the mat.",
    "I park on level three of the garage.",
    "My mother turns seventy in June.",
    "I support Benfica.",
]

#: (question, the index in FACTS of the fact it needs)
QUESTIONS = [
    ("What's my daughter's name?", 0),
    ("How old is my son?", 1),
    ("Where does my wife work?", 2),
    ("Where do I live?", 3),
    ("Where did I grow up?", 4),
    ("Do I like coffee?", 5),
    ("Am I allergic to anything?", 6),
    ("When is my birthday?", 8),
    ("What's my dog called?", 10),
    ("Which instrument do I play?", 11),
    ("When am I going to Paris?", 12),
    ("When is my dentist appointment?", 13),
    ("What's my favourite band?", 14),
    ("Where does my brother live?", 16),
    ("What language am I learning?", 17),
    ("Who is my best friend?", 19),
    ("Where is the spare key?", 21),
    ("Where did I park?", 22),
    ("How old is my mother turning?", 23),
    # said another way: no telling word in common with the fact
    ("What city am I in?", 3),
    ("Should you suggest a steak restaurant?", 7),
    ("What do I do for a living?", 9),
    ("Can I eat satay sauce?", 6),
    ("What car do I have?", 15),
    ("Any film suggestions for tonight?", 20),
    ("Which football club am I a fan of?", 24),
    ("Where am I travelling soon?", 12),
    ("What's my morning exercise?", 18),
    ("What does my partner do?", 2),
    ("How do I get into the house if I lose my keys?", 21),
]

#: distractors: the store holds 1,000 facts for the latency measurement (templates × names)
_TEMPLATES = [
    "My colleague {n} likes {x}.",
    "I met {n} at the {x} last year.",
    "{n} recommended a book about {x}.",
    "My neighbour {n} collects {x}.",
]
_NAMES = tuple(
    [
        "Alice",
        "Bruno",
        "Carla",
        "Diego",
        "Elena",
        "Filipe",
        "Greta",
        "Hugo",
        "Ines",
        "Joao",
        "Karin",
        "Luis",
        "Mia",
        "Nuno",
    ]
)
_THINGS = tuple(
    ["gardening", "chess", "stamps", "sailing", "pottery", "jazz", "hiking", "cooking", "painting", "cycling"]
)


def distractors(n: int) -> list[str]:
    out = []
    for i in range(n):
        t = _TEMPLATES[i % len(_TEMPLATES)]
        out.append(
            t.format(n=_NAMES[i % len(_NAMES)], x=_THINGS[(i // len(_NAMES)) % len(_THINGS)]) + f" ({i})"
        )
    return out
