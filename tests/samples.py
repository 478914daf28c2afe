"""Reference data shared by the tests."""

# The body POST /api/v2/contacts must receive for events/signed-up.json: the Default preset's worked
# example (docs/behaviour.md), field for field and in this order.
GUIDE_SIGNED_UP_BODY = {
    "name": "John Doe",
    "email": "john.doe@example.com",
    "phone": "+447700900123",
    "unique_external_id": "usr_123",
    "job_title": "Head of Growth",
    "tags": ["marketing-consent"],
    "custom_fields": {"signup_method": "email"},
}
