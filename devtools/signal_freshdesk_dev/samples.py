"""Reference data from the integration guide, shared by the tests and the tools."""

# The guide's "Example: Signed Up": the body POST /api/v2/contacts must receive for events/signed-up.json.
GUIDE_SIGNED_UP_BODY = {
    "name": "John Doe",
    "email": "john.doe@example.com",
    "phone": "+447700900123",
    "unique_external_id": "usr_123",
    "job_title": "Head of Growth",
    "tags": ["marketing-consent"],
    "custom_fields": {"signup_method": "email"},
}
