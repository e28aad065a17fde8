"""Resources that fit the person, and listings kept honest (issue 12), as texters read them.

Every case is a conversation through the real engine (flows.engine.FlowEngine with the shipped flow,
catalogs, triage, intent model and resource directory), in English and Spanish:

- never an empty list: outside Kern County the texter is told the line serves Kern County and gets
  the national lines; in the county with nothing of the kind listed, the national lines and 2-1-1;
- a maximum distance (flows.resources.MAX_MILES): beyond it only the nearest place, with its
  distance, after a phone line;
- eligibility: a minor hears the National Runaway Safeline before any shelter; an adult is never
  offered the Safeline ("ages 12 to 21"); when the age is not known, who a service is for is said;
- hotlines as hotlines: a number and its hours, no distance; the trafficking hotline in every
  shelter list;
- towns as well as ZIP codes ("bakersfield", "estoy en Délano"), offline;
- listings past their review date bring the national hotline and "details may be out of date";
- Spanish lines in Spanish only ("manda START al 88788", "24 horas", "a 1 milla");
- every list, with the question sent in the same SMS, within 3 SMS segments.
"""
from __future__ import annotations

import re
from datetime import date

import pytest

from bot.extensions import flow_engine
from flows.conversation import Conversation
from flows.engine import FlowEngine, Step
from flows.resources import DEFAULT_PATH, MAX_MILES, REPLY_RESERVE, ResourceDirectory, _main, sms_segments

NAME = "Kern Support Line"
ENGINE = flow_engine(NAME)
LANGS = ["en", "es"]
HELLO = {"en": "hi", "es": "hola"}
CATEGORY = {"shelter": "1", "youth": "2", "food": "3", "legal": "4", "medical": "5", "counselling": "6"}
TRAFFICKING = "1-888-373-7888"
SAFELINE = "1-800-786-2929"
NEAR = {"en": "Near {}:", "es": "Cerca de {}:"}
MILES = re.compile(r"(\d+) mi\b|a (\d+) millas?\b")
LOCAL_NUMBERS = ("(661) 327-1091", "(661) 631-6011", "(760) 375-6049", "2-1-1")


class Chat:
    """One texter talking to an engine; a clock that moves one second per message."""

    def __init__(self, engine: FlowEngine = ENGINE):
        self.engine = engine
        self.conv = Conversation(id="c-fit", channel="sms", address="+16615550100")
        self.now = 1_700_000_000.0

    def send(self, text: str) -> Step:
        self.now += 1
        step = self.engine.step(self.conv, text, self.now)
        self.conv.new = False
        return step


def listing(step: Step) -> str:
    assert "resources_list" in step.keys, step.keys
    return step.replies[step.keys.index("resources_list")]


def find_help(lang: str, category: str, place: str, engine: FlowEngine = ENGINE) -> tuple[Chat, str]:
    """Menu 5 (find help near me), the kind of help, then the place: the list the texter reads."""
    chat = Chat(engine)
    for text in (HELLO[lang], "1", "5", CATEGORY[category]):
        chat.send(text)
    assert chat.conv.state == "ask_zip" and chat.conv.lang == lang
    step = chat.send(place)
    assert chat.conv.state == "check_in_offer", (place, step.text)  # by text: a check-in later is offered
    return chat, listing(step)


def ran_away(lang: str, age: str) -> Chat:
    """The runaway path: their age, no safe place tonight; the chat rests at "1 counselor / 2 shelters"."""
    chat = Chat()
    for text in (HELLO[lang], "1", "3", age, "2"):
        chat.send(text)
    assert chat.conv.state.startswith("runaway_unsafe") and chat.conv.slots["age"] == int(age)  # _adult past 21
    return chat


def line_with(text: str, needle: str) -> str:
    found = [line for line in text.splitlines() if needle in line]
    assert found, (needle, text)
    return found[0]


def miles_in(text: str) -> list[int]:
    """The distances stated in the listing lines (not the "nothing within 40 mi" heading)."""
    lines = "\n".join(line for line in text.splitlines() if line.startswith("- "))
    return [int(a or b) for a, b in MILES.findall(lines)]


