"""Deliver one planned contact to Freshdesk: create, update on 409, re-read the key on 401,
drop optional fields on `invalid_field`. Returns a `Result`; sends nothing to SQS."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .config import ConfigError
from .credentials import CredentialStore, SecretUnavailable
from .freshdesk import FreshdeskClient
from .outcomes import (Action, Outcome, judge_create, judge_phone_lookup, judge_read, judge_update, merge_tags,
                       retry_after_seconds, without_fields)
from .preset import Delivery


@dataclass(frozen=True)
class Result:
    message_id: str
    outcome: Outcome
    status: int | None = None
    reason: str = ""
    contact_id: int | None = None
    freshdesk_body: Any = None
    retry_after: int | None = None
    error: str = ""
    dropped_fields: tuple[str, ...] = ()
    warning: str = ""
    attempted: bool = False  # whether Freshdesk was called: only then does an attempt count
    duplicate: bool = False  # answered from the idempotency record, without calling Freshdesk


def deliver_contact(delivery: Delivery, *, client: FreshdeskClient, credentials: CredentialStore,
                    deadline: float | None = None) -> Result:
    message_id = delivery.message_id
    waiting = client.rate_limited_for()
    if waiting > 0:
        return Result(message_id, Outcome.QUEUED, reason="rate_limited", retry_after=math.ceil(waiting))
    creds = credentials.get()
    contact = dict(delivery.contact)
    contact_id: int | None = None
    phone_only = "phone" in contact and not any(k in contact for k in ("email", "unique_external_id"))
    step = "lookup" if phone_only else "create"
    reauthenticated = False
    dropped: tuple[str, ...] = ()
    while True:
        if step == "lookup":
            answer = client.find_contacts_by_phone(creds, contact["phone"], deadline=deadline)
            verdict = judge_phone_lookup(delivery.operation, answer)
            if verdict.action is Action.CREATE:
                step = "create"
                continue
        elif step == "create":
            answer = client.create_contact(creds, contact, deadline=deadline)
            verdict = judge_create(delivery.operation, answer, contact)
        elif step == "read":
            answer = client.get_contact(creds, contact_id, deadline=deadline)
            verdict = judge_read(answer)
            if verdict.action is Action.DONE:
                existing = answer.body.get("tags") if isinstance(answer.body, dict) else None
                contact["tags"] = merge_tags(existing, contact["tags"])
                step = "update"
                continue
        else:
            answer = client.update_contact(creds, contact_id, contact, deadline=deadline)
            verdict = judge_update(answer, contact)

        match verdict.action:
            case Action.DONE:
                return Result(message_id, verdict.outcome, answer.status,
                              contact_id=verdict.contact_id or contact_id,
                              freshdesk_body=answer.body if verdict.outcome is Outcome.CONFLICT else None,
                              dropped_fields=dropped, warning=verdict.warning, attempted=True)
            case Action.UPDATE:
                contact_id = verdict.contact_id
                step = "read" if contact.get("tags") else "update"
            case Action.REAUTH if not reauthenticated:
                reauthenticated = True
                try:
                    creds = credentials.refresh(creds)
                except (ConfigError, SecretUnavailable) as exc:
                    return Result(message_id, Outcome.QUEUED, answer.status, reason="secret_unavailable",
                                  error=str(exc), attempted=True)
            case Action.RESEND_WITHOUT if not dropped:
                dropped = verdict.fields
                contact = without_fields(contact, dropped)
            case Action.RETRY:
                return Result(message_id, Outcome.QUEUED, answer.status,
                              reason="rate_limited" if answer.status == 429 else "freshdesk_unavailable",
                              freshdesk_body=answer.body, retry_after=retry_after_seconds(answer),
                              error=answer.error, dropped_fields=dropped, attempted=True)
            case _:
                return Result(message_id, Outcome.REJECTED, answer.status, reason=f"freshdesk_{answer.status}",
                              freshdesk_body=answer.body, dropped_fields=dropped, attempted=True)
