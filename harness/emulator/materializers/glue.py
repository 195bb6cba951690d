"""Glue: catalog database, JDBC connection, job and trigger (moto stores them; `harness etl` runs the script)."""

from __future__ import annotations

from typing import Any

from harness.emulator.materializers import Context, Request, Result, materializes, without_none


@materializes("aws:glue/catalogDatabase:CatalogDatabase")
def catalog_database(context: Context, request: Request) -> Result:
    glue = context.client("glue")
    name = request.physical_name("name", lowercase=True)
    database_input = without_none({"Name": name, "Description": request.get("description"),
                                   "LocationUri": request.get("locationUri"), "Parameters": request.get("parameters")})
    try:
        glue.get_database(Name=name)
        glue.update_database(Name=name, DatabaseInput=database_input)
    except glue.exceptions.EntityNotFoundException:
        glue.create_database(DatabaseInput=database_input)
    return Result(f"{context.account_id}:{name}", {"name": name, "arn": context.arn("glue", f"database/{name}"),
                                                   "catalogId": context.account_id})


@materializes("aws:glue/connection:Connection")
def connection(context: Context, request: Request) -> Result:
    glue = context.client("glue")
    name = request.physical_name("name")
    physical = request.get("physicalConnectionRequirements") or {}
    connection_input = without_none({
        "Name": name, "Description": request.get("description"),
        "ConnectionType": request.get("connectionType", "JDBC"),
        "ConnectionProperties": {k: str(v) for k, v in (request.get("connectionProperties") or {}).items()},
        "MatchCriteria": request.get("matchCriterias"),
        "PhysicalConnectionRequirements": without_none({
            "SubnetId": physical.get("subnetId"), "SecurityGroupIdList": physical.get("securityGroupIdLists"),
            "AvailabilityZone": physical.get("availabilityZone")}) or None,
    })
    try:
        existing = glue.get_connection(Name=name, HidePassword=False)["Connection"]
    except glue.exceptions.EntityNotFoundException:
        glue.create_connection(ConnectionInput=connection_input)
    else:
        # moto 5.2 implements neither UpdateConnection nor DeleteConnection: an unchanged connection is kept, a changed
        # one cannot be applied in place, so say how to get it rather than leave the old one silently in use.
        wanted = {key: connection_input.get(key) for key in ("ConnectionProperties", "PhysicalConnectionRequirements")}
        current = {key: existing.get(key) for key in wanted}
        if current != wanted:
            raise RuntimeError(
                f"Glue connection {name!r} changed, and the local AWS emulator cannot update or delete a Glue "
                "connection. Recreate the local stack to apply it: `python -m harness down && python -m harness up`.")
    return Result(f"{context.account_id}:{name}", {"name": name, "arn": context.arn("glue", f"connection/{name}"),
                                                   "catalogId": context.account_id})


def _job_definition(request: Request) -> dict[str, Any]:
    command = request.get("command") or {}
    return without_none({
        "Role": request.get("roleArn"),
        "Description": request.get("description"),
        "Command": without_none({"Name": command.get("name", "glueetl"),
                                 "ScriptLocation": command.get("scriptLocation"),
                                 "PythonVersion": command.get("pythonVersion"), "Runtime": command.get("runtime")}),
        "DefaultArguments": {k: str(v) for k, v in (request.get("defaultArguments") or {}).items()},
        "NonOverridableArguments": request.get("nonOverridableArguments"),
        "Connections": {"Connections": list(request.get("connections"))} if request.get("connections") else None,
        "MaxRetries": request.get("maxRetries"),
        "Timeout": request.get("timeout"),
        "GlueVersion": request.get("glueVersion"),
        "WorkerType": request.get("workerType"),
        "NumberOfWorkers": request.get("numberOfWorkers"),
        "ExecutionProperty": {"MaxConcurrentRuns": request.get("executionProperty")["maxConcurrentRuns"]}
        if request.get("executionProperty") else None,
        "SecurityConfiguration": request.get("securityConfiguration"),
    })


@materializes("aws:glue/job:Job")
def job(context: Context, request: Request) -> Result:
    glue = context.client("glue")
    name = request.physical_name("name")
    definition = _job_definition(request)
    # moto 5.2 does not implement UpdateJob: an update (a new script location, say) replaces the job. Run history lives
    # in the harness (`harness etl runs`), not in moto, so nothing a user reads is lost.
    try:
        glue.get_job(JobName=name)
        glue.delete_job(JobName=name)
    except glue.exceptions.EntityNotFoundException:
        pass
    glue.create_job(Name=name, **definition, **({"Tags": dict(request.get("tags"))} if request.get("tags") else {}))
    return Result(name, {"name": name, "arn": context.arn("glue", f"job/{name}")})


@materializes("aws:glue/trigger:Trigger")
def trigger(context: Context, request: Request) -> Result:
    glue = context.client("glue")
    name = request.physical_name("name")
    actions = [without_none({"JobName": action.get("jobName"), "Arguments": action.get("arguments"),
                             "Timeout": action.get("timeout"), "CrawlerName": action.get("crawlerName")})
               for action in request.get("actions") or []]
    try:
        glue.get_trigger(Name=name)
        glue.delete_trigger(Name=name)
    except glue.exceptions.EntityNotFoundException:
        pass
    glue.create_trigger(**without_none({
        "Name": name, "Type": request.get("type"), "Schedule": request.get("schedule"), "Actions": actions,
        "Description": request.get("description"),
        "StartOnCreation": bool(request.get("startOnCreation", False)) if request.get("type") != "ON_DEMAND" else None,
    }))
    return Result(name, {"name": name, "arn": context.arn("glue", f"trigger/{name}"),
                         "state": "ACTIVATED" if request.get("startOnCreation") else "CREATED"})