# -- never an empty list ---------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("category", list(CATEGORY))
def test_a_zip_outside_kern_county_is_told_so_and_gets_the_national_lines(lang, category):
    _, text = find_help(lang, category, "10001")
    first = text.splitlines()[0]
    assert first.startswith("10001 ")
    assert ("outside Kern County" if lang == "en" else "fuera del condado de Kern") in first
    assert ("serves Kern County only" if lang == "en" else "Solo atendemos el condado de Kern") in first
    assert TRAFFICKING in text and len(text.splitlines()) >= 2
    assert not any(n in text for n in LOCAL_NUMBERS), text  # no Kern line, 2-1-1 Kern included
    assert miles_in(text) == []
    if category == "shelter":
        assert "1-800-799-7233" in text
    if category == "youth":
        assert SAFELINE in text


@pytest.mark.parametrize("lang, town", [("en", "Fresno"), ("es", "estoy en Los Angeles")])
def test_a_town_outside_kern_county_is_told_so_too(lang, town):
    _, text = find_help(lang, "shelter", town)
    assert ("outside Kern County" if lang == "en" else "fuera del condado de Kern") in text
    assert TRAFFICKING in text and "(661)" not in text


@pytest.mark.parametrize("lang", LANGS)
def test_in_the_county_with_nothing_of_that_kind_the_national_lines_and_2_1_1(lang):
    _, text = find_help(lang, "medical", "93305")  # no medical listing yet
    assert text.splitlines()[0].startswith(NEAR[lang].format("93305")[:-1])
    assert ("nothing of that kind" if lang == "en" else "no hay nada de ese tipo") in text
    assert "2-1-1" in text and TRAFFICKING in text


# -- a maximum distance ------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_ridgecrest_is_not_sent_to_bakersfield_food_banks_without_being_told_how_far(lang):
    _, text = find_help(lang, "food", "93555")
    lines = text.splitlines()
    assert (f"nothing listed within {MAX_MILES} mi" if lang == "en"
            else f"a menos de {MAX_MILES} millas") in lines[0]
    # Only the nearest place, with its distance; a number to call before it.
    assert miles_in(text) == [76], text
    far = line_with(text, "The Mission at Kern County")
    assert far.endswith("76 mi" if lang == "en" else "a 76 millas")
    phone = line_with(text, "2-1-1")
    assert lines.index(phone) < lines.index(far)
    assert "520 Washington Street" not in text and "Dream Center" not in text  # not three far places
    assert TRAFFICKING in text


@pytest.mark.parametrize("lang", LANGS)
def test_ridgecrest_legal_help_leads_with_the_hotline_then_the_far_office(lang):
    _, text = find_help(lang, "legal", "Ridgecrest")
    lines = text.splitlines()
    hotline = line_with(text, "(661) 327-1091")
    office = line_with(text, "Family Justice Center")
    assert lines.index(hotline) < lines.index(office)
    assert len(miles_in(text)) == 1 and miles_in(text)[0] > MAX_MILES


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("place", ["93305", "93215", "93555", "93501", "93268", "93240", "Lake Isabella", "Taft"])
@pytest.mark.parametrize("category", list(CATEGORY))
def test_no_place_beyond_the_maximum_is_listed_as_near(lang, place, category):
    _, text = find_help(lang, category, place)
    far = [m for m in miles_in(text) if m > MAX_MILES]
    if far:
        # Far mode: said in the first line, and then only the one nearest place.
        assert (f"within {MAX_MILES} mi" if lang == "en" else f"a menos de {MAX_MILES} millas") in text.splitlines()[0]
        assert len(miles_in(text)) == 1
    assert miles_in(text) == sorted(miles_in(text))


# -- eligibility -------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_a_12_year_old_runaway_hears_the_safeline_before_any_shelter(lang):
    chat = ran_away(lang, "12")
    chat.send("2")  # shelters near me
    assert chat.conv.state == "ask_zip" and chat.conv.slots["category"] == "shelter"
    text = listing(chat.send("93305"))
    lines = text.splitlines()
    first = lines[1]
    assert first.startswith("- National Runaway Safeline") and SAFELINE in first and "66008" in first
    assert lines.index(line_with(text, "The Mission at Kern County")) > 1
    assert TRAFFICKING in text


@pytest.mark.parametrize("lang", LANGS)
def test_a_minor_asking_for_youth_services_gets_the_safeline_first(lang):
    chat = ran_away(lang, "15")
    for text in ("0", "5", CATEGORY["youth"]):
        chat.send(text)
    text = listing(chat.send("Bakersfield"))
    assert text.splitlines()[1].startswith("- National Runaway Safeline")


