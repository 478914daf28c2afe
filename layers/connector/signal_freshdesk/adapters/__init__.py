"""What talks to the outside: Freshdesk over HTTPS, SQS, DynamoDB, Secrets Manager and its extension.

Each module implements a port of `signal_freshdesk.core.ports` and is named for what it talks to.
"""
