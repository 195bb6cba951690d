"""RDS: each DB instance becomes its own local server, as an RDS instance is its own server.

engine postgres -> an embedded PostgreSQL (with pgvector) under `<state>/rds/<identifier>/`; engine mysql/mariadb -> a
MariaDB server there. The master user is created with the program's (generated) password and the database with the
program's name, so the secret, the Lambda environment and the Glue connection all work unchanged. A dedicated server
(rather than a database on the harness's own PostgreSQL/MariaDB) is needed because the lab's master users are
`postgres` and `admin`, the names the harness's servers already use for their own superusers. The instance is also
recorded in moto (parameter validation, `aws rds describe-db-instances`), with its endpoint rewritten to 127.0.0.1.

The master user is a superuser of its server (RDS's master has rds_superuser; `CREATE EXTENSION vector` needs it).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from harness.emulator import services
from harness.emulator.materializers import (
    Context,
    MaterializeError,
    Request,
    Result,
    materializes,
    tags_list,
    without_none,
)

Engine = Literal["postgres", "mysql"]


def rds_dir(state_dir: Path) -> Path:
    return state_dir / "rds"


def _engine(request: Request) -> Engine:
    engine = str(request.get("engine", ""))
    if engine == "postgres":
        return "postgres"
    if engine in ("mysql", "mariadb"):
        return "mysql"
    raise MaterializeError(f"RDS instance {request.name}: engine {engine!r} has no local server (postgres, mysql, "
                           "mariadb)")


def _record_path(state_dir: Path, identifier: str) -> Path:
    return rds_dir(state_dir) / identifier / "service.json"


def _quote_ident_pg(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _postgres_server(state_dir: Path, identifier: str, password: str) -> services.PostgresService:
    base = rds_dir(state_dir) / identifier
    record = _record_path(state_dir, identifier)
    if record.exists():
        known = services.PostgresService(**json.loads(record.read_text()))
        if services.postgres_healthy(known):
            return known
    base.mkdir(parents=True, exist_ok=True)
    # A new data directory gets the program's password at initdb; an existing one starts with its recorded password
    # and is brought up to date by _ensure_postgres_master.
    fresh = not (base / "postgres" / "PG_VERSION").exists()
    server = services.start_postgres(base, password=password if fresh else None)
    record.write_text(json.dumps(asdict(server)))
    record.chmod(0o600)
    return server


def _ensure_postgres_master(server: services.PostgresService, state_dir: Path, identifier: str, username: str,
                            password: str, dbname: str) -> services.PostgresService:
    connection = server.connect()
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("select 1 from pg_roles where rolname = %s", (username,))
            verb = "ALTER" if cursor.fetchone() else "CREATE"
            cursor.execute(f"{verb} ROLE {_quote_ident_pg(username)} WITH LOGIN SUPERUSER PASSWORD %s", (password,))
            cursor.execute("select 1 from pg_database where datname = %s", (dbname,))
            if cursor.fetchone() is None:
                cursor.execute(f"CREATE DATABASE {_quote_ident_pg(dbname)} OWNER {_quote_ident_pg(username)}")
    finally:
        connection.close()
    if username == server.user:
        server = services.PostgresService(**{**asdict(server), "password": password})
        (rds_dir(state_dir) / identifier / "postgres.password").write_text(password)
        _record_path(state_dir, identifier).write_text(json.dumps(asdict(server)))
    return server


def _mariadb_server(state_dir: Path, identifier: str, password: str) -> services.MariaDBService:
    base = rds_dir(state_dir) / identifier
    record = _record_path(state_dir, identifier)
    if record.exists():
        known = services.MariaDBService(**json.loads(record.read_text()))
        if services.mariadb_healthy(known):
            return known
    base.mkdir(parents=True, exist_ok=True)
    # start_mariadb (re)sets its admin user's password to the one given, on a new or an existing data directory.
    server = services.start_mariadb(base, password=password)
    record.write_text(json.dumps(asdict(server)))
    record.chmod(0o600)
    return server


def _ensure_mysql_master(server: services.MariaDBService, state_dir: Path, identifier: str, username: str,
                         password: str, dbname: str | None) -> services.MariaDBService:
    connection = server.connect()
    try:
        with connection.cursor() as cursor:
            hosts = ("127.0.0.1", "localhost") if username == server.user else ("127.0.0.1", "localhost", "%")
            for host in hosts:
                account = f"{_sql_string(username)}@{_sql_string(host)}"
                cursor.execute(f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {_sql_string(password)}")
                cursor.execute(f"ALTER USER {account} IDENTIFIED BY {_sql_string(password)}")
                cursor.execute(f"GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION")
            if dbname:
                cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{dbname.replace('`', '``')}`")
        connection.commit()
    finally:
        connection.close()
    if username == server.user:
        server = services.MariaDBService(**{**asdict(server), "password": password})
        (rds_dir(state_dir) / identifier / "mariadb.password").write_text(password)
        _record_path(state_dir, identifier).write_text(json.dumps(asdict(server)))
    return server


def _record_in_moto(context: Context, request: Request, identifier: str, engine: Engine) -> dict[str, Any]:
    rds = context.client("rds")
    try:
        return dict(rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0])
    except rds.exceptions.DBInstanceNotFoundFault:
        pass
    return dict(rds.create_db_instance(**without_none({
        "DBInstanceIdentifier": identifier, "Engine": request.get("engine"),
        "EngineVersion": request.get("engineVersion"), "DBInstanceClass": request.get("instanceClass"),
        "AllocatedStorage": request.get("allocatedStorage"), "StorageType": request.get("storageType"),
        "StorageEncrypted": request.get("storageEncrypted"), "KmsKeyId": request.get("kmsKeyId"),
        "DBName": request.get("dbName"), "MasterUsername": request.get("username"),
        "MasterUserPassword": request.get("password"), "Port": request.get("port"),
        "DBSubnetGroupName": request.get("dbSubnetGroupName"),
        "VpcSecurityGroupIds": list(request.get("vpcSecurityGroupIds") or []),
        "PubliclyAccessible": request.get("publiclyAccessible"),
        "BackupRetentionPeriod": request.get("backupRetentionPeriod"),
        "DeletionProtection": request.get("deletionProtection"), "MultiAZ": request.get("multiAz"),
        "Tags": tags_list(request.get("tags")),
    }))["DBInstance"])


@materializes("aws:rds/instance:Instance")
def instance(context: Context, request: Request) -> Result:
    engine = _engine(request)
    identifier = request.physical_name("identifier", lowercase=True, max_length=63)
    username, password = request.get("username"), request.get("password")
    if not username or not password:
        raise MaterializeError(f"RDS instance {identifier}: set username and password (the local server is created "
                               "with them)")
    recorded = _record_in_moto(context, request, identifier, engine)
    dbname = request.get("dbName") or ("postgres" if engine == "postgres" else None)
    address: str
    port: int
    if engine == "postgres":
        pg = _postgres_server(context.state_dir, identifier, password)
        _ensure_postgres_master(pg, context.state_dir, identifier, username, password, dbname or "postgres")
        address, port = pg.host, pg.port
    else:
        maria = _mariadb_server(context.state_dir, identifier, password)
        _ensure_mysql_master(maria, context.state_dir, identifier, username, password, dbname)
        address, port = maria.host, maria.port
    return Result(recorded.get("DbiResourceId") or identifier, {
        "identifier": identifier, "address": address, "port": port, "endpoint": f"{address}:{port}",
        "arn": recorded.get("DBInstanceArn") or context.arn("rds", f"db:{identifier}"),
        "resourceId": recorded.get("DbiResourceId", ""), "dbName": dbname or "", "username": username,
        "engineVersionActual": recorded.get("EngineVersion") or request.get("engineVersion") or "",
        "hostedZoneId": "Z2R2ITUGPM61AM", "status": "available",
    })


@materializes("aws:rds/subnetGroup:SubnetGroup")
def subnet_group(context: Context, request: Request) -> Result:
    rds = context.client("rds")
    name = request.physical_name("name", lowercase=True, max_length=255)
    parameters = without_none({"DBSubnetGroupName": name,
                               "DBSubnetGroupDescription": request.get("description", "Managed by Pulumi"),
                               "SubnetIds": list(request.get("subnetIds") or [])})
    try:
        rds.describe_db_subnet_groups(DBSubnetGroupName=name)
        group = rds.modify_db_subnet_group(**parameters)["DBSubnetGroup"]
    except rds.exceptions.DBSubnetGroupNotFoundFault:
        group = rds.create_db_subnet_group(**parameters, Tags=tags_list(request.get("tags")))["DBSubnetGroup"]
    return Result(name, {"name": name, "arn": group.get("DBSubnetGroupArn") or context.arn("rds", f"subgrp:{name}"),
                         "vpcId": group.get("VpcId", "")})


@materializes("aws:rds/roleAssociation:RoleAssociation")
def role_association(context: Context, request: Request) -> Result:
    """Recorded only: moto does not model instance roles, and the local PostgreSQL has no aws_s3 extension (people who
    load embeddings the lab's way need AWS; the loader Lambda is the local path)."""
    identifier, role_arn = request.get("dbInstanceIdentifier"), request.get("roleArn")
    context.client("iam").get_role(RoleName=str(role_arn).rsplit("/", 1)[-1])  # the role must exist, as on AWS
    return Result(f"{identifier},{role_arn}")


def stop_instances(state_dir: Path, *, remove_data: bool) -> list[str]:
    """Stop every local server that stands for an RDS instance (for `harness down`); returns their identifiers."""
    stopped = []
    root = rds_dir(state_dir)
    for record in sorted(root.glob("*/service.json")) if root.exists() else []:
        data = json.loads(record.read_text())
        if "dbname" in data:
            services.stop_postgres(services.PostgresService(**data))
        else:
            services.stop_mariadb(services.MariaDBService(**data))
        stopped.append(record.parent.name)
    if remove_data and root.exists():
        shutil.rmtree(root, ignore_errors=True)
    return stopped
