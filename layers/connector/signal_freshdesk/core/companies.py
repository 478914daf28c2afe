"""Bring a company into Freshdesk: a group event's upsert, and the company a contact event names.

Freshdesk keeps company names unique, so a create never makes a second company: a 409 means the name
exists, and the company is found by name (autocomplete, then an exact match ignoring case) and updated.
A PUT replaces `domains` whole, so the company is read first and its domains kept: ours are added,
never put in their place. The identity map remembers each company under its Signal group id and its
name, so a known company costs one PUT (a GET first when the event brings domains to merge), or nothing
when the event says nothing new.
"""

from __future__ import annotations

from typing import Any

from .conversation import Conversation, Finished, throttled
from .credentials import Credentials, CredentialStore
from .identity import Known, is_older, newer_of
from .model import CompanyRef, Outcome, PlannedCompany, Result
from .outcomes import Action, judge_company_create, judge_company_lookup, judge_company_update
from .pacing import RateBudget
from .ports import Freshdesk, IdentityMap, Runtime
from .timing import Deadline


def deliver_company(planned: PlannedCompany, runtime: Runtime, *, deadline: Deadline | None = None) -> Result:
    waiting = throttled(runtime.rate, planned.message_id)
    if waiting is not None:
        return waiting
    sync = CompanySync(
        planned.message_id,
        runtime.freshdesk,
        runtime.credentials,
        runtime.rate,
        deadline,
        runtime.identity_map,
        timestamp=planned.timestamp,
    )
    try:
        return sync.upsert(planned)
    except Finished as finished:
        return finished.result


