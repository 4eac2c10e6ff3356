"""Inbox use cases. Data access never commits; the view or the event handler owns the
transaction."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from buendnis_common.auth import Principal
from buendnis_common.errors import NotFound
from notifications.delivery.models import SCHEDULED
from notifications.inbox.models import (
    CASE_ROLES,
    KINDS,
    EmailCopy,
    EmailPreference,
    InboxEntry,
    InboxRead,
    StaffMember,
)

# How often a staff member's row is refreshed from their token when nothing changed.
_STAFF_REFRESH = timedelta(hours=12)


def post(*, session: Session, kind: str, recipient_org: str, dedupe_key: str, now: datetime,
         recipient_user: str | None = None, referral_id: uuid.UUID | None = None,
         appointment_id: uuid.UUID | None = None, participant_id: uuid.UUID | None = None,
         reminder_id: uuid.UUID | None = None, data: dict[str, Any] | None = None,
         ) -> InboxEntry | None:
    """Add an entry for one user (``recipient_user``, a token's ``sub``) or for every case
    worker of ``recipient_org``, and an e-mail copy for each of them who has not switched that
    kind off. ``None`` if an entry with ``dedupe_key`` exists already."""
    return post_many(session=session, now=now, entries=[dict(
        kind=kind, recipient_org=recipient_org, dedupe_key=dedupe_key,
        recipient_user=recipient_user, referral_id=referral_id, appointment_id=appointment_id,
        participant_id=participant_id, reminder_id=reminder_id, data=data,
    )])[0]


def post_many(*, session: Session, now: datetime, entries: list[dict[str, Any]],
              ) -> list[InboxEntry | None]:
    """``post`` for many entries in a few statements whatever their number (one query for the
    keys already posted, one for the recipients, one for their switches, the inserts in
    batches): a burst of reminders to case workers costs no round trip per entry. Each item
    of the result is the new entry, or ``None`` where its ``dedupe_key`` was posted before
    (or earlier in ``entries``)."""
    for fields in entries:
        assert fields["kind"] in KINDS, fields["kind"]
    keys = [fields["dedupe_key"][:120] for fields in entries]
    taken = set(session.scalars(select(InboxEntry.dedupe_key)
                                .where(InboxEntry.dedupe_key.in_(set(keys)))))
    made: list[InboxEntry | None] = []
    for key, fields in zip(keys, entries, strict=True):
        if key in taken:
            made.append(None)
            continue
        taken.add(key)
        made.append(InboxEntry(id=uuid.uuid4(), created_at=now,
                               **{**fields, "dedupe_key": key, "data": fields.get("data") or {}}))
    new = [entry for entry in made if entry is not None]
    # The entries first: a copy refers to its entry, and nothing tells the session that order.
    session.add_all(new)
    session.flush()
    session.add_all(
        EmailCopy(id=uuid.uuid4(), entry_id=entry.id, user_sub=sub,
                  idempotency_key=f"copy-{entry.id.hex}-{uuid.uuid5(entry.id, sub).hex}",
                  status=SCHEDULED, due_at=now, attempts=0, created_at=now, updated_at=now)
        for entry, subs in zip(new, _copy_recipients(session=session, entries=new), strict=True)
        for sub in subs
    )
    return made


def _copy_recipients(*, session: Session, entries: list[InboxEntry]) -> list[list[str]]:
    """Per entry, who gets it by e-mail: the user it is addressed to, or the organisation's
    case workers, with an address and the kind not switched off."""
    users = {entry.recipient_user for entry in entries if entry.recipient_user is not None}
    orgs = {entry.recipient_org for entry in entries if entry.recipient_user is None}
    if not users and not orgs:
        return [[] for _entry in entries]
    conditions = []
    if users:
        conditions.append(StaffMember.sub.in_(users))
    if orgs:
        conditions.append(StaffMember.org_alias.in_(orgs))
    members = [m for m in session.scalars(select(StaffMember).where(or_(*conditions)))
               if m.email]
    by_sub = {m.sub: m for m in members}
    by_org: dict[str | None, list[str]] = {}
    for member in members:
        if set(member.roles or []) & set(CASE_ROLES):
            by_org.setdefault(member.org_alias, []).append(member.sub)
    switched_off = {(sub, kind) for sub, kind in session.execute(
        select(EmailPreference.user_sub, EmailPreference.kind).where(
            EmailPreference.user_sub.in_(list(by_sub)),
            EmailPreference.kind.in_({entry.kind for entry in entries}),
            EmailPreference.email.is_(False))
    )} if by_sub else set()
    recipients = []
    for entry in entries:
        if entry.recipient_user is not None:
            subs = [entry.recipient_user] if entry.recipient_user in by_sub else []
        else:
            subs = by_org.get(entry.recipient_org, [])
        recipients.append([sub for sub in subs if (sub, entry.kind) not in switched_off])
    return recipients


def _visible(principal: Principal):
    mine = InboxEntry.recipient_user == principal.subject
    if principal.has_role(*CASE_ROLES) and principal.org_alias:
        return or_(mine, and_(InboxEntry.recipient_user.is_(None),
                              InboxEntry.recipient_org == principal.org_alias))
    return mine


def _read_by(principal: Principal):
    read = aliased(InboxRead)  # the listing joins InboxRead itself
    return exists().where(read.entry_id == InboxEntry.id, read.user_sub == principal.subject)


def list_for(*, session: Session, principal: Principal, unread: bool | None, kind: str | None,
             offset: int, limit: int) -> tuple[list[tuple[InboxEntry, datetime | None]], int]:
    """The caller's entries, newest first, each with when the caller read it."""
    conditions = [_visible(principal)]
    if unread is True:
        conditions.append(~_read_by(principal))
    elif unread is False:
        conditions.append(_read_by(principal))
    if kind:
        conditions.append(InboxEntry.kind == kind)
    total = session.scalar(select(func.count()).select_from(InboxEntry).where(*conditions))
    rows = session.execute(
        select(InboxEntry, InboxRead.read_at)
        .outerjoin(InboxRead, and_(InboxRead.entry_id == InboxEntry.id,
                                   InboxRead.user_sub == principal.subject))
        .where(*conditions)
        .order_by(InboxEntry.created_at.desc(), InboxEntry.id.desc())
        .offset(offset).limit(limit)
    ).all()
    return [(entry, read_at) for entry, read_at in rows], total or 0


def mark_read(*, session: Session, principal: Principal, entry_id: uuid.UUID,
              now: datetime) -> tuple[InboxEntry, datetime]:
    entry = session.scalar(select(InboxEntry).where(InboxEntry.id == entry_id,
                                                    _visible(principal)))
    if entry is None:
        raise NotFound("notification.not_found")
    read = session.get(InboxRead, (entry.id, principal.subject))
    if read is None:
        read = InboxRead(entry_id=entry.id, user_sub=principal.subject, read_at=now)
        session.add(read)
    return entry, read.read_at


def preferences(*, session: Session, principal: Principal) -> dict[str, bool]:
    chosen = {
        pref.kind: pref.email for pref in session.scalars(
            select(EmailPreference).where(EmailPreference.user_sub == principal.subject))
    }
    return {kind: chosen.get(kind, True) for kind in KINDS}


def set_preferences(*, session: Session, principal: Principal,
                    email_copies: dict[str, bool]) -> dict[str, bool]:
    """Replace the caller's switches: a kind not named is on."""
    existing = {
        pref.kind: pref for pref in session.scalars(
            select(EmailPreference).where(EmailPreference.user_sub == principal.subject))
    }
    for kind in KINDS:
        wanted = email_copies.get(kind, True)
        pref = existing.get(kind)
        if wanted and pref is not None:
            session.delete(pref)
        elif not wanted and pref is None:
            session.add(EmailPreference(user_sub=principal.subject, kind=kind, email=False))
        elif not wanted:
            pref.email = False
    session.flush()
    return preferences(session=session, principal=principal)


def remember(*, session: Session, principal: Principal, email: str | None,
             now: datetime) -> bool:
    """Keep the caller's address, organisation and roles as their token says, for e-mail
    copies. ``True`` if anything was written."""
    if principal.is_service or not principal.subject:
        return False
    roles = sorted(principal.roles)
    member = session.get(StaffMember, principal.subject)
    if member is None:
        try:
            with session.begin_nested():
                session.add(StaffMember(sub=principal.subject, username=principal.username,
                                        email=email, org_alias=principal.org_alias,
                                        roles=roles, last_seen_at=now))
                session.flush()
        except IntegrityError:
            # Another request of the same person (two tabs, a page's parallel calls) stored
            # them a moment ago from the same token: their read goes on, not a 409.
            return False
        return True
    same = (member.username, member.email, member.org_alias, sorted(member.roles or [])) == (
        principal.username, email, principal.org_alias, roles)
    if same and now - member.last_seen_at < _STAFF_REFRESH:
        return False
    member.username, member.email = principal.username, email
    member.org_alias, member.roles, member.last_seen_at = principal.org_alias, roles, now
    return True


def of_participant(*, session: Session, participant_id: uuid.UUID,
                   owner_org: str) -> list[InboxEntry]:
    """Entries about the participant addressed within the owning organisation."""
    return list(session.scalars(
        select(InboxEntry)
        .where(InboxEntry.participant_id == participant_id,
               InboxEntry.recipient_org == owner_org)
        .order_by(InboxEntry.created_at)
    ))
