"""EC2 networking in moto: VPC, subnets, route tables and associations, internet gateway, security groups (inline
and separate rules) and VPC endpoints. Locally nothing is routed through them; they exist so every reference the
program makes (subnet ids on Glue connections and Lambdas, security groups on RDS) is a real, validated id."""

from __future__ import annotations

from typing import Any

from harness.emulator.materializers import Context, Request, Result, materializes, tags_list, without_none


def _tag(context: Context, resource_id: str, tags: dict[str, str] | None) -> None:
    if tags:
        context.client("ec2").create_tags(Resources=[resource_id], Tags=tags_list(tags))


def _exists(describe: Any, key: str, resource_id: str, id_key: str) -> bool:
    try:
        return bool(describe(**{id_key: [resource_id]})[key])
    except Exception:  # moto answers an unknown id with a NotFound error
        return False


@materializes("aws:ec2/vpc:Vpc")
def vpc(context: Context, request: Request) -> Result:
    ec2 = context.client("ec2")
    prior_id = request.prior.id if request.prior else None
    if prior_id and _exists(ec2.describe_vpcs, "Vpcs", prior_id, "VpcIds"):
        vpc_id = prior_id
    else:
        vpc_id = ec2.create_vpc(**without_none({"CidrBlock": request.get("cidrBlock"),
                                                "InstanceTenancy": request.get("instanceTenancy")}))["Vpc"]["VpcId"]
    for attribute in ("enableDnsSupport", "enableDnsHostnames"):
        if request.get(attribute) is not None:
            ec2.modify_vpc_attribute(VpcId=vpc_id, **{attribute[0].upper() + attribute[1:]:
                                                      {"Value": bool(request.get(attribute))}})
    _tag(context, vpc_id, request.get("tags"))
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                   {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
    acls = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                              {"Name": "default", "Values": ["true"]}])["NetworkAcls"]
    return Result(vpc_id, {
        "arn": context.arn("ec2", f"vpc/{vpc_id}"), "cidrBlock": request.get("cidrBlock"),
        "ownerId": context.account_id,
        "defaultSecurityGroupId": groups[0]["GroupId"] if groups else "",
        "mainRouteTableId": tables[0]["RouteTableId"] if tables else "",
        "defaultRouteTableId": tables[0]["RouteTableId"] if tables else "",
        "defaultNetworkAclId": acls[0]["NetworkAclId"] if acls else "",
    })


@materializes("aws:ec2/subnet:Subnet")
def subnet(context: Context, request: Request) -> Result:
    ec2 = context.client("ec2")
    prior_id = request.prior.id if request.prior else None
    if prior_id and _exists(ec2.describe_subnets, "Subnets", prior_id, "SubnetIds"):
        subnet_id = prior_id
        description = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]
    else:
        description = ec2.create_subnet(**without_none({
            "VpcId": request.get("vpcId"), "CidrBlock": request.get("cidrBlock"),
            "AvailabilityZone": request.get("availabilityZone"),
            "AvailabilityZoneId": request.get("availabilityZoneId")}))["Subnet"]
        subnet_id = description["SubnetId"]
    if request.get("mapPublicIpOnLaunch") is not None:
        ec2.modify_subnet_attribute(SubnetId=subnet_id,
                                    MapPublicIpOnLaunch={"Value": bool(request.get("mapPublicIpOnLaunch"))})
    _tag(context, subnet_id, request.get("tags"))
    return Result(subnet_id, {"arn": context.arn("ec2", f"subnet/{subnet_id}"),
                              "availabilityZone": description["AvailabilityZone"],
                              "availabilityZoneId": description.get("AvailabilityZoneId", ""),
                              "ownerId": context.account_id})


@materializes("aws:ec2/internetGateway:InternetGateway")
def internet_gateway(context: Context, request: Request) -> Result:
    ec2 = context.client("ec2")
    prior_id = request.prior.id if request.prior else None
    if prior_id and _exists(ec2.describe_internet_gateways, "InternetGateways", prior_id, "InternetGatewayIds"):
        gateway_id = prior_id
    else:
        gateway_id = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        if request.get("vpcId"):
            ec2.attach_internet_gateway(InternetGatewayId=gateway_id, VpcId=request.get("vpcId"))
    _tag(context, gateway_id, request.get("tags"))
    return Result(gateway_id, {"arn": context.arn("ec2", f"internet-gateway/{gateway_id}"),
                               "ownerId": context.account_id})