@pytest.mark.parametrize("lang", LANGS)
def test_an_adult_is_never_offered_the_safeline_as_if_it_were_for_them(lang):
    chat = ran_away(lang, "25")
    chat.send("2")
    shelters = listing(chat.send("93305"))
    for text in ("0", "5", CATEGORY["youth"]):
        chat.send(text)
    youth = listing(chat.send("93305"))
    for text in (shelters, youth):
        assert SAFELINE not in text and "66008" not in text
        assert "12-21" not in text and "12 a 21" not in text
    # What is for them at 25 is offered, saying who it is for.
    assert line_with(youth, "Dream Center")
    assert ("foster youth up to 25" if lang == "en" else "hasta 25 años") in youth


@pytest.mark.parametrize("lang", LANGS)
def test_at_26_the_foster_youth_center_is_not_offered(lang):
    chat = ran_away(lang, "26")
    for text in ("0", "5", CATEGORY["youth"]):
        chat.send(text)
    text = listing(chat.send("93305"))
    assert "Dream Center" not in text and SAFELINE not in text and TRAFFICKING in text


@pytest.mark.parametrize("lang", LANGS)
def test_when_the_age_is_not_known_a_youth_service_says_who_it_is_for(lang):
    _, text = find_help(lang, "youth", "93305")
    safeline = line_with(text, SAFELINE)
    assert ("ages 12-21 and their families" if lang == "en" else "de 12 a 21 años y sus familias") in safeline
    dream = line_with(text, "Dream Center")
    assert ("current and former foster youth up to 25" if lang == "en" else "hogar de crianza") in dream


# -- hotlines as hotlines -----------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_bakersfield_sees_open_door_network_as_a_24_hour_hotline_not_as_delano_34_mi(lang):
    _, text = find_help(lang, "shelter", "93305")
    hotline = line_with(text, "Open Door Network")
    assert ("call (661) 327-1091, 24 hours" if lang == "en" else "llama al (661) 327-1091, 24 horas") in hotline
    assert miles_in(hotline) == [] and "Delano" not in hotline


@pytest.mark.parametrize("lang", LANGS)
def test_in_delano_the_hotline_gives_its_address_but_still_no_distance(lang):
    _, text = find_help(lang, "shelter", "93215")
    hotline = line_with(text, "Open Door Network")
    assert "1317 Main Street, Delano" in hotline and miles_in(hotline) == []
    assert text.index("Delano") < text.index("Bakersfield")


@pytest.mark.parametrize("lang", LANGS)
def test_a_county_line_with_two_offices_gives_the_nearest_number_once(lang):
    _, ridgecrest = find_help(lang, "youth", "93555")
    assert "(760) 375-6049" in ridgecrest and "(661) 631-6011" not in ridgecrest
    assert miles_in(line_with(ridgecrest, "(760) 375-6049")) == []


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("place", ["93305", "93215", "93555", "93203", "93501", "10001", "Tehachapi"])
def test_the_trafficking_hotline_is_in_every_shelter_list(lang, place):
    _, text = find_help(lang, "shelter", place)
    hotline = line_with(text, TRAFFICKING)
    assert hotline.startswith("- National Human Trafficking Hotline") and "233733" in hotline
    assert miles_in(hotline) == []


# -- towns as well as ZIP codes ----------------------------------------------------------------------


TOWNS = [("bakersfield", "Bakersfield"), ("arvin", "Arvin"), ("Delano", "Delano"), ("DÉLANO", "Delano"),
         ("Bakersfeild", "Bakersfield"), ("Lake Isabella", "Lake Isabella"), ("mcfarland", "McFarland"),
         ("Tehachapí, CA", "Tehachapi"), ("california city", "California City"), ("９３３０５", "93305")]
# Said in a sentence: in the texter's language (a clear sentence in the other one switches the language).
IN_A_SENTENCE = {"en": [("I live in Arvin", "Arvin"), ("im in bakersfield ca", "Bakersfield")],
                 "es": [("estoy en Délano", "Delano"), ("cerca de lamont porfa", "Lamont")]}


@pytest.mark.parametrize("lang, said, place", [(lang, *pair) for lang in LANGS for pair in TOWNS + IN_A_SENTENCE[lang]])
def test_towns_and_communities_are_accepted_as_well_as_zip_codes(lang, said, place):
    chat, text = find_help(lang, "shelter", said)
    assert chat.conv.slots["zip"] == place
    assert text.splitlines()[0] == NEAR[lang].format(place)
    assert TRAFFICKING in text


