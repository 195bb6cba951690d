"""A request as the gateway sees it -> the call it makes (`Call`: operation and authorizations) or `Unmapped`.

`needs_body` tells the gateway, before it reads anything, whether the mapping needs the body: every JSON, CBOR and
query-protocol request (small; they name their resource there) and S3's DeleteObjects; never an S3 upload, which
streams past unread.
"""

from __future__ import annotations

from harness.emulator.iam.calls import Call, Unmapped
from harness.emulator.iam.context import partition_of
from harness.emulator.iam.operations.http import (
    CBOR_PATH,
    HttpRequest,
    access_key,
    service_of,
    signing_region,
)
from harness.emulator.iam.operations.json_services import SERVICES, Lookups, MotoLookups, Scope, json_call
from harness.emulator.iam.operations.other_services import (
    cloudwatch_call,
    function_arn,
    function_url_call,
    invoke_call,
    lambda_call,
    sts_call,
)
from harness.emulator.iam.operations.s3 import needs_body as s3_needs_body
from harness.emulator.iam.operations.s3 import s3_call

__all__ = [
    "HttpRequest", "Lookups", "MotoLookups", "SERVICES", "Scope", "access_key", "function_arn", "function_url_call",
    "invoke_call", "map_request", "needs_body", "service_of", "signing_region",
]

_JSON_SERVICES = frozenset(entry[1] for entry in SERVICES.values())


def needs_body(request: HttpRequest) -> bool:
    service = service_of(request)
    if service == "s3":
        return s3_needs_body(request)
    if service == "lambda":
        return False
    return service in _JSON_SERVICES or service in ("sts", "monitoring") or request.target is not None \
        or CBOR_PATH.match(request.path) is not None


def map_request(request: HttpRequest, *, account: str, region: str | None = None,
                lookups: Lookups | None = None) -> Call | Unmapped:
    """The call `request` makes. `region`: the stack's, used when the signature names none."""
    service = service_of(request)
    region = signing_region(request) or region or "us-east-1"
    scope = Scope(partition_of(region), region, account)
    if service == "s3":
        return s3_call(request, scope.partition)
    if service == "lambda":
        return lambda_call(request, scope)
    if service == "sts":
        return sts_call(request, scope)
    if service == "monitoring":
        return cloudwatch_call(request, scope)
    if service in _JSON_SERVICES or (service is None and request.target is not None):
        return json_call(request, scope, lookups or MotoLookups())
    return Unmapped(service, None, f"{service or 'an unsigned request'}: not a service the IAM mapping knows")
