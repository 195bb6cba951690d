"""The seeder may read the lab's dump where `harness seed --classicmodels-dump` uploads it (the artifacts bucket's
`seed/` prefix) and nothing else in any bucket: on AWS, IAM decides whether the dump event works."""

from __future__ import annotations

import json

from tests.unit.program.conftest import ProgramRunner

FUNCTION = "aws:lambda/function:Function"


def test_the_seeders_role_reads_only_the_seed_prefix_of_the_artifacts_bucket(run: ProgramRunner) -> None:
    result = run("dev")
    seeder = result.named("source-db-seeder", FUNCTION)
    (role,) = [r for r in result.of_type("aws:iam/role:Role") if r.outputs["arn"] == seeder.plain_inputs["role"]]
    (policy,) = [p for p in result.of_type("aws:iam/rolePolicy:RolePolicy")
                 if p.plain_inputs["role"] == role.outputs["id"]]
    statements = json.loads(policy.plain_inputs["policy"])["Statement"]
    s3 = [s for s in statements if any(action.startswith("s3:") for action in s["Action"])]
    bucket = f"arn:aws:s3:::{result.outputs['artifacts_bucket_id'].value}"
    assert [(s["Action"], s["Resource"], s.get("Condition")) for s in s3] == [
        (["s3:GetObject"], [f"{bucket}/seed/*"], None),
        (["s3:ListBucket"], [bucket], {"StringLike": {"s3:prefix": ["seed/*"]}}),
    ], policy.urn