@pytest.mark.parametrize("lang", LANGS)
def test_arvin_by_name_lists_what_is_near_arvin(lang):
    _, by_name = find_help(lang, "food", "Arvin")
    _, by_zip = find_help(lang, "food", "93203")  # Arvin's one street ZIP
    assert by_name.splitlines()[1:] == by_zip.splitlines()[1:]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("said", ["kern county", "my zip is secret", "9330", "933051", "00000", "east side"])
def test_what_names_no_place_is_asked_again(lang, said):
    chat = Chat()
    for text in (HELLO[lang], "1", "5", "1"):
        chat.send(text)
    step = chat.send(said)
    assert chat.conv.state == "ask_zip" and step.keys[-1] == "ask_zip", step.keys
    assert "zip" not in chat.conv.slots


# -- listings past their review date -------------------------------------------------------------------


def directory_verified(tmp_path, on: date) -> ResourceDirectory:
    """The shipped directory as if every entry had been verified on `on` (a test copy: nothing is verified)."""
    text = re.sub(r"verified_on: \S+", f"verified_on: {on.isoformat()}", DEFAULT_PATH.read_text(encoding="utf-8"))
    path = tmp_path / "resources.yaml"
    path.write_text(text, encoding="utf-8")
    return ResourceDirectory.load(path)


def engine_with(directory: ResourceDirectory) -> FlowEngine:
    return FlowEngine(ENGINE.flow, ENGINE.catalog, ENGINE.triage, directory, NAME, intents=ENGINE.intents)


STALE = {"en": "Details may be out of date", "es": "Puede haber cambios"}


@pytest.mark.parametrize("lang", LANGS)
def test_listings_past_review_bring_the_national_hotline_and_say_so(lang):
    # The shipped listings are all past their review date (the check says which): food has no national
    # line of its own, so the trafficking hotline is there only because of that.
    assert ENGINE.resources.get("capk-food-bank").past_review(date.today())
    _, text = find_help(lang, "food", "93305")
    assert TRAFFICKING in text and STALE[lang] in text
    assert "CAPK Food Bank" in text


@pytest.mark.parametrize("lang", LANGS)
def test_listings_within_their_review_date_do_not(lang, tmp_path):
    fresh = engine_with(directory_verified(tmp_path, date.today()))
    _, text = find_help(lang, "food", "93305", engine=fresh)
    assert TRAFFICKING not in text and STALE[lang] not in text
    assert "CAPK Food Bank" in text and "2-1-1" in text
    # A shelter list has the hotline whatever the dates.
    _, shelters = find_help(lang, "shelter", "93305", engine=fresh)
    assert TRAFFICKING in shelters and STALE[lang] not in shelters
    # So does a list with nothing near: Ridgecrest's food, 76 miles away.
    _, far = find_help(lang, "food", "93555", engine=fresh)
    assert TRAFFICKING in far and STALE[lang] not in far and miles_in(far) == [76]


def test_every_listing_keeps_its_last_verified_date():
    # What the sources say, never moved to pretend a check (see REVIEW ROUTINE in flows/resources.yaml).
    dates = {r.id: r.verified_on for r in ENGINE.resources}
    assert dates["open-door-network-delano"] == date(2023, 10, 19)
    assert dates["mission-at-kern-county"] == date(2019, 12, 24)
    assert dates["capk-food-bank"] == date(2019, 12, 20)
    assert dates["kern-behavioral-health"] == date(2024, 4, 24)
    assert dates["national-human-trafficking-hotline"] is None


def test_the_check_fails_on_listings_past_review_and_warn_only_does_not(tmp_path, capsys):
    stale = DEFAULT_PATH
    fresh = tmp_path / "fresh.yaml"
    directory_verified(tmp_path, date.today()).path.rename(fresh)
    broken = tmp_path / "broken.yaml"
    broken.write_text(fresh.read_text(encoding="utf-8").replace("\n  source:", "\n  sauce:", 1), encoding="utf-8")
    assert _main(["x", str(stale)]) == 1
    assert "13 past review" in capsys.readouterr().out
    assert _main(["x", "--warn-only", str(stale)]) == 0
    assert _main(["x", str(fresh)]) == 0
    assert "0 past review" in capsys.readouterr().out
    assert _main(["x", "--warn-only", str(broken)]) == 1  # an error is never only a warning


# -- Spanish in Spanish, English in SMS-sized GSM-7 ------------------------------------------------------

PLACES = ("93305", "93215", "93555", "93240", "93268", "93501", "Arvin", "Pine Mountain Club", "10001")
AGES = (None, 12, 15, 17, 25)


