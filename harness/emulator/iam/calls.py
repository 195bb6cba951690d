"""What an AWS API call asks IAM: one or more (action, resource) authorizations, all of which must be allowed.

Most calls are one authorization; some are several (`CopyObject`: `s3:GetObject` on the source and `s3:PutObject` on
the target; a Glue table call: the catalog, the database and the table, as the Service Authorization Reference marks
each required). A call whose operation the mapping does not know is `Unmapped` and denied, never allowed by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

# How the service's errors are written (botocore's protocol names).
WireProtocol = Literal["rest-xml", "json", "rest-json", "query", "smithy-rpc-v2-cbor"]


@dataclass(frozen=True)
class Authorization:
    """`action` on `resource` (`*` for actions without resource-level permissions), with the condition keys the
    request itself sets for it (`s3:prefix`, `cloudwatch:namespace`, lower-cased names)."""

    action: str
    resource: str
    keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    authorizations: tuple[Authorization, ...]
    protocol: WireProtocol
    # The JSON protocol's version (its error content type), "1.1" for every service the program calls but CloudWatch.
    json_version: str = "1.1"

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(a.action for a in self.authorizations)


@dataclass(frozen=True)
class Unmapped:
    """A request whose operation (or resource) could not be told: reported and denied."""

    service: str | None
    operation: str | None
    reason: str
    protocol: WireProtocol | None = None
    json_version: str = "1.1"


def resource_owner(arn: str) -> str:
    """The resource whose policy governs `arn`: an object's bucket, a function version's function, else itself."""
    parts = arn.split(":", 5)
    if len(parts) != 6:
        return arn
    service, resource = parts[2], parts[5]
    if service == "s3" and not parts[3] and not parts[4]:
        return ":".join(parts[:5]) + ":" + resource.split("/", 1)[0]
    if service == "lambda" and resource.startswith("function:"):
        return ":".join(parts[:5]) + ":function:" + resource.split(":")[1]
    return arn
