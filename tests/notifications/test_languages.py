"""The participant reads the message in their language — German, English, Arabic, Farsi,
Ukrainian, Turkish or Russian — with the time in Europe/Berlin written as that language writes
it; Arabic and Farsi right to left; anything else in German."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from notifications.messages.render import FSI, PDI, RLM, language_for, render
from notifications.messages.texts import LANGUAGES, TEXTS

# Monday, 3 March 2031, 10:00 in Berlin (09:00 UTC).
START = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)
ORG = "Caritasverband Leverkusen"

EXPECTED = {
    # language: (the date as Babel writes it for Berlin time, the word for "by phone")
    "de": ("Montag, 3. März 2031, 10:00", "telefonisch"),
    "en": ("Monday, March 3, 2031, 10:00\u202fAM", "by phone"),
    "ar": ("الاثنين، 3 مارس 2031، 10:00 ص", "عبر الهاتف"),
    "fa": ("دوشنبه 3 مارس 2031، ساعت 10:00", "تلفنی"),
    "uk": ("понеділок, 3 березня 2031\u202fр., 10:00", "телефоном"),
    "tr": ("3 Mart 2031 Pazartesi 10:00", "telefonla"),
    "ru": ("понедельник, 3 марта 2031\u202fг., 10:00", "по телефону"),
}


def test_all_seven_languages_are_written_and_complete():
    assert set(LANGUAGES) == set(EXPECTED)
    for language, texts in TEXTS.items():
        assert set(texts) == set(TEXTS["de"]), language


@pytest.mark.parametrize("language", sorted(EXPECTED))
@pytest.mark.parametrize("kind", ["reminder", "moved", "cancellation"])
def test_each_language_renders_every_message(language, kind):
    when, by_phone = EXPECTED[language]
    message = render(kind, language=language, name="Samira", org_name=ORG, start=START,
                     mode="phone")
    assert message.language == language
    for text in (message.subject, message.text, message.sms):
        assert when in text.replace(FSI, "").replace(PDI, "")
    for text in (message.text, message.sms):
        assert ORG in text
    if kind != "cancellation":  # how it takes place matters only if it takes place
        assert by_phone in message.sms and by_phone in message.text
    assert "Samira" in message.text and "Samira" not in message.sms  # no names by SMS
    assert ORG in message.summary
    assert f'lang="{language}"' in message.html


@pytest.mark.parametrize("language", ["ar", "fa"])
def test_arabic_and_farsi_read_right_to_left(language):
    message = render("reminder", language=language, name="Samira", org_name=ORG, start=START,
                     mode="in_person")
    assert message.rtl
    for line in message.text.split("\n"):
        assert line == "" or line.startswith(RLM), repr(line)
    assert message.subject.startswith(RLM) and message.sms.startswith(RLM)
    # Latin and numbers inside are isolated, so that they do not turn the sentence around.
    assert f"{FSI}{ORG}{PDI}" in message.text and f"{FSI}Samira{PDI}" in message.text
    assert 'dir="rtl"' in message.html and f"<bdi>{ORG}</bdi>" in message.html


@pytest.mark.parametrize("language", ["de", "en", "uk", "tr", "ru"])
def test_left_to_right_languages_carry_no_direction_marks(language):
    message = render("reminder", language=language, name="Samira", org_name=ORG, start=START,
                     mode="video")
    assert not message.rtl
    assert RLM not in message.text + message.sms and FSI not in message.sms
    assert 'dir="ltr"' in message.html


def test_an_arabic_name_in_a_german_message_is_isolated():
    message = render("reminder", language="de", name="سميرة", org_name=ORG, start=START,
                     mode="video")
    assert f"{FSI}سميرة{PDI}" in message.text


def test_summer_time_is_berlin_time():
    summer = datetime(2031, 7, 1, 8, 0, tzinfo=UTC)
    message = render("reminder", language="de", name=None, org_name=ORG, start=summer,
                     mode="in_person")
    assert "Dienstag, 1. Juli 2031, 10:00" in message.sms
    assert not message.text.startswith("Hallo")  # no name, no greeting


@pytest.mark.parametrize(("preferred", "spoken", "chosen"), [
    ("ar", ["de"], "ar"), ("FA", [], "fa"), ("fr", [], "de"), (None, None, "de"),
    ("ps", ["fa", "de"], "fa"), ("so", ["ti"], "de"),
])
def test_the_language_falls_back_to_one_they_speak_then_german(preferred, spoken, chosen):
    assert language_for(preferred, spoken) == chosen


def test_an_unknown_language_renders_german():
    message = render("cancellation", language="fr", name="Samira", org_name=ORG, start=START,
                     mode="phone")
    assert message.language == "de" and "abgesagt" in message.subject
