"""A referral as a FHIR R4 Bundle, for a partner's case-management system to read its state.

The shape follows HL7's closed-loop referral guides (the SDOH Clinical Care / Gravity
"TaskForReferralManagement"): a ``Task`` whose ``focus`` is the ``ServiceRequest`` (the referral
for a need category), ``for`` the ``Patient``, ``requester`` the sending and ``owner`` the
receiving organisation; the ``Consent`` under which data went to the receiver; the
``Appointment``s booked on the referral. Bundle type ``collection``; the resources point at each
other by their ``urn:uuid:`` full URLs.

The referral's statuses already are the guide's Task statuses (its value set "Referral Task
Status" is FHIR's TaskStatus without ``ready`` and ``received``), so ``Task.status`` is the
referral's status as it is; ``ServiceRequest.status`` follows from it (``STATUS_MAPPING``).

Who the person is stays out: the ``Patient`` carries only the pseudonym as its identifier, no
name, birth date, address or contact, and its id is derived from the referral, not the
participant's record. No free text either (the sender's note, reasons, messages, appointment
places and notes may name people); who did what is said by organisation, never by user.
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from referrals.appointment.models import Appointment
from referrals.referral import models as m
from referrals.referral.models import Referral

# Our systems: URNs, so that nothing depends on where the platform is hosted.
PSEUDONYM_SYSTEM = "urn:buendnis:pseudonym"
ORGANIZATION_SYSTEM = "urn:buendnis:organization"
REFERRAL_SYSTEM = "urn:buendnis:referral"
NEED_CATEGORY_SYSTEM = "urn:buendnis:need-category"
DATA_CATEGORY_SYSTEM = "urn:buendnis:data-category"
MODE_SYSTEM = "urn:buendnis:appointment-mode"

TASK_PROFILE = ("http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/"
                "SDOHCC-TaskForReferralManagement")

# Referral status → (Task.status, ServiceRequest.status). The Task carries the referral's own
# status (the same codes); the ServiceRequest is the sender's order: active while the referral
# is open, completed when it was completed, revoked when it ended otherwise (a new referral is
# a new ServiceRequest).
STATUS_MAPPING: dict[str, tuple[str, str]] = {
    m.REQUESTED: ("requested", "active"),
    m.ACCEPTED: ("accepted", "active"),
    m.IN_PROGRESS: ("in-progress", "active"),
    m.ON_HOLD: ("on-hold", "active"),
    m.COMPLETED: ("completed", "completed"),
    m.REJECTED: ("rejected", "revoked"),
    m.CANCELLED: ("cancelled", "revoked"),
    m.FAILED: ("failed", "revoked"),
}

MEDIA_TYPE = "application/fhir+json"


def _urn(referral: Referral, part: str) -> str:
    return f"urn:uuid:{uuid.uuid5(referral.id, part)}"


def _id(urn: str) -> str:
    return urn.removeprefix("urn:uuid:")


def _instant(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


def _organization(alias: str) -> dict:
    return {"type": "Organization",
            "identifier": {"system": ORGANIZATION_SYSTEM, "value": alias}}


def _consent_status(referral: Referral) -> str:
    if referral.snapshot_dropped_reason in (m.CONSENT_WITHDRAWN, m.CONSENT_EXPIRED,
                                            m.PARTICIPANT_ERASED):
        return "inactive"
    return "active"


def bundle(referral: Referral, appointments: list[Appointment]) -> dict[str, Any]:
    """The referral, its patient (pseudonym only), consent and appointments as a Bundle."""
    task_urn = _urn(referral, "task")
    request_urn = _urn(referral, "service-request")
    patient_urn = _urn(referral, "patient")
    consent_urn = _urn(referral, "consent")
    task_status, request_status = STATUS_MAPPING[referral.status]
    identifier = [{"system": REFERRAL_SYSTEM, "value": str(referral.id)}]
    need = {"coding": [{"system": NEED_CATEGORY_SYSTEM, "code": referral.need_category}]}

    patient: dict[str, Any] = {"resourceType": "Patient", "id": _id(patient_urn)}
    if referral.pseudonym:
        patient["identifier"] = [{"system": PSEUDONYM_SYSTEM, "value": referral.pseudonym}]

    service_request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": _id(request_urn),
        "identifier": identifier,
        "status": request_status,
        "intent": "order",
        "code": need,
        "subject": {"reference": patient_urn},
        "authoredOn": _instant(referral.created_at),
        "requester": _organization(referral.from_org),
        "performer": [_organization(referral.to_org)],
    }

    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": _id(task_urn),
        "meta": {"profile": [TASK_PROFILE]},
        "identifier": identifier,
        "basedOn": [{"reference": request_urn}],
        "status": task_status,
        "intent": "order",
        "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code",
                             "code": "fulfill"}]},
        "focus": {"reference": request_urn},
        "for": {"reference": patient_urn},
        "authoredOn": _instant(referral.created_at),
        "lastModified": _instant(referral.updated_at),
        "requester": _organization(referral.from_org),
        "owner": _organization(referral.to_org),
        "restriction": {"period": {"end": _instant(referral.due_at)}},
    }
    if referral.closed_at is not None:
        task["executionPeriod"] = {"start": _instant(referral.created_at),
                                   "end": _instant(referral.closed_at)}

    entries = [(task_urn, task), (request_urn, service_request), (patient_urn, patient)]

    if referral.consent_id is not None:
        provision: dict[str, Any] = {
            "type": "permit",
            "actor": [{
                "role": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                    "code": "IRCP"}]},
                "reference": _organization(referral.to_org),
            }],
            "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                         "code": "HDIRECT"}],
        }
        if referral.shared_categories:
            provision["code"] = [
                {"coding": [{"system": DATA_CATEGORY_SYSTEM, "code": category}]}
                for category in referral.shared_categories]
        if referral.consent_valid_until is not None:
            provision["period"] = {"end": referral.consent_valid_until.isoformat()}
        consent = {
            "resourceType": "Consent",
            "id": _id(consent_urn),
            "status": _consent_status(referral),
            "scope": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": patient_urn},
            "organization": [_organization(referral.from_org)],
            "policyRule": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "OPTIN"}]},
            "provision": provision,
        }
        entries.append((consent_urn, consent))
        task["input"] = [{"type": {"text": "consent"},
                          "valueReference": {"reference": consent_urn}}]

    for appointment in appointments:
        urn = f"urn:uuid:{appointment.id}"
        entries.append((urn, {
            "resourceType": "Appointment",
            "id": str(appointment.id),
            "status": appointment.status,
            "appointmentType": {"coding": [{"system": MODE_SYSTEM,
                                            "code": appointment.mode}]},
            "start": _instant(appointment.start),
            "end": _instant(appointment.end),
            "basedOn": [{"reference": request_urn}],
            # R4's Appointment takes no Organization as a participant: the receiver is the
            # ServiceRequest's performer.
            "participant": [{"actor": {"reference": patient_urn}, "status": "accepted"}],
        }))

    return {
        "resourceType": "Bundle",
        "id": _id(_urn(referral, "bundle")),
        "type": "collection",
        "timestamp": _instant(datetime.now(UTC)),
        "entry": [{"fullUrl": urn, "resource": resource} for urn, resource in entries],
    }
