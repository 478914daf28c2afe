"""The failures the core tells apart. Adapters raise these, never their libraries' own exceptions."""


class ConfigError(Exception):
    """The deployment is misconfigured; the message says what to fix and never holds a secret."""


class SecretUnavailable(Exception):
    """The secret could not be read (network, permissions); the message holds no secret value."""


class QueueError(Exception):
    """A message could not be sent to SQS: the event is not secured."""


class StoreUnavailable(Exception):
    """The idempotency store did not answer; the core goes on without it."""
