"""Schemathesis hooks for tests/openapi.rs.

A schema-valid request's `Idempotency-Key` is made unique to it. Generated keys repeat across
requests ("0", "00", ...), and the server rightly refuses a key reused for a different request
(`422 idempotency_key_reused`): that is state, not a body the schema should have refused.
Negative cases are left as generated (changing one would make schemathesis revalidate it).
Retries with the same key are tested by tests/idempotency.rs.
"""

import re
import uuid

import schemathesis

HEADER = "idempotency-key"
VALID = re.compile(r"^[!-~]{1,128}$")


@schemathesis.hook
def before_call(context, case, kwargs):
    meta = case.meta
    if not case.headers or (meta is not None and not meta.generation.mode.is_positive):
        return
    for name, value in list(case.headers.items()):
        if name.lower() == HEADER and isinstance(value, str) and VALID.match(value):
            case.headers[name] = f"{value[:95]}~{uuid.uuid4().hex}"