def every_list(lang: str):
    """(what, list, the whole SMS) for every place, kind of help and age: the list and the question sent after
    it in the same SMS (check_in_offer by text, "Check on you later? …"; after_info on the web chat)."""
    for place in PLACES:
        for category in CATEGORY:
            for age in AGES:
                slots = {"zip": place, "category": category} | ({"age": age} if age else {})
                conv = Conversation(id="c-fit", channel="sms", address="+16615550100", lang=lang, slots=slots)
                text = ENGINE.say(conv, "resources_list")
                yield f"{place} {category} {age}", text, text + "\n\n" + ENGINE.say(conv, "check_in_offer")


ENGLISH_IN_SPANISH = re.compile(r"\b(call|text|to|hours?|hotline|miles?|mi|Near|Mon|Fri|ages|and their)\b|START to|24-hour")


def test_spanish_resource_lines_are_in_spanish():
    for what, text, _ in every_list("es"):
        # Names are names ("National Runaway Safeline"); everything else is Spanish.
        words = re.sub(r"^- [^:]*:", "-", text, flags=re.M)
        words = re.sub(r"^- (The Mission at Kern County|Women's Center High Desert)\b", "-", words, flags=re.M)
        words = re.sub(r"\d+ (E California Ave|East 21st St\.|Washington Street|19th St\.|Main Street|S\. China Lake Blvd\.)"
                       r"|18th and L streets|Delano Family Justice Center|a\.m\.|p\.m\.", "", words)
        assert not ENGLISH_IN_SPANISH.search(words), (what, ENGLISH_IN_SPANISH.search(words), text)
        assert not re.search(r"\b1 millas\b", text), (what, text)


@pytest.mark.parametrize("lang", LANGS)
def test_a_mile_is_a_mile(lang):
    _, text = find_help(lang, "shelter", "93305")
    assert line_with(text, "The Mission").endswith("1 mi" if lang == "en" else "a 1 milla")
    _, text = find_help(lang, "shelter", "93215")
    assert line_with(text, "The Mission").endswith("30 mi" if lang == "en" else "a 30 millas")


@pytest.mark.parametrize("lang", LANGS)
def test_text_with_a_keyword_reads_in_the_texters_language(lang):
    _, text = find_help(lang, "shelter", "93305")
    line = line_with(text, "1-800-799-7233")
    assert ("text START to 88788" if lang == "en" else "manda START al 88788") in line


@pytest.mark.parametrize("lang", LANGS)
def test_every_list_fits_three_sms_segments_in_gsm_7_with_room_for_its_question(lang):
    longest = 0
    for what, text, sms in every_list(lang):
        assert text.strip() and len(text.splitlines()) >= 2, (what, text)  # never empty
        # No en dash, curly quote or á/í/ó/ú: one would make the whole SMS UCS-2 (70 characters a part).
        assert sms_segments(text) == max(1, -(-len(text) // 153)) or len(text) <= 160, (what, text)
        # Room for the question that goes in the same SMS: REPLY_RESERVE characters, GSM-7.
        assert sms_segments(text + "\n\n" + "x" * REPLY_RESERVE) <= 3, (what, text)
        longest = max(longest, len(text))
    assert longest > 153 * 2 - REPLY_RESERVE  # the budget is used, not a list cut to nothing


@pytest.mark.parametrize("lang", LANGS)
def test_the_question_after_a_list_fits_the_room_left_for_it(lang):
    # after_info (its wording belongs to the catalog's writers) must stay GSM-7 and within REPLY_RESERVE for
    # the whole SMS to be 3 segments.
    for key in ("after_info", "check_in_offer"):
        question = ENGINE.say(Conversation(id="c", channel="sms", address="+1", lang=lang), key)
        assert len(question) + 2 <= REPLY_RESERVE and sms_segments(question) == 1, key
    for what, _, sms in every_list(lang):
        assert sms_segments(sms) <= 3, (what, sms)


def test_sms_segments_counts_as_carriers_do():
    assert sms_segments("a" * 160) == 1 and sms_segments("a" * 161) == 2 and sms_segments("a" * 459) == 3
    assert sms_segments("Mon–Fri") == 1 and sms_segments("–" + "a" * 70) == 2  # an en dash: UCS-2
    assert sms_segments("años, ¿qué?") == 1 and sms_segments("é" * 160) == 1  # é ñ ¿ are GSM-7
    assert sms_segments("í" * 71) == 2
