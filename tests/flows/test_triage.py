import csv
import textwrap
from pathlib import Path

import pytest

from bot.extensions import flow_engine
from flows.conversation import Conversation
from flows.triage import LEVELS, Assessment, Triage, TriageLexiconError

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def triage():
    return Triage.load()


def level(triage, text):
    return triage.assess(text).level


# ---------------------------------------------------------------- figures


def _rows(name):
    with open(DATA / name, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


# The development sets (tests/data/README.md): every one, the holdouts included, has
# been tuned on, so these thresholds guard against a change that breaks what was
# reached, not how the lexicon reads new wording. That is triage_frozen.tsv's job.
@pytest.mark.parametrize("name", ["triage_dev.tsv", "triage_extra.tsv",
                                  "triage_holdout.tsv", "triage_holdout2.tsv",
                                  "triage_holdout3.tsv", "triage_holdout4.tsv",
                                  "triage_holdout5.tsv"])
def test_figures(triage, name):
    rows = _rows(name)
    by = {lv: [triage.assess(r["text"]).level for r in rows if r["level"] == lv] for lv in LEVELS}
    assert all(by.values()), f"{name} must have lines of every level"
    emergency = sum(x == "emergency" for x in by["emergency"]) / len(by["emergency"])
    high = sum(x in ("high", "emergency") for x in by["high"]) / len(by["high"])
    normal_fp = sum(x == "emergency" for x in by["normal"]) / len(by["normal"])
    print(f"\n{name}: emergency->emergency {emergency:.1%} ({len(by['emergency'])}), "
          f"high->high+ {high:.1%} ({len(by['high'])}), "
          f"normal->emergency {normal_fp:.1%} ({len(by['normal'])})")
    assert emergency >= 0.95
    assert high >= 0.85
    assert normal_fp <= 0.05


def test_holdout6_figures(triage):
    """Development since 2026-12-01 (it was the first frozen set; its misses were read). Tuned for its
    emergencies by concept (a body in danger now, being driven off, a child with men, a gang's threat
    for tonight): 30/45 -> 42/45. Its high lines are not tuned yet (33/55), so it has floors of its own
    rather than test_figures' thresholds."""
    rows = _rows("triage_holdout6.tsv")
    by = {lv: [triage.assess(r["text"]).level for r in rows if r["level"] == lv] for lv in LEVELS}
    assert by["emergency"].count("emergency") >= 42
    assert sum(got in ("high", "emergency") for got in by["high"]) >= 33
    assert "emergency" not in by["normal"]


def test_frozen_figures(triage):
    """The frozen set, never tuned on (tests/data/README.md): floors at its first measurement
    (emergency 34/50, high+ 24/50, normal -> emergency 0/50). Below them a change lost ground on
    wording nobody tuned for; above them, raise nothing: the figures quoted are the first ones."""
    rows = _rows("triage_frozen.tsv")
    by = {lv: [triage.assess(r["text"]).level for r in rows if r["level"] == lv] for lv in LEVELS}
    assert by["emergency"].count("emergency") >= 34
    assert sum(got in ("high", "emergency") for got in by["high"]) >= 24
    assert "emergency" not in by["normal"]


def test_frozen_emergencies_told_911_by_the_whole_engine():
    """The same set as a texter at the menu meets it (lexicon and intent model together): first
    measurement 45/50 told 911 at once, 42/50 alerting the counsellors. The lines missed are not
    printed: reading them would make the set development data."""
    engine = flow_engine("Kern Support Line")
    not_told = alerted = 0
    for r in _rows("triage_frozen.tsv"):
        if r["level"] != "emergency":
            continue
        conv = Conversation(id="f", channel="sms", address="+16615550100")
        for i, first in enumerate(("hola" if r["lang"] == "es" else "hi", "1")):
            engine.step(conv, first, i)
            conv.new = False
        step = engine.step(conv, r["text"], 10)
        not_told += "911" not in step.text
        alerted += step.effect("emergency_alert") is not None
    assert not_told <= 5
    assert alerted >= 42


@pytest.mark.parametrize("name,size", [("triage_extra.tsv", 80), ("triage_holdout.tsv", 140),
                                       ("triage_holdout2.tsv", 60), ("triage_holdout3.tsv", 120),
                                       ("triage_holdout4.tsv", 60), ("triage_holdout5.tsv", 110),
                                       ("triage_holdout6.tsv", 160), ("triage_frozen.tsv", 150)])
def test_own_sets_are_big_and_bilingual(name, size):
    rows = _rows(name)
    assert len(rows) >= size
    assert {r["lang"] for r in rows} == {"en", "es"}
    assert {r["level"] for r in rows} == set(LEVELS)


# ---------------------------------------------------------------- negation

# Each negated message must stay below emergency while the same message
# without the negation must fire, so the test can't pass by matching nothing.
NEGATION_PAIRS = [
    ("i'm not in danger", "i'm in danger"),
    ("no estoy en peligro", "estoy en peligro"),
    ("nobody is hurting me", "he is hurting me"),
    ("i don't want to die", "i want to die"),
    ("no quiero morir", "quiero morir"),
    ("he isn't hitting me anymore", "he is hitting me"),
    ("nadie me esta pegando", "me esta pegando"),
    ("ya no me pegan", "me pegan"),
    ("they are not going to kill me", "they are going to kill me"),
    ("i'm not going to kill myself", "i'm going to kill myself"),
    ("i don't think he has a gun", "he has a gun"),
    ("i dont feel like im in danger", "i feel like im in danger"),
    ("no me quiero matar", "me quiero matar"),
    ("he never hit me", "he hit me"),
]


@pytest.mark.parametrize("negated,plain", NEGATION_PAIRS)
def test_negation(triage, negated, plain):
    assert level(triage, plain) == "emergency"
    assert level(triage, negated) != "emergency"


@pytest.mark.parametrize("text", [
    "no me dejan salir",          # the negation is the danger
    "they won't let me leave",
    "no quiero vivir",
    "i dont feel safe",
    "no, he has a gun",
    "no he has a knife",          # "no" as an answer, no comma
    "im not ok he has a gun",     # negation belongs to another clause
    "no se si me va a matar",     # "no se" = I don't know
    "he won't stop choking me",   # a negated "stop" is no negation of the harm
    "no deja de pegarme",
    "ya no puedo mas me voy a matar",  # "mas" closes the negated clause
    "my stepdad won't get off me",
])
def test_negation_does_not_swallow_danger(triage, text):
    assert level(triage, text) == "emergency"


@pytest.mark.parametrize("negated,plain", [
    ("my boss doesn't keep my passport", "my boss keeps my passport"),
    ("nobody took my papers", "they took my papers"),
])
def test_negation_high(triage, negated, plain):
    assert level(triage, plain) == "high"
    assert level(triage, negated) == "normal"


# ---------------------------------------------------------------- false positives


@pytest.mark.parametrize("text", [
    "i'm dying to know how this works haha",
    "we're killing it at work",
    "this traffic is killing me",
    "my feet are killing me lol",
    "I could kill for a taco",
    "me muero de risa",
    "me mata de risa mi hermano",
    "a shot of tequila",
    "going to the gun show",
    "my passport expired",
    "I need to pay my debt to the bank",
    "hit me up later",
    "he shot me a text",
    "im locked out of my account",
    "my mom wont let me go to the party",
    "mi jefe no me deja salir temprano",
    "i'm hurt that you didn't call",
    "i can't leave until 5",
    "2",
    "93305",
    "i have my passport with me",
    "i'm 17 and looking for a job",
    "what is human trafficking?",
    # idioms and harmless weapons, haircuts, bedtime, house rules
    "lol my sister is gonna murder me for borrowing her jacket",
    "mi mama me va a matar si llego tarde",
    "me mata el dolor de cabeza",
    "this class is gonna finish me off",
    "she is dragging me to church on sunday",
    "my back is hurting me",
    "the baby wont stop kicking me",
    "i hit my head on the cabinet lol",
    "he is cooking me breakfast",    # "cooking" must not be read as "choking"
    "i need a knife to cut the cake",
    "the guy at the store showed me some knives",
    "my brother got a knife for his birthday",
    "im scared of guns",
    "mi papa tiene una pistola de agua",
    "me voy a cortar el pelo",
    "me voy a tirar a dormir",
    "i want to sleep forever lol its saturday",
    "nobody would care if i skip class",
    "my parents wont let me go anywhere",
    "mi mama no me deja salir sola",
    "there is no way to get out of work early",
    "i cant move out until i pay off my car",
    "i got my passport back when i paid the fee",
    "vivo en el rancho con mis papas y no tengo trabajo",
    "my family will pay for my ticket",
    "trabajo en la calle vendiendo elotes",
    # help with a task, or a call back, is not a plea for rescue
    "can you send someone to help me with my resume",
    "can someone call me to help with food stamps",
    "me pueden mandar ayuda con mi tarea",
    "they will call the police on the party",
    "my cat sits on top of me when i sleep",
    # words next to new harm patterns
    "she burned me a cd",
    "my little brother bit me lol",
    "he pushed me to do better",
    "they shot my friend a text",
    "i cut myself shaving lol",
    "my nose is broken from football",   # "noose" would collapse to "nose"
    "i broke my arm skating",
    "i want to leave but my mom wont let me",
    "i cant get out of the house today im sick",
    "im standing on the bridge waiting for the bus",
    "me corte el pelo",
    "me tome una pastilla para el dolor",
    "me toca trabajar mañana",
    "la pelicula donde lo van a matar",
    "i'm going to kill my brother he ate my food lol",
    "they dont give me my check until friday",
    "no me dan el cheque hasta el viernes",
    "my mom doesnt give me money",
    "tengo 15 y mi tio me regalo un cel",
    # parents' house rules and ordinary pay talk next to the round-4 patterns
    "mi mama me quito el cel",
    "my mom drives me everywhere",
    "mi jefe me descuenta el seguro",
])
def test_false_positives_are_normal(triage, text):
    assert level(triage, text) == "normal"


# ---------------------------------------------------------------- paraphrases

# Wordings that earlier lexicons missed: each stands for a concept (harm verb
# on a person, weapon shown, overdose, documents held until a debt is paid).
@pytest.mark.parametrize("text,expected", [
    ("he is dragging me by my hair", "emergency"),
    ("please send someone to help me now", "emergency"),  # a plea, unlike help with a resume
    ("manden ayuda por favor", "emergency"),
    ("he put a knife on the table and said im next", "emergency"),
    ("i swallowed everything in the medicine cabinet", "emergency"),
    ("he slammed my head into the wall", "emergency"),
    ("im going to jump off the overpass", "emergency"),
    ("everyone would be better off without me", "emergency"),
    ("me puso el cuchillo en el cuello", "emergency"),
    ("me esta agarrando a golpes", "emergency"),
    ("me quitaron el cel y las llaves y cerraron con llave", "emergency"),
    ("ya no quiero estar en este mundo", "emergency"),
    ("boss says i cant have my passport back until i pay", "high"),
    # a clause opened by "until" is not reached by the "can't" before it
    ("i want to quit but i cant until the debt is paid", "high"),
    ("he says hell get me deported if i say anything", "high"),
    ("me van a deportar si digo algo", "high"),
    ("vivimos en el rancho y no nos dejan ir al pueblo", "high"),
    ("tengo que juntar 300 cada noche para el", "high"),
    ("they keep our green cards in the office safe", "high"),
    # round 3: verb forms and concepts missing before holdout3
    ("he burned me with a cigarette", "emergency"),
    ("mi papa me quemo con la plancha", "emergency"),
    ("he forced me to have sex", "emergency"),
    ("me estaba ahorcando", "emergency"),
    ("me quiso ahorcar", "emergency"),
    ("me encierra en el baño", "emergency"),
    ("me amarraron", "emergency"),
    ("ayudenme me quieren llevar a la fuerza", "emergency"),
    ("i want to leave but he wont let me", "emergency"),
    ("he said hes going to kill my kids", "emergency"),
    ("van a matar a mis hijos", "emergency"),
    ("me tome 30 pastillas", "emergency"),
    ("i started cutting again", "emergency"),
    ("im going to jump", "emergency"),
    ("he broke down the door", "emergency"),
    ("someone put something in my drink", "emergency"),
    ("i owe them money and cant leave till i pay it", "high"),
    ("i want to quit but they wont let me", "high"),
    ("an older guy buys me stuff if i send him pics and im 16", "high"),
    ("tengo 14 y un hombre me deja quedarme en su casa si me acuesto con el", "high"),
    ("they havent paid me in weeks", "high"),
    ("he puts me on the street", "high"),
    ("dice que me va a reportar a migracion", "high"),
    ("my passport is with the boss", "high"),
    # round 3: concepts missing before holdout4
    ("they never give us our checks", "high"),
    ("no nos dan nuestro sueldo", "high"),
    ("he has me seeing men for money", "high"),
    ("im 14 and a grown man gives me vapes", "high"),
    ("tengo 13 y un señor me invita a su casa y me da mota", "high"),
    ("they offered me a job cleaning and now they make me dance", "high"),
    ("me ofrecieron chamba de mesera y me obligan a fichar", "high"),
    ("tengo que pasarle todo mi dinero a mi novio", "high"),
    # round 4: concepts missing before holdout5
    ("he only gives us food no money", "high"),
    ("nos pagan con comida", "high"),
    ("el patron no me ha pagado en 3 meses", "high"),
    ("the crew boss holds our checks", "high"),
    ("she said she will post my videos if i stop", "high"),
    ("dice que va a subir mis fotos si no le mando mas", "high"),
    ("they know where my kids live", "high"),
    ("si me quejo me manda a la migra", "high"),
    ("el jefe tiene mi telefono y mi pasaporte", "high"),
    ("no tengo mis papeles los tiene el patron", "high"),
    ("nos hacen dormir en la bodega", "high"),
    ("si no llego a la cuota no me dan de comer", "high"),
    ("el patron nos quito los celulares", "high"),
    ("my stepdad took my phone and wont let me talk to anyone", "high"),
])
def test_paraphrases(triage, text, expected):
    assert level(triage, text) == expected


# ---------------------------------------------------------------- self-harm flag


@pytest.mark.parametrize("text,expected_level,flag", [
    ("want to die", "emergency", True),
    ("me quiero matar", "emergency", True),
    ("i swallowed a lot of pills", "emergency", True),
    ("I'm going to end my life tonight", "emergency", True),
    ("no quiero vivir", "emergency", True),
    ("he has a gun", "emergency", False),
    ("they said they will kill me", "emergency", False),
    ("me va a matar", "emergency", False),
    ("hola", "normal", False),
])
def test_self_harm_flag(triage, text, expected_level, flag):
    a = triage.assess(text)
    assert (a.level, a.self_harm) == (expected_level, flag)


# ---------------------------------------------------------------- spelling


@pytest.mark.parametrize("variants,expected", [
    (["me está pegando", "me esta pegando", "ME ESTÁ PEGANDO", "me estan pegandoo"], "emergency"),
    (["me quitaron el pasaporte", "me quitaron el pasaprote", "me kitaron el pasaporte"], "high"),
    (["he's strangling me", "hes strangling me", "he is stranglin me"], "emergency"),
    (["pleeease help hes choking me", "he is choking me!!!"], "emergency"),
    (["ur boss has ur passport?? he has my passport", "my boss has my pasport"], "high"),
    (["kiero matarme", "quiero matarme", "qiero matarme"], "emergency"),
    (["I'm trapped", "im traped", "i’m trapped"], "emergency"),
    (["they don't pay me", "they dont pay me", "they don’t pay me", "they dnt pay me"], "high"),
    (["hes hittin me", "he is hitin me", "hes chokin me", "he is beatin me"], "emergency"),
    (["i want to kill my self", "i want to kill myself"], "emergency"),
    (["me engañaron con una oferta de trabajo", "me enganaron con una oferta de trabajo"], "high"),
])
def test_spelling_variants(triage, variants, expected):
    assert [level(triage, v) for v in variants] == [expected] * len(variants)


# ---------------------------------------------------------------- API and robustness


def test_api_shape(triage):
    a = triage.assess("he has a gun")
    assert isinstance(a, Assessment)
    assert (a.level, a.matched, a.self_harm) == ("emergency", ("weapon",), False)
    assert a.to_dict() == {"level": "emergency", "matched": ["weapon"]}
    explained = a.to_dict(explain=True)
    assert explained["explain"][0]["id"] == "weapon"
    assert explained["explain"][0]["level"] == "emergency"
    assert explained["explain"][0]["span"] == "has a gun"
    assert isinstance(explained["explain"][0]["pattern"], str)
    assert LEVELS == ("normal", "high", "emergency")


def test_level_is_the_highest_match(triage):
    a = triage.assess("my boss keeps my passport and he has a gun")
    assert a.level == "emergency"
    assert set(a.matched) == {"passport_held", "weapon"}


@pytest.mark.parametrize("text", [
    "", " ", "\x00", "\x00he\x00", "😀😭🔫", "🔪", "\u200b\u200b", "ﾟ･✿ヾ╲(｡◕‿◕｡)╱✿･ﾟ",
    "\ud800", "a" * 1600, "me " * 533, "\n\n\t", "????!!!!", "ñ" * 1600, "x" * 100_000,
])
def test_never_raises(triage, text):
    a = triage.assess(text)
    assert a.level in LEVELS
    assert a.to_dict(explain=True)["level"] == a.level


def test_long_message_within_limit_is_scanned(triage):
    text = ("ok " * 520) + "he has a gun"
    assert 1550 < len(text) <= 1600
    assert level(triage, text) == "emergency"


def test_empty_is_normal(triage):
    assert triage.assess("").to_dict() == {"level": "normal", "matched": []}


# ---------------------------------------------------------------- lexicon errors

GOOD = """\
classes:
  ARMS: [gun, knife]
entries:
  - id: weapon
    level: emergency
    patterns:
      en:
        - "has ~2 @ARMS"
"""


def _write(tmp_path, text):
    p = tmp_path / "lex.yaml"
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_custom_lexicon_loads(tmp_path):
    t = Triage.load(_write(tmp_path, GOOD))
    assert t.assess("he has a knife").matched == ("weapon",)
    assert t.assess("she is 15").level == "normal"


@pytest.mark.parametrize("bad_line,replacement,line_no", [
    ("    level: emergency", "    level: urgent", 5),
    ('        - "has ~2 @ARMS"', '        - ""', 8),
    ('        - "has ~2 @ARMS"', '        - "has /(unclosed/"', 8),
    ('        - "has ~2 @ARMS"', '        - "has /1[0-/"', 8),
    ("    level: emergency", "    level: normal", 5),
    ('        - "has ~2 @ARMS"', '        - "has ~2 @NOPE"', 8),
    ('        - "has ~2 @ARMS"', '        - "has ~2 gun$"', 8),
])
def test_broken_lexicon_names_file_and_line(tmp_path, bad_line, replacement, line_no):
    assert bad_line in GOOD
    path = _write(tmp_path, GOOD.replace(bad_line, replacement))
    with pytest.raises(TriageLexiconError) as exc:
        Triage.load(path)
    assert isinstance(exc.value, ValueError)
    assert "lex.yaml" in str(exc.value)
    assert f"line {line_no}" in str(exc.value)


def test_invalid_yaml_names_line(tmp_path):
    path = _write(tmp_path, GOOD + "  - id: [unclosed\n")
    with pytest.raises(TriageLexiconError, match=r"lex\.yaml, line \d+"):
        Triage.load(path)


@pytest.mark.parametrize("text", ["he is going to k\u200bill me", "he has a g\u200bun", "me va a m\u200batar",
                                  "i\u00adm in dan\u2060ger", "\u202ehe has a knife"])
def test_invisible_characters_inside_words_do_not_hide_danger(triage, text):
    """A zero-width space, soft hyphen, word joiner or bidi mark pasted into a word (by a keyboard, a
    copy, or on purpose) would split it into tokens that match nothing."""
    assert level(triage, text) == "emergency"


# Everyday messages an outside test found read as emergencies by the first version of the 2026-12-01
# patterns (someone on the way, breathing, bleeding, "send someone", a girl and men going in).
@pytest.mark.parametrize("text", [
    "can you send someone to fix the sink?", "manden a alguien a hablar a mi escuela",
    "my baby is not breathing well because of a cold?", "mi bebé no respira bien por la gripa",
    "my nose won't stop bleeding, is that normal", "my period won't stop bleeding",
    "mi hermano viene para acá a ayudarme", "mi esposo viene para acá a comer",
    "there's a little girl at my work and the guys are going in there to fix the ac",
    "a little girl lives next door and the guys are always going in there",
])
def test_everyday_messages_near_the_new_emergency_patterns_stay_below_emergency(triage, text):
    assert level(triage, text) != "emergency"


@pytest.mark.parametrize("text", [
    "he stopped breathing", "please send someone", "he hit me and my nose wont stop bleeding",
    "cuanto falta, tengo miedo que me pegue", "hes on his way here and hes mad",
])
def test_the_same_concepts_in_danger_are_still_emergencies(triage, text):
    assert level(triage, text) == "emergency"
