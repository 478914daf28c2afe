"""Bring one planned contact into Freshdesk without damaging what is there, in as few calls as possible.

The order of business for one event:
1. The identity map (when there is one) says whether this person's contact is known. A known person's
   older event is `stale`; a deleted contact stays deleted; a Signed Up of a known person is the
   `conflict` a create would have earned; anything else is one PUT to the known id, or no call at all
   when the event says nothing new (`unchanged`).
2. An unknown person is created; a 409 names the existing contact, which is read (its tags and its
   `unique_external_id`) and updated with only what the event says.
3. A withdrawal of marketing consent removes our tag from the person's contact and changes nothing else.

Whatever the map says is checked by Freshdesk's answer: a 404 on a known id forgets it and creates
afresh, a 405 is a contact a person deleted. A 401 re-reads the secret once; a 400 naming only fields
the contact can do without is sent again without them. Returns a `Result`; sends nothing to SQS.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .companies import CompanySync
from .conversation import Conversation, Finished, throttled
from .credentials import CredentialStore
from .identity import Known, is_older, newer_of
from .mapping import CONSENT_TAG
from .model import Answer, Consent, DropReason, Operation, Outcome, PlannedContact, Result
from .outcomes import (
    Action,
    Verdict,
    existing_contact_ids,
    has_tag,
    has_value,
    judge_create,
    judge_lookup,
    judge_phone_lookup,
    judge_read,
    judge_update,
    merge_tags,
    without_fields,
    without_tag,
    without_targets,
)
from .pacing import RateBudget
from .ports import Freshdesk, IdentityMap
from .timing import Deadline

LOOKUP_ORDER = ("email", "unique_external_id", "phone")
# Another invocation is creating this person: try again once it has had the time to.
PERSON_BUSY_DELAY_SECONDS = 5
# How long a hold on a person lasts if its invocation dies: longer than either function's timeout, so a
# hold never ends while its invocation still writes (a live invocation lets go as soon as it is done).
PERSON_CLAIM_SECONDS = 90


def deliver_contact(
    planned: PlannedContact,
    *,
    freshdesk: Freshdesk,
    credentials: CredentialStore,
    rate: RateBudget,
    deadline: Deadline | None = None,
    identity_map: IdentityMap | None = None,
    create_when_withdrawn: bool = False,
) -> Result:
    """`create_when_withdrawn`: a person who withdrew consent and has no contact yet is created (without
    our tag) rather than dropped; CONSENT_MODE tag_only delivers everyone."""
    waiting = throttled(rate, planned.message_id)
    if waiting is not None:
        return waiting
    sync = ContactSync(
        planned, freshdesk, credentials, rate, deadline, identity_map, create_when_withdrawn=create_when_withdrawn
    )
    try:
        return sync.run()
    except Finished as finished:
        return finished.result


class ContactSync(Conversation):
    """One event's conversation with Freshdesk (and the identity map) about a person's contact."""

    def __init__(
        self,
        planned: PlannedContact,
        freshdesk: Freshdesk,
        credentials: CredentialStore,
        rate: RateBudget,
        deadline: Deadline | None,
        identity_map: IdentityMap | None,
        *,
        create_when_withdrawn: bool = False,
    ) -> None:
        super().__init__(planned.message_id, freshdesk, credentials, rate, deadline, identity_map)
        self.planned = planned
        self.create_when_withdrawn = create_when_withdrawn
        self.person_keys = self.keys.keys_for(planned.contact) if identity_map is not None else []
        self.held_on: IdentityMap | None = None  # the map a hold on this person was taken on, until let go
        self.company: dict[str, Any] | None = None  # {"company_id": n} once the named company is found
        self.resent = False  # a 400 naming only dispensable fields is answered by one re-send, not more

    # -- the flow ----------------------------------------------------------------------------------
    def run(self) -> Result:
        planned = self.planned
        known = self._find()
        if known is not None and is_older(planned.timestamp, known.newest):
            # Also for a person known to have no contact: an older grant must not undo a withdrawal.
            return self._result(Outcome.STALE, contact_id=known.contact_id, reason="older_than_applied")
        if known is not None and known.contact_id is not None and not known.deleted and self._changes_contact():
            # Hold the person while their contact is changed, then read the map again: a concurrent
            # invocation may have applied a newer event meanwhile, and then this one is stale.
            if not self._lock():
                return self._result(Outcome.QUEUED, reason="person_busy", retry_after=PERSON_BUSY_DELAY_SECONDS)
            try:
                known = self._find()
                if known is not None and known.contact_id is not None:
                    return self._known_person(known)
            finally:
                if not self.remembered:
                    self._unlock()
            # The entry went meanwhile (a 404 forgot it), or the map stopped answering: as for a stranger.
        elif known is not None and known.contact_id is not None:
            return self._known_person(known)
        return self._stranger(known)

    def _stranger(self, known: Known | None) -> Result:
        """A person the map does not know, or knows to have no contact. They are held in the map while this
        invocation creates or finds their contact, so a concurrent invocation neither creates them twice
        (Freshdesk allows two contacts with one phone) nor applies an older event over this one: it waits,
        then finds the person known. When nothing is learnt, the map is left as it was found."""
        if not self._claim():
            return self._result(Outcome.QUEUED, reason="person_busy", retry_after=PERSON_BUSY_DELAY_SECONDS)
        try:
            if self.planned.consent is Consent.DENIED and not self.create_when_withdrawn:
                result = self._withdraw_unknown(known)
            elif self.planned.operation is Operation.UPDATE:
                result = self._update_unknown()
            else:
                result = self._create()
        except Finished as finished:
            result = finished.result
        finally:
            if not self.remembered:
                self._let_go(known)
        if not self.remembered and result.outcome is Outcome.CONFLICT and result.contact_id is not None:
            self._remember(Known(result.contact_id))  # a Signed Up of a contact Freshdesk already has
        return result

    def _let_go(self, known: Known | None) -> None:
        """Release the hold, putting back what the map held before (a "no contact" and its newest event),
        through the map the hold was taken on."""
        held_on, self.held_on = self.held_on, None
        if known is not None:
            self._with_map(held_on, lambda people: people.remember(self.person_keys, known), None)
        else:
            self._with_map(held_on, lambda people: people.forget(self.person_keys), None)

    def _changes_contact(self) -> bool:
        """Whether this event may write to a known contact (a Signed Up of a known person does not)."""
        return self.planned.consent is Consent.DENIED or self.planned.operation is not Operation.SIGN_UP

    def _known_person(self, known: Known) -> Result:
        planned = self.planned
        withdrawing = planned.consent is Consent.DENIED
        assert known.contact_id is not None
        if is_older(planned.timestamp, known.newest):
            return self._result(Outcome.STALE, contact_id=known.contact_id, reason="older_than_applied")
        if known.deleted:
            return self._result(Outcome.DELETED_IN_FRESHDESK, contact_id=known.contact_id)
        if withdrawing:
            return self._withdraw(known.contact_id, known)
        if planned.operation is Operation.SIGN_UP:
            # What the create would have answered: the contact exists, and a Signed Up stops there.
            return self._result(Outcome.CONFLICT, status=409, contact_id=known.contact_id, reason="known_contact")
        return self._update(known.contact_id, known)

    def _create(self) -> Result:
        contact = dict(self.planned.contact)
        if "name" not in contact:  # a withdrawal planned without a name is never a create
            return self._result(Outcome.DROPPED, reason=DropReason.MISSING_NAME.value)
        phone_only = "phone" in contact and not any(k in contact for k in ("email", "unique_external_id"))
        return self._create_phone_only(contact) if phone_only else self._create_contact(contact)

    def _create_phone_only(self, contact: dict[str, Any]) -> Result:
        while True:
            answer = self._call(self.freshdesk.find_contacts, "phone", contact["phone"])
            verdict = self._settle(judge_phone_lookup(self.planned.operation, answer), answer, contact)
            if verdict.action is not Action.REAUTH:
                break
        if verdict.action is Action.UPDATE and verdict.contact_id is not None:
            return self._existing(verdict.contact_id)
        if verdict.action is Action.DONE:
            return self._done(verdict, answer)
        return self._create_contact(contact)

    def _create_contact(self, contact: dict[str, Any]) -> Result:
        contact = {**contact, **self._company()}
        while True:
            answer = self._call(self.freshdesk.create_contact, contact)
            verdict = judge_create(self.planned.operation, answer, contact)
            if verdict.action is Action.RESEND_WITHOUT and not self.resent:
                self.resent = True
                self.dropped = (*self.dropped, *verdict.fields)
                contact = without_fields(contact, verdict.fields)
                continue
            verdict = self._settle(verdict, answer, contact)
            if verdict.action is Action.REAUTH:
                continue
            break
        if verdict.action is Action.UPDATE and verdict.contact_id is not None:
            return self._existing(verdict.contact_id)
        if verdict.outcome is Outcome.DELIVERED and verdict.contact_id is not None:
            sent_update = without_fields({**self.planned.update, **self._company()}, self.dropped)
            self._remember(
                Known(
                    verdict.contact_id,
                    newest=self.planned.timestamp,
                    has_tag=has_tag(contact.get("tags"), CONSENT_TAG),
                    external_id=self.keys.mark(contact.get("unique_external_id")),
                    digest=self.keys.digest(without_targets(sent_update, self.planned.if_empty)),
                    filled=tuple(sorted(t for t in self.planned.if_empty if has_value(contact, t))),
                )
            )
        elif verdict.outcome is Outcome.CONFLICT and self.planned.operation is Operation.SIGN_UP:
            ids = _existing_ids(answer)
            if len(ids) == 1:
                self._remember(Known(ids[0]))
        return self._done(verdict, answer)

    def _existing(self, contact_id: int) -> Result:
        """The contact a create found already there: updated, or, for a withdrawal, only our tag taken off."""
        if self.planned.consent is Consent.DENIED:
            return self._withdraw(contact_id, None)
        return self._update(contact_id, None)

    def _update(self, contact_id: int, known: Known | None, current: dict[str, Any] | None = None) -> Result:
        """Send what the event says to an existing contact: `current` is the contact when a lookup just
        returned it. `if_empty` fields go only where the contact has no value: the map remembers which
        ones it has, and the contact is read when the map cannot say."""
        planned = self.planned
        body = {**planned.update, **self._company()}
        wants_tag = has_tag(planned.contact.get("tags"), CONSENT_TAG)
        filled = frozenset(known.filled if known is not None else ())
        needs_read = current is None and (
            known is None
            or (wants_tag and known.has_tag is not True)
            or ("unique_external_id" in body and known.external_id is None)
            or any(target not in filled for target in planned.if_empty)
        )
        if needs_read:
            current = self._read(contact_id)
            if current is None:  # the id is gone: forget it and create afresh
                return self._create_after_forgetting()
        if current is not None:
            if current.get("deleted") is True:
                self._remember(Known(contact_id, deleted=True))
                return self._result(Outcome.DELETED_IN_FRESHDESK, contact_id=contact_id)
            filled = frozenset(t for t in planned.if_empty if has_value(current, t))
        body = without_targets(body, filled)
        # Three-valued: a tag nobody has read stays unknown in the map, so a later withdrawal reads it.
        tagged = (
            has_tag(current.get("tags"), CONSENT_TAG) if current is not None else (known.has_tag if known else None)
        )
        their_external = (
            self.keys.mark(_text(current.get("unique_external_id")))
            if current is not None
            else (known.external_id if known is not None else None)
        )
        mismatch = False
        ours = body.get("unique_external_id")
        if ours is not None and their_external and their_external != self.keys.mark(ours):
            # The join key back to the customer's systems is never changed: the rest goes ahead.
            body.pop("unique_external_id")
            mismatch = True
        if wants_tag and not tagged:
            body["tags"] = merge_tags(current.get("tags") if current is not None else [], [CONSENT_TAG])
        compared = without_targets({k: v for k, v in body.items() if k != "tags"}, planned.if_empty)
        digest = self.keys.digest(compared)
        new_external = self.keys.mark(body["unique_external_id"]) if "unique_external_id" in body else their_external
        fills_empty = any(has_value(body, target) for target in planned.if_empty)
        if not body or ("tags" not in body and not fills_empty and known is not None and known.digest == digest):
            self._remember(
                Known(
                    contact_id,
                    newer_of(planned.timestamp, known.newest if known else ""),
                    has_tag=tagged,
                    external_id=new_external,
                    digest=digest if known is None else known.digest,
                    filled=tuple(sorted(filled)),
                )
            )
            outcome = Outcome.IDENTITY_MISMATCH if mismatch else Outcome.UNCHANGED
            return self._result(outcome, contact_id=contact_id)
        verdict, answer, body = self._put(contact_id, body, may_drop_fields=True)
        if verdict.action is Action.CREATE:  # 404: the known id no longer exists
            return self._create_after_forgetting()
        if verdict.outcome is Outcome.UPDATED:
            self._remember(
                Known(
                    contact_id,
                    newest=newer_of(planned.timestamp, known.newest if known else ""),
                    has_tag=True if "tags" in body else tagged,
                    external_id=self.keys.mark(body["unique_external_id"])
                    if "unique_external_id" in body
                    else their_external,
                    digest=self.keys.digest(
                        without_targets({k: v for k, v in body.items() if k != "tags"}, planned.if_empty)
                    ),
                    filled=tuple(sorted(filled | {t for t in planned.if_empty if has_value(body, t)})),
                )
            )
            if mismatch:
                verdict = replace(
                    verdict,
                    outcome=Outcome.IDENTITY_MISMATCH,
                    warning=("the contact already has another unique_external_id: kept, and the rest updated"),
                )
        return self._done(replace(verdict, contact_id=verdict.contact_id or contact_id), answer)

    def _withdraw(self, contact_id: int, known: Known | None) -> Result:
        """Remove our consent tag from the contact; change nothing else."""
        if known is not None and known.has_tag is False:
            self._remember(replace(known, newest=newer_of(self.planned.timestamp, known.newest)))
            return self._result(Outcome.CONSENT_WITHDRAWN, contact_id=contact_id, reason="tag_already_absent")
        current = self._read(contact_id)
        if current is None:
            self._forget()
            return self._result(Outcome.DROPPED, reason=DropReason.CONSENT_DENIED.value)
        return self._withdraw_from(contact_id, current, known)

    def _withdraw_from(self, contact_id: int, current: dict[str, Any], known: Known | None) -> Result:
        if current.get("deleted") is True:
            self._remember(Known(contact_id, deleted=True))
            return self._result(Outcome.DELETED_IN_FRESHDESK, contact_id=contact_id)
        newest = newer_of(self.planned.timestamp, known.newest if known else "")
        external = self.keys.mark(_text(current.get("unique_external_id")))
        if not has_tag(current.get("tags"), CONSENT_TAG):
            self._remember(
                Known(contact_id, newest, has_tag=False, external_id=external, digest=known.digest if known else "")
            )
            return self._result(Outcome.CONSENT_WITHDRAWN, contact_id=contact_id, reason="tag_already_absent")
        body = {"tags": without_tag(current.get("tags"), CONSENT_TAG)}
        verdict: Verdict
        answer: Answer
        verdict, answer, _ = self._put(contact_id, body, may_drop_fields=False)
        if verdict.action is Action.CREATE:  # 404: the contact is gone, so is our tag
            self._forget()
            return self._result(Outcome.DROPPED, reason=DropReason.CONSENT_DENIED.value)
        if verdict.outcome is Outcome.UPDATED:
            self._remember(
                Known(contact_id, newest, has_tag=False, external_id=external, digest=known.digest if known else "")
            )
            verdict = replace(verdict, outcome=Outcome.CONSENT_WITHDRAWN)
        return self._done(replace(verdict, contact_id=verdict.contact_id or contact_id), answer)

    def _withdraw_unknown(self, known: Known | None) -> Result:
        """A person the map does not know (or knows to have no contact): one lookup at most."""
        if known is not None:  # looked up before: Freshdesk had no contact for them
            self._remember(replace(known, newest=newer_of(self.planned.timestamp, known.newest)))
            return self._result(Outcome.DROPPED, reason=DropReason.CONSENT_DENIED.value)
        found = self._look_up(DropReason.CONSENT_DENIED)
        return self._withdraw_from(found[0], found[1], None)

    def _update_unknown(self) -> Result:
        """An update-only event for a person the map does not know to have a contact: one lookup, then the
        update, or nothing when Freshdesk has no contact for them. A "no contact" the map remembers is
        looked up again: an agent may have created the contact since."""
        contact_id, current = self._look_up(DropReason.NO_CONTACT)
        return self._update(contact_id, None, current)

    def _look_up(self, absent: DropReason) -> tuple[int, dict[str, Any]]:
        """The person's one contact, found by their first identifier (LOOKUP_ORDER). When Freshdesk has none,
        the map remembers that and the event ends dropped with reason `absent`."""
        contact = self.planned.contact
        field = next((name for name in LOOKUP_ORDER if isinstance(contact.get(name), str)), None)
        if field is None:
            raise Finished(self._result(Outcome.DROPPED, reason=absent.value))
        while True:
            answer = self._call(self.freshdesk.find_contacts, field, contact[field])
            verdict = self._settle(judge_lookup(answer), answer, {})
            if verdict.action is not Action.REAUTH:
                break
        if verdict.action is Action.CREATE:
            self._remember(Known(None, newest=self.planned.timestamp))
            raise Finished(self._result(Outcome.DROPPED, reason=absent.value))
        if verdict.action is Action.UPDATE and verdict.contact_id is not None:
            found = next(c for c in answer.body if isinstance(c, dict) and c.get("id") == verdict.contact_id)
            return verdict.contact_id, found
        raise Finished(self._done(verdict, answer))

    def _company(self) -> dict[str, Any]:
        """`{"company_id": n}` for the company the event names, found or created first; {} when it names
        none or the company cannot be had (the contact goes without it, as Freshdesk would allow)."""
        if self.company is None:
            ref = self.planned.company
            self.company = {}
            if ref is not None:
                sync = CompanySync(
                    self.message_id,
                    self.freshdesk,
                    self.credentials,
                    self.rate,
                    self.deadline,
                    self.map,
                    creds=self.creds,
                    timestamp=self.planned.timestamp,
                )
                try:
                    found = sync.resolve(ref)
                finally:
                    self.attempted = self.attempted or sync.attempted
                    self.creds = sync.creds
                if found is not None:
                    self.company = {"company_id": found}
                elif sync.refused:
                    self.dropped = (*self.dropped, "company_id")
        return self.company

    def _create_after_forgetting(self) -> Result:
        self._forget()
        if getattr(self, "_recreating", False):
            return self._result(Outcome.QUEUED, reason="contact_vanished")
        self._recreating = True
        return self._stranger(None)

    # -- Freshdesk ---------------------------------------------------------------------------------
    def _put(
        self, contact_id: int, body: dict[str, Any], *, may_drop_fields: bool
    ) -> tuple[Verdict, Answer, dict[str, Any]]:
        """`PUT /contacts/{id}` until it is settled: the verdict (CREATE for a 404, which the caller
        decides on), the answer and the body finally sent. A 405 (deleted in Freshdesk) ends the event."""
        while True:
            answer = self._call(self.freshdesk.update_contact, contact_id, body)
            verdict = judge_update(answer, body)
            if verdict.action is Action.RESEND_WITHOUT and may_drop_fields and not self.resent:
                self.resent = True
                self.dropped = (*self.dropped, *verdict.fields)
                body = without_fields(body, verdict.fields)
                continue
            if verdict.action is Action.CREATE:
                return verdict, answer, body
            if verdict.outcome is Outcome.DELETED_IN_FRESHDESK:
                self._remember(Known(contact_id, deleted=True))
                raise Finished(self._result(Outcome.DELETED_IN_FRESHDESK, status=answer.status, contact_id=contact_id))
            verdict = self._settle(verdict, answer, body)
            if verdict.action is not Action.REAUTH:
                return verdict, answer, body

    def _read(self, contact_id: int) -> dict[str, Any] | None:
        """The contact as Freshdesk holds it, or None when the id does not exist."""
        while True:
            answer = self._call(self.freshdesk.get_contact, contact_id)
            verdict = judge_read(answer)
            if verdict.action is Action.CREATE:
                return None
            if verdict.action is Action.DONE:
                return answer.body if isinstance(answer.body, dict) else {}
            verdict = self._settle(verdict, answer, {})
            if verdict.action is not Action.REAUTH:
                raise Finished(self._from_verdict(verdict, answer))

    def _done(self, verdict: Verdict, answer: Answer) -> Result:
        if verdict.action is not Action.DONE or verdict.outcome is None:
            return self._from_verdict(verdict, answer)
        return self._result(
            verdict.outcome,
            status=answer.status,
            contact_id=verdict.contact_id,
            freshdesk_body=answer.body if verdict.outcome is Outcome.CONFLICT and _is_error(answer.body) else None,
            warning=verdict.warning,
        )

    # -- the identity map --------------------------------------------------------------------------
    def _claim(self) -> bool:
        self.held_on = self.map
        return self._with_map(self.map, lambda people: people.claim(self.person_keys, PERSON_CLAIM_SECONDS), True)

    def _lock(self) -> bool:
        self.held_on = self.map
        return self._with_map(self.map, lambda people: people.lock(self.person_keys, PERSON_CLAIM_SECONDS), True)

    def _unlock(self) -> None:
        # Through the map the hold was taken on, even if this event stopped using the map since.
        held_on, self.held_on = self.held_on, None
        self._with_map(held_on, lambda people: people.unlock(self.person_keys), None)


def _existing_ids(answer: Answer) -> list[int]:
    return existing_contact_ids(answer.body)


def _is_error(body: Any) -> bool:
    """Freshdesk's error document (safe to hand back), not a contact record or a list of them."""
    return isinstance(body, dict) and "errors" in body


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
