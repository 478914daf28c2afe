"""Deliver one planned contact to Freshdesk: create, update on 409, re-read the key on 401, drop
optional fields on `invalid_field`. Returns a `Result`; sends nothing to SQS."""

from __future__ import annotations

import math

from .backoff import retry_after_seconds
from .credentials import CredentialStore
from .errors import ConfigError, SecretUnavailable
from .model import Answer, Outcome, PlannedContact, Result
from .outcomes import (
    Action,
    Verdict,
    judge_create,
    judge_phone_lookup,
    judge_read,
    judge_update,
    merge_tags,
    without_fields,
)
from .pacing import RateBudget
from .ports import Freshdesk
from .timing import Deadline


def deliver_contact(
    planned: PlannedContact,
    *,
    freshdesk: Freshdesk,
    credentials: CredentialStore,
    rate: RateBudget,
    deadline: Deadline | None = None,
) -> Result:
    message_id = planned.message_id
    waiting = rate.rate_limited_for()
    if waiting > 0:
        return Result(message_id, Outcome.QUEUED, reason="rate_limited", retry_after=math.ceil(waiting))
    creds = credentials.get()
    contact = dict(planned.contact)
    contact_id: int | None = None
    phone_only = "phone" in contact and not any(k in contact for k in ("email", "unique_external_id"))
    step = "lookup" if phone_only else "create"
    reauthenticated = False
    dropped: tuple[str, ...] = ()
    while True:
        answer: Answer
        verdict: Verdict
        if step == "lookup":
            answer = freshdesk.find_contacts_by_phone(creds, contact["phone"], deadline=deadline)
            rate.observe(answer)
            verdict = judge_phone_lookup(planned.operation, answer)
            if verdict.action is Action.CREATE:
                step = "create"
                continue
        elif step == "create":
            answer = freshdesk.create_contact(creds, contact, deadline=deadline)
            rate.observe(answer)
            verdict = judge_create(planned.operation, answer, contact)
        elif step == "read":
            assert contact_id is not None
            answer = freshdesk.get_contact(creds, contact_id, deadline=deadline)
            rate.observe(answer)
            verdict = judge_read(answer)
            if verdict.action is Action.DONE:
                existing = answer.body.get("tags") if isinstance(answer.body, dict) else None
                contact["tags"] = merge_tags(existing, contact["tags"])
                step = "update"
                continue
        else:
            assert contact_id is not None
            answer = freshdesk.update_contact(creds, contact_id, contact, deadline=deadline)
            rate.observe(answer)
            verdict = judge_update(answer, contact)

        match verdict.action:
            case Action.DONE:
                assert verdict.outcome is not None
                return Result(
                    message_id,
                    verdict.outcome,
                    answer.status,
                    contact_id=verdict.contact_id or contact_id,
                    freshdesk_body=answer.body if verdict.outcome is Outcome.CONFLICT else None,
                    dropped_fields=dropped,
                    warning=verdict.warning,
                    attempted=True,
                )
            case Action.UPDATE:
                contact_id = verdict.contact_id
                step = "read" if contact.get("tags") else "update"
            case Action.REAUTH if not reauthenticated:
                reauthenticated = True
                try:
                    creds = credentials.refresh(creds)
                except (ConfigError, SecretUnavailable) as exc:
                    return Result(
                        message_id,
                        Outcome.QUEUED,
                        answer.status,
                        reason="secret_unavailable",
                        error=str(exc),
                        attempted=True,
                    )
            case Action.RESEND_WITHOUT if not dropped:
                dropped = verdict.fields
                contact = without_fields(contact, dropped)
            case Action.RETRY:
                return Result(
                    message_id,
                    Outcome.QUEUED,
                    answer.status,
                    reason="rate_limited" if answer.status == 429 else "freshdesk_unavailable",
                    freshdesk_body=answer.body,
                    retry_after=retry_after_seconds(answer),
                    error=answer.error,
                    dropped_fields=dropped,
                    attempted=True,
                )
            case _:
                return Result(
                    message_id,
                    Outcome.REJECTED,
                    answer.status,
                    reason=f"freshdesk_{answer.status}",
                    freshdesk_body=answer.body,
                    dropped_fields=dropped,
                    attempted=True,
                )
