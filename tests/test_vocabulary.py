"""One vocabulary (buendnis_common.vocabulary): the policy, the services and the web front end
use the same roles, code lists, right-to-left languages and words for codes."""
from __future__ import annotations

import pytest

from buendnis_common import messages, policy, vocabulary


def test_every_code_of_every_labelled_kind_has_a_german_and_an_english_word():
    lists = {"need_category": vocabulary.NEED_CATEGORIES,
             "need_status": vocabulary.NEED_STATUSES,
             "residence_status": vocabulary.RESIDENCE_STATUSES,
             "data_category": vocabulary.DATA_CATEGORIES,
             "referral_status": vocabulary.REFERRAL_STATUSES,
             "appointment_status": vocabulary.APPOINTMENT_STATUSES,
             "mode": vocabulary.OFFER_MODES}
    assert set(lists) == set(vocabulary.LABEL_KINDS)
    for language in messages.LANGUAGES:
        known = messages.known_codes(language)
        missing = [f"label.{kind}.{code}" for kind, codes in lists.items() for code in codes
                   if f"label.{kind}.{code}" not in known]
        assert not missing, (language, missing)


def test_a_code_has_one_word_for_the_notifications_and_the_web():
    from notifications.inbox import sending
    from web import i18n

    assert not hasattr(sending, "NEED_NAMES") and not hasattr(sending, "STATUS_NAMES")
    assert "need_category" not in i18n.LABELS and "referral_status" not in i18n.LABELS
    assert vocabulary.label("need_category", "vocational_training", "de") == "Berufsausbildung"
    assert vocabulary.label("referral_status", "rejected", "en") == "declined"
    assert vocabulary.label("referral_status", "no-such-status", "de") == "no-such-status"


def test_right_to_left_languages_are_one_list_everywhere():
    from notifications.messages import texts
    from web import i18n

    assert texts.RTL_LANGUAGES is vocabulary.RTL_LANGUAGES
    assert i18n.RTL_LANGUAGES is vocabulary.RTL_LANGUAGES
    assert {"ar", "fa", "ps", "ku", "ur", "ckb"} <= vocabulary.RTL_LANGUAGES
    assert vocabulary.is_rtl("ps") and vocabulary.is_rtl("fa-AF") and not vocabulary.is_rtl("uk")


@pytest.mark.parametrize("module", ["intake.participant.models", "referrals.codes"])
def test_the_services_validate_against_the_shared_code_lists(module):
    import importlib

    loaded = importlib.import_module(module)
    for name in ("NEED_CATEGORIES", "RESIDENCE_STATUSES", "NEED_STATUSES", "MODES"):
        if hasattr(loaded, name):
            assert getattr(loaded, name) is getattr(vocabulary, name), name


def test_the_policy_knows_exactly_the_vocabulary_s_roles():
    assert policy.EVERYONE == frozenset(vocabulary.ROLES)
    used = set().union(*(roles for _, table in policy.POLICY for roles in table.values()))
    assert used == set(vocabulary.ROLES)