@materializes("aws:ec2/routeTable:RouteTable")
def route_table(context: Context, request: Request) -> Result:
    ec2 = context.client("ec2")
    prior_id = request.prior.id if request.prior else None
    if prior_id and _exists(ec2.describe_route_tables, "RouteTables", prior_id, "RouteTableIds"):
        table_id = prior_id
    else:
        table_id = ec2.create_route_table(VpcId=request.get("vpcId"))["RouteTable"]["RouteTableId"]
    existing = {route.get("DestinationCidrBlock")
                for route in ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0]["Routes"]}
    for route in request.get("routes") or []:
        parameters = without_none({
            "RouteTableId": table_id, "DestinationCidrBlock": route.get("cidrBlock"),
            "GatewayId": route.get("gatewayId"), "NatGatewayId": route.get("natGatewayId"),
            "VpcEndpointId": route.get("vpcEndpointId"), "TransitGatewayId": route.get("transitGatewayId")})
        if route.get("cidrBlock") in existing:
            ec2.replace_route(**parameters)
        else:
            ec2.create_route(**parameters)
    _tag(context, table_id, request.get("tags"))
    return Result(table_id, {"arn": context.arn("ec2", f"route-table/{table_id}"), "ownerId": context.account_id})


@materializes("aws:ec2/routeTableAssociation:RouteTableAssociation")
def route_table_association(context: Context, request: Request) -> Result:
    ec2 = context.client("ec2")
    if request.prior is not None:
        try:
            ec2.disassociate_route_table(AssociationId=request.prior.id)
        except Exception:  # already gone with its route table
            pass
    association = ec2.associate_route_table(**without_none({
        "RouteTableId": request.get("routeTableId"), "SubnetId": request.get("subnetId"),
        "GatewayId": request.get("gatewayId")}))
    return Result(association["AssociationId"])


def _permissions(rules: list[dict[str, Any]], group_id: str) -> list[dict[str, Any]]:
    """Inline `ingress`/`egress` arguments as EC2 IpPermissions (pure)."""
    permissions = []
    for rule in rules:
        protocol = str(rule.get("protocol", "-1"))
        description = rule.get("description")
        pairs = [without_none({"GroupId": group, "Description": description})
                 for group in (rule.get("securityGroups") or [])]
        if rule.get("self"):
            pairs.append(without_none({"GroupId": group_id, "Description": description}))
        permissions.append(without_none({
            "IpProtocol": "-1" if protocol in ("-1", "all") else protocol,
            "FromPort": None if protocol in ("-1", "all") else rule.get("fromPort"),
            "ToPort": None if protocol in ("-1", "all") else rule.get("toPort"),
            "IpRanges": [without_none({"CidrIp": cidr, "Description": description})
                         for cidr in rule.get("cidrBlocks") or []],
            "Ipv6Ranges": [without_none({"CidrIpv6": cidr, "Description": description})
                           for cidr in rule.get("ipv6CidrBlocks") or []],
            "PrefixListIds": [without_none({"PrefixListId": p, "Description": description})
                              for p in rule.get("prefixListIds") or []],
            "UserIdGroupPairs": pairs,
        }))
    return permissions


@materializes("aws:ec2/securityGroup:SecurityGroup")
def security_group(context: Context, request: Request) -> Result:
    ec2 = context.client("ec2")
    name = request.physical_name("name", max_length=255)
    prior_id = request.prior.id if request.prior else None
    if prior_id and _exists(ec2.describe_security_groups, "SecurityGroups", prior_id, "GroupIds"):
        group_id = prior_id
    else:
        group_id = ec2.create_security_group(**without_none({
            "GroupName": name, "Description": request.get("description", "Managed by Pulumi"),
            "VpcId": request.get("vpcId")}))["GroupId"]
    # As the provider does: the rules are exactly the inline ones (AWS's default allow-all egress is removed).
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    for key, revoke in (("IpPermissions", ec2.revoke_security_group_ingress),
                        ("IpPermissionsEgress", ec2.revoke_security_group_egress)):
        if group.get(key):
            revoke(GroupId=group_id, IpPermissions=group[key])
    if request.get("ingress"):
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=_permissions(request.get("ingress"),
                                                                                          group_id))
    if request.get("egress"):
        ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=_permissions(request.get("egress"),
                                                                                         group_id))
    _tag(context, group_id, request.get("tags"))
    return Result(group_id, {"name": name, "arn": context.arn("ec2", f"security-group/{group_id}"),
                             "ownerId": context.account_id})