class CompanySync(Conversation):
    """One event's conversation with Freshdesk about a company."""

    def __init__(
        self,
        message_id: str,
        freshdesk: Freshdesk,
        credentials: CredentialStore,
        rate: RateBudget,
        deadline: Deadline | None,
        identity_map: IdentityMap | None,
        *,
        creds: Credentials | None = None,
        timestamp: str = "",
    ) -> None:
        super().__init__(message_id, freshdesk, credentials, rate, deadline, identity_map, creds=creds)
        self.timestamp = timestamp
        self.refused = False  # Freshdesk refused the company for good (a 4xx other than 401 and 409)
        self.recreating = False

    # -- a group event -------------------------------------------------------------------------------
    def upsert(self, planned: PlannedCompany) -> Result:
        name = planned.company["name"]
        self.person_keys = self.keys.company_keys(planned.group_id, name) if self.map is not None else []
        known = self._find()
        if known is not None and is_older(self.timestamp, known.newest):
            return self._result(Outcome.STALE, company_id=known.contact_id, reason="older_than_applied")
        if known is not None and known.contact_id is not None:
            return self._update(planned, known.contact_id, known)
        return self._create(planned)

    def _create(self, planned: PlannedCompany) -> Result:
        body = planned.company
        while True:
            answer = self._call(self.freshdesk.create_company, body)
            verdict = self._settle(judge_company_create(answer, body), answer, body)
            if verdict.action is not Action.REAUTH:
                break
        if verdict.action is Action.UPDATE:  # the name exists: find that company, and update it
            found = self._find_by_name(body["name"])
            if found is None:
                return self._result(
                    Outcome.CONFLICT,
                    status=409,
                    freshdesk_body=answer.body,
                    warning="Freshdesk says the name exists, but no company of that name can be found",
                )
            return self._update(planned, found, None)
        company_id = verdict.contact_id
        if verdict.outcome is Outcome.DELIVERED and company_id is not None:
            self._remember(Known(company_id, newest=self.timestamp, digest=self.keys.digest(planned.update)))
        return self._result(Outcome.DELIVERED, status=answer.status, company_id=company_id)

    def _update(self, planned: PlannedCompany, company_id: int, known: Known | None) -> Result:
        """Send the event's fields, with its domains added to the company's own."""
        digest = self.keys.digest(planned.update)
        newest = newer_of(self.timestamp, known.newest if known is not None else "")
        if known is not None and known.digest == digest:
            self._remember(Known(company_id, newest=newest, digest=digest))
            return self._result(Outcome.UNCHANGED, company_id=company_id)
        body = dict(planned.update)
        if "domains" in body:
            current = self._read(company_id)
            if current is None:
                return self._create_after_forgetting(planned)
            theirs = [d for d in current.get("domains") or [] if isinstance(d, str)]
            merged = list(
                dict.fromkeys([*theirs, *(d for d in body["domains"] if d.casefold() not in _folded(theirs))])
            )
            if len(merged) == len(theirs):
                body.pop("domains")
            else:
                body["domains"] = merged
        while True:
            answer = self._call(self.freshdesk.update_company, company_id, body)
            verdict = judge_company_update(answer, body)
            if verdict.action is Action.CREATE:
                return self._create_after_forgetting(planned)
            verdict = self._settle(verdict, answer, body)
            if verdict.action is not Action.REAUTH:
                break
        if verdict.outcome is Outcome.UPDATED:
            self._remember(Known(company_id, newest=newest, digest=digest))
        return self._result(
            verdict.outcome or Outcome.UPDATED,
            status=answer.status,
            company_id=company_id,
            warning=verdict.warning,
            freshdesk_body=answer.body if verdict.outcome is Outcome.CONFLICT else None,
        )

    def _create_after_forgetting(self, planned: PlannedCompany) -> Result:
        """The remembered id is gone (a person deleted the company): forget it and create it afresh, once."""
        self._forget()
        if self.recreating:
            return self._result(Outcome.QUEUED, reason="company_vanished")
        self.recreating = True
        return self._create(planned)

    # -- the company a contact event names -----------------------------------------------------------
    def resolve(self, ref: CompanyRef) -> int | None:
        """The id of the company `ref` names: from the map, else created (or found by name). None when it
        names a group nobody has described yet, or Freshdesk refused the company (`refused`). A 429 or an
        outage ends the event (queued), like any other call of it."""
        self.person_keys = self.keys.company_keys(ref.group_id, ref.name) if self.map is not None else []
        known = self._find()
        if known is not None and known.contact_id is not None:
            return known.contact_id
        if ref.name is None:
            return None
        body = {"name": ref.name}
        while True:
            answer = self._call(self.freshdesk.create_company, body)
            verdict = judge_company_create(answer, body)
            if verdict.action in (Action.REJECT, Action.RESEND_WITHOUT):
                self.refused = True
                return None
            verdict = self._settle(verdict, answer, body)
            if verdict.action is not Action.REAUTH:
                break
        company_id = self._find_by_name(ref.name) if verdict.action is Action.UPDATE else verdict.contact_id
        if company_id is not None:
            # No newest: a contact event's time says nothing of the group's, whose older event still applies.
            self._remember(Known(company_id))
        return company_id

    # -- Freshdesk -----------------------------------------------------------------------------------
    def _find_by_name(self, name: str) -> int | None:
        while True:
            answer = self._call(self.freshdesk.find_companies, name)
            verdict = self._settle(judge_company_lookup(answer, name), answer, {})
            if verdict.action is not Action.REAUTH:
                return verdict.contact_id if verdict.action is Action.UPDATE else None

    def _read(self, company_id: int) -> dict[str, Any] | None:
        """The company as Freshdesk holds it, or None when the id does not exist."""
        while True:
            answer = self._call(self.freshdesk.get_company, company_id)
            verdict = judge_company_update(answer, {})
            if verdict.action is Action.CREATE:
                return None
            verdict = self._settle(verdict, answer, {})
            if verdict.action is not Action.REAUTH:
                return answer.body if isinstance(answer.body, dict) else {}


def _folded(domains: list[str]) -> set[str]:
    return {domain.casefold() for domain in domains}
