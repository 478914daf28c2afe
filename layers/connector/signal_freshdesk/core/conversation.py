"""What every conversation with Freshdesk shares, for one event: the call, the 401 re-read, the verdicts
that end the event, and the identity map, which is used while it answers and then left alone.

`ContactSync` (delivery) and `CompanySync` (companies) build on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..observability import count, logger
from .backoff import retry_after_seconds
from .credentials import Credentials, CredentialStore
from .errors import ConfigError, SecretUnavailable, StoreUnavailable
from .identity import IdentityKeys, Known, identity_key_from_secret
from .model import Answer, Outcome, Result
from .outcomes import Action, Verdict
from .pacing import RateBudget
from .ports import Freshdesk, IdentityMap
from .timing import Deadline


def throttled(rate: RateBudget, message_id: str) -> Result | None:
    """Queued, without a call, while Freshdesk's rate limit says wait; None when a call may be made."""
    waiting = rate.rate_limited_for()
    if waiting > 0:
        return Result(message_id, Outcome.QUEUED, reason="rate_limited", retry_after=math.ceil(waiting))
    return None


class Finished(Exception):
    """A step ended the event; `result` is how."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.outcome.value)
        self.result = result


class Conversation:
    """One event's calls to Freshdesk and the identity map. `person_keys` are the map's keys of whatever
    the event is about (a person, or a company); without keys the map is not used."""

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
    ) -> None:
        self.message_id = message_id
        self.freshdesk = freshdesk
        self.credentials = credentials
        self.rate = rate
        self.deadline = deadline
        self.map = identity_map
        self.creds: Credentials = creds if creds is not None else credentials.get()
        self.keys = IdentityKeys(identity_key_from_secret(self.creds.webhook_token, self.creds.identity_key))
        self.person_keys: list[str] = []
        self.remembered = False  # whether the map took what this event learnt
        self.reauthenticated = False
        self.attempted = False
        self.dropped: tuple[str, ...] = ()

    # -- Freshdesk ---------------------------------------------------------------------------------
    def _call(self, method: Callable[..., Answer], *args: Any) -> Answer:
        answer = method(self.creds, *args, deadline=self.deadline)
        self.attempted = True
        self.rate.observe(answer)
        count("freshdesk_call")
        return answer

    def _settle(self, verdict: Verdict, answer: Answer, contact: dict[str, Any]) -> Verdict:
        """Handle the verdicts every call shares: a 401 re-reads the secret once (REAUTH: call again);
        retries, rejections and a second 401 end the event."""
        if verdict.action is Action.REAUTH and not self.reauthenticated:
            self.reauthenticated = True
            try:
                self.creds = self.credentials.refresh(self.creds)
            except (ConfigError, SecretUnavailable) as exc:
                raise Finished(
                    self._result(Outcome.QUEUED, status=answer.status, reason="secret_unavailable", error=str(exc))
                ) from None
            return verdict
        if verdict.action in (Action.RETRY, Action.REAUTH, Action.REJECT, Action.RESEND_WITHOUT):
            raise Finished(self._from_verdict(verdict, answer))
        return verdict

    def _from_verdict(self, verdict: Verdict, answer: Answer) -> Result:
        if verdict.action is Action.RETRY:
            return self._result(
                Outcome.QUEUED,
                status=answer.status,
                reason="rate_limited" if answer.status == 429 else "freshdesk_unavailable",
                freshdesk_body=answer.body,
                retry_after=retry_after_seconds(answer),
                error=answer.error,
            )
        return self._result(
            Outcome.REJECTED, status=answer.status, reason=f"freshdesk_{answer.status}", freshdesk_body=answer.body
        )

    def _result(self, outcome: Outcome, **fields: Any) -> Result:
        return Result(self.message_id, outcome, dropped_fields=self.dropped, attempted=self.attempted, **fields)

    # -- the identity map --------------------------------------------------------------------------
    def _with_map[T](
        self, target: IdentityMap | None, call: Callable[[IdentityMap], T], fallback: T, keys: list[str] | None = None
    ) -> T:
        """One call of the identity map; without it (off, or failed earlier for this event) the fallback."""
        if target is None or not (self.person_keys if keys is None else keys):
            return fallback
        try:
            return call(target)
        except StoreUnavailable as exc:
            self._map_failed(exc)
            return fallback

    def _find(self) -> Known | None:
        return self._with_map(self.map, lambda entries: entries.find(self.person_keys), None)

    def _remember(self, known: Known) -> None:
        def remember(entries: IdentityMap) -> bool:
            entries.remember(self.person_keys, known)
            return True

        if self._with_map(self.map, remember, False):
            self.remembered = True

    def _forget(self) -> None:
        self._with_map(self.map, lambda entries: entries.forget(self.person_keys), None)

    def _map_failed(self, exc: Exception) -> None:
        logger.warning(
            "identity map unavailable; going on without it", extra={"messageId": self.message_id, "error": str(exc)}
        )
        count("identity_map_unavailable")
        self.map = None