@materializes("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
              "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
def security_group_rule(context: Context, request: Request) -> Result:
    ec2 = context.client("ec2")
    egress = request.type.endswith("EgressRule")
    protocol = str(request.get("ipProtocol", "-1"))
    permission = without_none({
        "IpProtocol": protocol, "FromPort": request.get("fromPort"), "ToPort": request.get("toPort"),
        "IpRanges": [without_none({"CidrIp": request.get("cidrIpv4"), "Description": request.get("description")})]
        if request.get("cidrIpv4") else None,
        "UserIdGroupPairs": [without_none({"GroupId": request.get("referencedSecurityGroupId"),
                                           "Description": request.get("description")})]
        if request.get("referencedSecurityGroupId") else None,
    })
    authorize = ec2.authorize_security_group_egress if egress else ec2.authorize_security_group_ingress
    try:
        response = authorize(GroupId=request.get("securityGroupId"), IpPermissions=[permission])
        rule_id = (response.get("SecurityGroupRules") or [{}])[0].get("SecurityGroupRuleId", "")
    except ec2.exceptions.ClientError as exc:
        if "Duplicate" not in str(exc) or request.prior is None:
            raise
        rule_id = request.prior.id
    return Result(rule_id or f"sgr-{request.name}", {"securityGroupRuleId": rule_id,
                                                     "arn": context.arn("ec2", f"security-group-rule/{rule_id}")})


@materializes("aws:ec2/vpcEndpoint:VpcEndpoint")
def vpc_endpoint(context: Context, request: Request) -> Result:
    ec2 = context.client("ec2")
    prior_id = request.prior.id if request.prior else None
    if prior_id and _exists(ec2.describe_vpc_endpoints, "VpcEndpoints", prior_id, "VpcEndpointIds"):
        endpoint_id = prior_id
        ec2.modify_vpc_endpoint(**without_none({"VpcEndpointId": endpoint_id,
                                                "PolicyDocument": request.get("policy")}))
    else:
        endpoint_id = ec2.create_vpc_endpoint(**without_none({
            "VpcId": request.get("vpcId"), "ServiceName": request.get("serviceName"),
            "VpcEndpointType": request.get("vpcEndpointType", "Gateway"),
            "RouteTableIds": list(request.get("routeTableIds") or []),
            "SubnetIds": list(request.get("subnetIds") or []),
            "SecurityGroupIds": list(request.get("securityGroupIds") or []),
            "PrivateDnsEnabled": request.get("privateDnsEnabled"), "PolicyDocument": request.get("policy"),
        }))["VpcEndpoint"]["VpcEndpointId"]
    _tag(context, endpoint_id, request.get("tags"))
    return Result(endpoint_id, {"arn": context.arn("ec2", f"vpc-endpoint/{endpoint_id}"),
                                "ownerId": context.account_id, "state": "available"})


# ---- data sources ----------------------------------------------------------------------------------------------------

def get_availability_zones(context: Context, args: dict[str, Any]) -> dict[str, Any]:
    zones = context.client("ec2").describe_availability_zones()["AvailabilityZones"]
    zones = [zone for zone in zones if zone.get("State", "available") == (args.get("state") or zone.get("State"))]
    return {"id": context.region, "names": [zone["ZoneName"] for zone in zones],
            "zoneIds": [zone.get("ZoneId", "") for zone in zones], "groupNames": [context.region]}


def _filters(args: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"Name": f["name"], "Values": list(f["values"])} for f in args.get("filters") or []]


def get_subnet(context: Context, args: dict[str, Any]) -> dict[str, Any]:
    ec2 = context.client("ec2")
    parameters: dict[str, Any] = {"Filters": _filters(args)}
    if args.get("id"):
        parameters["SubnetIds"] = [args["id"]]
    subnets = ec2.describe_subnets(**parameters)["Subnets"]
    if len(subnets) != 1:
        raise LookupError(f"aws.ec2.get_subnet({args}) matched {len(subnets)} subnets, not exactly one")
    found = subnets[0]
    return {"id": found["SubnetId"], "arn": context.arn("ec2", f"subnet/{found['SubnetId']}"),
            "availabilityZone": found["AvailabilityZone"], "availabilityZoneId": found.get("AvailabilityZoneId", ""),
            "cidrBlock": found["CidrBlock"], "vpcId": found["VpcId"], "ownerId": context.account_id,
            "mapPublicIpOnLaunch": found.get("MapPublicIpOnLaunch", False), "state": found.get("State", "available")}


def get_vpc(context: Context, args: dict[str, Any]) -> dict[str, Any]:
    ec2 = context.client("ec2")
    parameters: dict[str, Any] = {"Filters": _filters(args)}
    if args.get("id"):
        parameters["VpcIds"] = [args["id"]]
    if args.get("default"):
        parameters["Filters"].append({"Name": "is-default", "Values": ["true"]})
    vpcs = ec2.describe_vpcs(**parameters)["Vpcs"]
    if len(vpcs) != 1:
        raise LookupError(f"aws.ec2.get_vpc({args}) matched {len(vpcs)} VPCs, not exactly one")
    found = vpcs[0]
    return {"id": found["VpcId"], "arn": context.arn("ec2", f"vpc/{found['VpcId']}"), "cidrBlock": found["CidrBlock"],
            "default": found.get("IsDefault", False), "ownerId": context.account_id,
            "state": found.get("State", "available")}
