"""Our SigV4 signer must produce exactly what botocore's signer produces for the same request."""

from datetime import UTC, datetime

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from signal_freshdesk.adapters.sigv4 import AwsCredentials, signed_headers

WHEN = datetime(2026, 11, 27, 3, 4, 5, tzinfo=UTC)


def botocore_authorization(url, body, headers, creds, region, service, monkeypatch):
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: WHEN.replace(tzinfo=None))
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    signer = SigV4Auth(Credentials(creds.access_key, creds.secret_key, creds.session_token or None), service, region)
    signer.add_auth(request)
    return request.headers["Authorization"]


@pytest.mark.parametrize("session_token", ["", "IQoJb3JpZ2luX2VjEXAMPLE//token=="])
@pytest.mark.parametrize(
    "url,region,service",
    [
        ("https://dynamodb.eu-west-1.amazonaws.com/", "eu-west-1", "dynamodb"),
        ("http://127.0.0.1:5000/", "us-east-1", "dynamodb"),
    ],
)
def test_signature_matches_botocore(session_token, url, region, service, monkeypatch):
    creds = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", session_token)
    body = b'{"TableName":"t","Key":{"id":{"S":"m-1"}}}'
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.GetItem"}
    ours = signed_headers(
        url=url, body=body, headers=headers, credentials=creds, region=region, service=service, now=WHEN
    )
    assert ours["Authorization"] == botocore_authorization(url, body, headers, creds, region, service, monkeypatch)


def test_a_changed_body_changes_the_signature():
    creds = AwsCredentials("AKID", "secret")
    one = signed_headers(
        url="https://x.example/", body=b"{}", headers={}, credentials=creds, region="r", service="s", now=WHEN
    )
    two = signed_headers(
        url="https://x.example/", body=b"{ }", headers={}, credentials=creds, region="r", service="s", now=WHEN
    )
    assert one["Authorization"] != two["Authorization"]


def test_credentials_repr_hides_the_secret_key():
    assert "wJalr" not in repr(AwsCredentials("AKID", "wJalrSECRET", "tok"))
