"""The rules behind consent, in-process with intake's answers and events stood in for: what a
withdrawal drops, that it takes effect once, and that it beats a referral being made at the
same moment."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from buendnis_common.auth import Principal
from buendnis_common.errors import Conflict
from buendnis_common.settings import SettingsError
from referrals import intake
from referrals.config import ReferralsConfig
from referrals.referral import service
from referrals.referral.models import Referral, WithdrawnConsent

JMD = Principal(subject=str(uuid.uuid4()), username="cw.jmd-leverkusen", client_id="buendnis-cli",
                roles=frozenset({"case_worker"}), org_alias="jmd-leverkusen",
                alliance="leverkusen")
PARTICIPANT = uuid.uuid4()


@pytest.fixture
def intake_says(monkeypatch):
    """Intake's answer to 'may JMD share this participant with …?': a valid consent with the
    given id for whichever recipient is asked about."""
    def answer(consent_id: uuid.UUID):
        def sharing(_runtime, *, participant_id, owner_org, recipient_org):
            return intake.Sharing(
                participant_id=participant_id, pseudonym="TN-7F3K2",
                consent=intake.Consent(id=consent_id, recipient_org=recipient_org,
                                       data_categories=("languages",), purpose="referral"),
                snapshot={"languages": ["fa"], "contact": {"phone": "+491701234567"}},
            )
        monkeypatch.setattr(intake, "sharing", sharing)
    return answer


def make(app, to_org: str = "caritas-leverkusen", need: str = "language_course") -> Referral:
    ctx = app.extensions["referrals"]
    with ctx.runtime.db.transaction() as session:
        return service.create(ctx=ctx, session=session, principal=JMD, data={
            "participant_id": PARTICIPANT, "to_org": to_org, "need_category": need})


def withdrawal(consent_id: uuid.UUID, recipient: str, at: datetime) -> dict:
    return {"id": str(uuid.uuid4()), "type": "consent.withdrawn", "source": "intake",
            "occurred_at": at.isoformat(),
            "data": {"participant_id": str(PARTICIPANT), "owner_org": "jmd-leverkusen",
                     "alliance": "leverkusen", "consent_id": str(consent_id),
                     "recipient_org": recipient}}


def snapshot_of(app, referral_id):
    with app.extensions["buendnis"].db.transaction() as session:
        referral = session.get(Referral, referral_id)
        return referral.snapshot, referral.snapshot_dropped_reason


def test_only_the_consented_categories_are_kept_even_if_intake_sends_more(referrals_app,
                                                                          intake_says):
    intake_says(uuid.uuid4())
    referral = make(referrals_app)
    assert snapshot_of(referrals_app, referral.id) == ({"languages": ["fa"]}, None)


def test_a_withdrawal_drops_the_snapshots_for_that_recipient_once(referrals_app, intake_says):
    consent_id = uuid.uuid4()
    intake_says(consent_id)
    to_caritas = make(referrals_app)
    to_caritas_again = make(referrals_app, need="internship")
    to_awo = make(referrals_app, to_org="awo-leverkusen")
    event = withdrawal(consent_id, "caritas-leverkusen", datetime.now(UTC))
    consumer = referrals_app.extensions["buendnis"].consumer

    assert consumer.dispatch(event) is True
    assert consumer.dispatch(event) is False  # redelivered: no second effect

    for referral in (to_caritas, to_caritas_again):
        assert snapshot_of(referrals_app, referral.id) == (None, "consent_withdrawn")
    assert snapshot_of(referrals_app, to_awo.id) == ({"languages": ["fa"]}, None)


def test_a_referral_made_later_under_a_new_consent_keeps_its_snapshot(referrals_app,
                                                                      intake_says):
    old, new = uuid.uuid4(), uuid.uuid4()
    intake_says(old)
    before = make(referrals_app)
    withdrawn_at = datetime.now(UTC)
    intake_says(new)
    later = make(referrals_app, need="internship")
    # The withdrawal of the old consent arrives only now (the queue was slow).
    referrals_app.extensions["buendnis"].consumer.dispatch(
        withdrawal(old, "caritas-leverkusen", withdrawn_at))
    assert snapshot_of(referrals_app, before.id) == (None, "consent_withdrawn")
    assert snapshot_of(referrals_app, later.id) == ({"languages": ["fa"]}, None)


def test_a_withdrawal_beats_a_referral_made_at_the_same_moment(referrals_app, intake_says):
    consent_id = uuid.uuid4()
    referrals_app.extensions["buendnis"].consumer.dispatch(
        withdrawal(consent_id, "caritas-leverkusen", datetime.now(UTC) - timedelta(seconds=1)))
    with referrals_app.extensions["buendnis"].db.transaction() as session:
        assert session.get(WithdrawnConsent, consent_id) is not None
    # Intake answered a moment before the withdrawal was committed there.
    intake_says(consent_id)
    with pytest.raises(Conflict) as refused:
        make(referrals_app)
    assert "consent" in refused.value.errors


def test_the_response_time_is_read_per_alliance_from_the_environment(monkeypatch):
    monkeypatch.setenv("REFERRAL_RESPONSE_DAYS", "4")
    monkeypatch.setenv("REFERRAL_RESPONSE_DAYS_BY_ALLIANCE", "leverkusen=3, rhein-kreis-neuss=7")
    config = ReferralsConfig.from_env()
    assert config.response_days_for("leverkusen") == 3
    assert config.response_days_for("rhein-kreis-neuss") == 7
    assert config.response_days_for("elsewhere") == 4
    monkeypatch.setenv("REFERRAL_RESPONSE_DAYS_BY_ALLIANCE", "leverkusen:3")
    with pytest.raises(SettingsError, match="REFERRAL_RESPONSE_DAYS_BY_ALLIANCE"):
        ReferralsConfig.from_env()
    monkeypatch.setenv("REFERRAL_RESPONSE_DAYS_BY_ALLIANCE", "")
    monkeypatch.setenv("REFERRAL_RESPONSE_DAYS", "0")
    with pytest.raises(SettingsError, match="REFERRAL_RESPONSE_DAYS"):
        ReferralsConfig.from_env()
