"""What each component declares: the Glue job, the post-deploy hooks, lab (attach) mode, functions and logs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from components import packaging
from components.artifacts import embeddings_version
from components.etl_pipeline import GLUE_SCRIPT
from harness.emulator.program import ProgramRun
from tests.unit.program.conftest import OPTIONAL_FEATURES, ProgramRunner
from tests.unit.program.test_security_policies import LAB_VARIANT

FUNCTION = "aws:lambda/function:Function"
INVOCATION = "aws:lambda/invocation:Invocation"


def invocation_of(run: ProgramRun, function_output: str) -> list[dict]:
    name = run.outputs[function_output].value
    return [r.plain_inputs for r in run.of_type(INVOCATION) if r.plain_inputs["functionName"] == name]


def test_the_glue_job_runs_the_uploaded_script_on_glue_5_with_logging_and_metrics(run: ProgramRunner) -> None:
    result = run("dev")
    (job,) = result.of_type("aws:glue/job:Job")
    (script,) = [r for r in result.of_type("aws:s3/bucketObjectv2:BucketObjectv2") if r.name == "etl-script"]
    job_inputs, script_inputs = job.plain_inputs, script.plain_inputs
    digest = packaging.file_sha256(GLUE_SCRIPT)
    assert script_inputs["key"] == f"glue/ratings_etl-{digest[:16]}.py", script.urn
    assert script_inputs["sourceHash"] == digest, script.urn
    assert job_inputs["command"]["scriptLocation"] == f"s3://{script_inputs['bucket']}/{script_inputs['key']}"
    assert (job_inputs["glueVersion"], job_inputs["workerType"], job_inputs["numberOfWorkers"]) == ("5.0", "G.1X", 2)
    assert job_inputs["timeout"] == 60
    arguments = job_inputs["defaultArguments"]
    assert arguments["--enable-metrics"] == arguments["--enable-continuous-cloudwatch-log"] == "true", job.urn
    assert arguments["--connection_name"] == result.outputs["glue_connection_name"].value
    assert arguments["--catalog_database"] == result.outputs["glue_catalog_database"].value
    assert arguments["--catalog_table"] == "ratings_ml_training"
    assert arguments["--target_path"] == f"s3://{result.outputs['data_lake_bucket_id'].value}/ratings-ml-training/"
    assert job_inputs["connections"] == [result.outputs["glue_connection_name"].value]
    assert not result.of_type("aws:glue/trigger:Trigger")


def test_the_glue_connection_reaches_the_source_through_a_private_subnet_with_an_s3_gateway(run: ProgramRunner
                                                                                             ) -> None:
    result = run("dev")
    (connection,) = result.of_type("aws:glue/connection:Connection")
    plain = connection.plain_inputs
    source = f"{result.outputs['source_db_host'].value}:3306/classicmodels"
    assert plain["connectionProperties"]["JDBC_CONNECTION_URL"] == f"jdbc:mysql://{source}"
    assert plain["connectionProperties"]["JDBC_ENFORCE_SSL"] == "true", connection.urn
    requirements = plain["physicalConnectionRequirements"]
    private = result.named("network-private-0", "aws:ec2/subnet:Subnet")
    assert requirements["subnetId"] == private.outputs["id"], connection.urn
    assert requirements["availabilityZone"] == private.plain_inputs["availabilityZone"], connection.urn
    glue_sg = result.named("network-glue-sg", "aws:ec2/securityGroup:SecurityGroup")
    assert requirements["securityGroupIdLists"] == [glue_sg.outputs["id"]]
    assert any(rule.get("self") for rule in glue_sg.plain_inputs["ingress"]), "Glue needs a self-referencing rule"
    (gateway,) = [e for e in result.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
                  if e.plain_inputs["vpcEndpointType"] == "Gateway"]
    assert gateway.plain_inputs["serviceName"] == "com.amazonaws.us-east-1.s3"
    route_table = result.named("network-private-rt", "aws:ec2/routeTable:RouteTable")
    assert gateway.plain_inputs["routeTableIds"] == [route_table.outputs["id"]]


def test_a_glue_schedule_from_config_creates_a_scheduled_trigger(run: ProgramRunner) -> None:
    (trigger,) = run("dev", OPTIONAL_FEATURES).of_type("aws:glue/trigger:Trigger")
    assert trigger.plain_inputs["type"] == "SCHEDULED"
    assert trigger.plain_inputs["schedule"] == "cron(0 3 * * ? *)"


def test_without_trained_artifacts_nothing_is_uploaded_the_loader_is_not_invoked_and_the_user_is_told(
        run: ProgramRunner, tmp_path: Path) -> None:
    result = run("dev", {"artifactsDir": str(tmp_path / "not-trained-yet")})
    assert invocation_of(result, "embeddings_loader_function_name") == []
    assert [r for r in result.of_type("aws:s3/bucketObjectv2:BucketObjectv2") if r.name != "etl-script"] == []
    assert any("is missing or empty" in warning and "not invoked" in warning for warning in result.warnings)


def test_trained_artifacts_are_uploaded_and_the_loader_runs_after_deploy(run: ProgramRunner, artifacts_dir: Path
                                                                         ) -> None:
    result = run("dev", {"artifactsDir": str(artifacts_dir)})
    uploaded = {r.plain_inputs["key"] for r in result.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
                if r.name != "etl-script"}
    assert uploaded == {"embeddings/item_embeddings.csv", "embeddings/user_embeddings.csv",
                        "serving/preprocessing.json"}
    (loader_call,) = invocation_of(result, "embeddings_loader_function_name")
    assert json.loads(loader_call["input"]) == {"bucket": result.outputs["artifacts_bucket_id"].value,
                                                "item_key": "embeddings/item_embeddings.csv",
                                                "user_key": "embeddings/user_embeddings.csv"}
    assert loader_call["triggers"]["embeddings"] == embeddings_version(
        {"embeddings/item_embeddings.csv": artifacts_dir / "embeddings" / "item_embeddings.csv",
         "embeddings/user_embeddings.csv": artifacts_dir / "embeddings" / "user_embeddings.csv"})


def test_the_loader_reruns_when_the_embeddings_change_and_only_then(run: ProgramRunner, artifacts_dir: Path,
                                                                    tmp_path: Path) -> None:
    copy = tmp_path / "artifacts"
    shutil.copytree(artifacts_dir, copy)

    def loader_triggers() -> dict[str, str]:
        (call,) = invocation_of(run("dev", {"artifactsDir": str(copy)}, fresh=True),
                                "embeddings_loader_function_name")
        return dict(call["triggers"])

    first = loader_triggers()["embeddings"]
    (copy / "serving" / "preprocessing.json").write_text('{"format": "recsys-serving/1", "changed": true}')
    assert loader_triggers()["embeddings"] == first
    (copy / "embeddings" / "user_embeddings.csv").write_text("id,embedding\n")
    assert loader_triggers()["embeddings"] != first


def test_a_created_source_database_is_seeded_by_its_lambda_after_it_exists(run: ProgramRunner) -> None:
    result = run("dev")
    (seed,) = [r for r in result.of_type(INVOCATION) if r.name == "source-db-seed"]
    seeder = result.named("source-db-seeder", FUNCTION)
    assert seed.plain_inputs["functionName"] == seeder.outputs["name"]
    source = result.named("source-db", "aws:rds/instance:Instance")
    assert source.urn in seed.dependencies and seeder.urn in seed.dependencies
    assert seeder.plain_inputs["environment"]["variables"]["SOURCE_DB_SECRET_ARN"] == \
        result.outputs["source_db_secret_arn"].value


def test_lab_mode_attaches_to_the_existing_vpc_database_bucket_and_stream(run: ProgramRunner) -> None:
    result = run("dev", LAB_VARIANT)
    created = {r.type for r in result.resources}
    assert "aws:ec2/vpc:Vpc" not in created and "aws:ec2/subnet:Subnet" not in created
    assert "aws:kinesis/stream:Stream" not in created
    assert [i.plain_inputs["engine"] for i in result.of_type("aws:rds/instance:Instance")] == ["postgres"]
    assert [r.name for r in result.of_type(INVOCATION)] == ["streaming-load-embeddings"]
    assert result.outputs["source_db_host"].value == LAB_VARIANT["sourceDbHost"]
    assert result.outputs["source_db_password"].secret
    assert result.outputs["artifacts_bucket_id"].value == LAB_VARIANT["artifactsBucket"]
    assert result.outputs["kinesis_stream_name"].value == "de-c1w4-kinesis-data-stream"
    looked_up = sorted(c.args["key"] for c in result.calls if c.token == "aws:s3/getObject:getObject")
    assert looked_up == ["embeddings/item_embeddings.csv", "embeddings/user_embeddings.csv"]
    (loader_call,) = invocation_of(result, "embeddings_loader_function_name")
    assert loader_call["triggers"]["embeddings"].count('"') == 4, "triggers on the two objects' ETags"
    (vector_subnets,) = result.of_type("aws:rds/subnetGroup:SubnetGroup")
    assert vector_subnets.plain_inputs["subnetIds"] == LAB_VARIANT["subnetIds"].split(",")


def test_functions_run_python_312_from_content_hashed_packages_with_the_dependency_layer(run: ProgramRunner
                                                                                          ) -> None:
    result = run("dev", OPTIONAL_FEATURES)
    (layer,) = result.of_type("aws:lambda/layerVersion:LayerVersion")
    assert layer.plain_inputs["compatibleArchitectures"] == ["arm64"]
    handlers = {}
    for function in result.of_type(FUNCTION):
        plain = function.plain_inputs
        module = plain["handler"].removesuffix(".handler")
        handlers[module] = plain["name"]
        assert plain["runtime"] == "python3.12", function.urn
        assert plain["architectures"] == ["arm64"], function.urn
        assert plain["layers"] == [layer.outputs["arn"]], function.urn
        assert plain["sourceCodeHash"] == packaging.function_package(module).sha256_base64, function.urn
    assert set(handlers) == {"transformation", "inference", "loader", "seeder", "producer", "redrive"}


def test_every_log_group_is_created_by_the_program_with_the_configured_retention(run: ProgramRunner) -> None:
    result = run("dev", OPTIONAL_FEATURES)
    groups = {g.plain_inputs["name"]: g.plain_inputs["retentionInDays"]
              for g in result.of_type("aws:cloudwatch/logGroup:LogGroup")}
    functions = [f.plain_inputs["name"] for f in result.of_type(FUNCTION)]
    assert {f"/aws/lambda/{name}" for name in functions} <= set(groups)
    assert set(groups.values()) == {30}
    for function in result.of_type(FUNCTION):
        assert function.plain_inputs["loggingConfig"]["logGroup"] == f"/aws/lambda/{function.plain_inputs['name']}"


def test_the_inference_url_requires_iam_auth_unless_config_opens_it(run: ProgramRunner) -> None:
    (url,) = run("dev").of_type("aws:lambda/functionUrl:FunctionUrl")
    assert url.plain_inputs["authorizationType"] == "AWS_IAM"
    opened = run("dev", OPTIONAL_FEATURES)
    (public,) = [p for p in opened.of_type("aws:lambda/permission:Permission")
                 if p.plain_inputs["action"] == "lambda:InvokeFunctionUrl"]
    assert public.plain_inputs["functionUrlAuthType"] == "NONE"
    assert public.plain_inputs["function"] == opened.outputs["inference_function_name"].value


def test_the_producer_exists_only_when_scheduled_and_writes_to_the_stream(run: ProgramRunner) -> None:
    assert not [f for f in run("dev").of_type(FUNCTION) if f.plain_inputs["handler"] == "producer.handler"]
    result = run("dev", OPTIONAL_FEATURES)
    (producer,) = [f for f in result.of_type(FUNCTION) if f.plain_inputs["handler"] == "producer.handler"]
    variables = producer.plain_inputs["environment"]["variables"]
    assert variables["KINESIS_STREAM_NAME"] == result.outputs["kinesis_stream_name"].value
    assert variables["EVENTS_PER_INVOCATION"] == "12"
    rule = result.named("streaming-producer-schedule", "aws:cloudwatch/eventRule:EventRule")
    assert rule.plain_inputs["scheduleExpression"] == "rate(1 minute)"


def test_the_redrive_function_is_wired_to_the_error_output_and_the_stream_and_runs_hourly_with_no_options(
        run: ProgramRunner) -> None:
    result = run("dev", {"recommendationsErrorPrefix": "failed/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"})
    redrive = result.named("streaming-redrive", FUNCTION)
    plain = redrive.plain_inputs
    assert plain["handler"] == "redrive.handler"
    assert plain["name"] == result.outputs["redrive_function_name"].value == "de-c1w4-dev-redrive"
    assert plain["environment"]["variables"] == {
        "POWERTOOLS_SERVICE_NAME": "redrive", "LOG_LEVEL": "INFO",
        "RECOMMENDATIONS_BUCKET": result.outputs["recommendations_bucket_id"].value,
        "ERROR_OUTPUT_PREFIX": "failed/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/",
        "RECOMMENDATIONS_PREFIX": "!{timestamp:yyyy/MM/dd/HH}/",
        "REDRIVEN_PREFIX": "failed/redriven/",
        "KINESIS_STREAM_NAME": result.outputs["kinesis_stream_name"].value,
    }, redrive.urn
    assert "vpcConfig" not in plain or not plain["vpcConfig"], "S3 and Kinesis only: no VPC, no database"
    assert (plain["timeout"], plain["memorySize"]) == (300, 512)
    rule = result.named("streaming-redrive-schedule", "aws:cloudwatch/eventRule:EventRule")
    assert rule.plain_inputs["scheduleExpression"] == "rate(1 hour)"
    (target,) = [t for t in result.of_type("aws:cloudwatch/eventTarget:EventTarget")
                 if t.plain_inputs["rule"] == rule.outputs["name"]]
    assert target.plain_inputs["arn"] == redrive.outputs["arn"]
    assert json.loads(target.plain_inputs["input"]) == {}, "the schedule runs with the defaults"
    (permission,) = [p for p in result.of_type("aws:lambda/permission:Permission")
                     if p.plain_inputs["function"] == plain["name"]]
    assert permission.plain_inputs["principal"] == "events.amazonaws.com"
    assert permission.plain_inputs["sourceArn"] == rule.outputs["arn"]


TAGGABLE = (
    "aws:s3/bucket:Bucket", "aws:rds/instance:Instance", "aws:rds/subnetGroup:SubnetGroup", "aws:iam/role:Role",
    "aws:lambda/function:Function", "aws:cloudwatch/logGroup:LogGroup", "aws:secretsmanager/secret:Secret",
    "aws:kinesis/stream:Stream", "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream", "aws:glue/job:Job",
    "aws:glue/connection:Connection", "aws:glue/catalogDatabase:CatalogDatabase", "aws:glue/trigger:Trigger",
    "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/routeTable:RouteTable",
    "aws:ec2/internetGateway:InternetGateway", "aws:ec2/securityGroup:SecurityGroup", "aws:ec2/vpcEndpoint:VpcEndpoint",
    "aws:cloudwatch/eventRule:EventRule",
)


def test_every_taggable_resource_names_its_project_and_stack(run: ProgramRunner) -> None:
    result = run("dev", OPTIONAL_FEATURES)
    tagged = [r for r in result.resources if r.type in TAGGABLE]
    assert {r.type for r in tagged} == set(TAGGABLE)
    for resource in tagged:
        tags = resource.plain_inputs.get("tags", {})
        assert tags.get("project") == "recsys" and tags.get("recsys-stack") == "dev", resource.urn
