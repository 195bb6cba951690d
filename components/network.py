"""`Network`: the VPC the data services live in, created (2 AZs, private subnets, endpoints) or attached (lab mode)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import defaults
from components.config import NetworkConfig
from components.stack_context import StackContext

# Interface endpoints private Lambdas and Glue need when the VPC has no NAT gateway (a NAT costs more than the stack).
INTERFACE_ENDPOINT_SERVICES = ("secretsmanager", "logs", "glue", "kinesis-streams", "sts")


def name_tags(context: StackContext, purpose: str) -> dict[str, str]:
    # EC2 shows the Name tag as the resource's name in the console.
    return {**context.tags, "Name": context.name(purpose, "glue")}


def subnet_cidrs(vpc_cidr: str, count: int) -> list[str]:
    """The first `count` equal subnets of the VPC, each a sixteenth of it (never smaller than /28)."""
    network = ipaddress.ip_network(vpc_cidr)
    new_prefix = min(network.prefixlen + 4, 28)
    subnets = network.subnets(new_prefix=new_prefix)
    return [str(next(subnets)) for _ in range(count)]


@dataclass(frozen=True)
class NetworkArgs:
    config: NetworkConfig
    # The vector DB is opened to CIDRs (lab style): it then needs public subnets with an internet gateway.
    public_subnets: bool


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    vpc_cidr: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    public_subnet_ids: pulumi.Output[list[str]]
    availability_zones: pulumi.Output[list[str]]
    lambda_security_group_id: pulumi.Output[str]
    glue_security_group_id: pulumi.Output[str]

    def __init__(self, name: str, context: StackContext, args: NetworkArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("recsys:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config = args.config

        if config.vpc_id is None:
            self._create(name, context, args, child)
        else:
            self.vpc_id = pulumi.Output.from_input(config.vpc_id)
            self.private_subnet_ids = pulumi.Output.from_input(list(config.subnet_ids))
            # Lab mode: the given subnets are also where a publicly accessible database would live.
            self.public_subnet_ids = self.private_subnet_ids
            looked_up = [aws.ec2.get_subnet_output(id=subnet_id, opts=pulumi.InvokeOutputOptions(parent=self))
                         for subnet_id in config.subnet_ids]
            self.availability_zones = pulumi.Output.all(*[s.availability_zone for s in looked_up])
            self.vpc_cidr = aws.ec2.get_vpc_output(id=config.vpc_id,
                                                   opts=pulumi.InvokeOutputOptions(parent=self)).cidr_block

        # Lambdas reach the databases and AWS APIs; nothing reaches them (Function URLs do not use the VPC).
        self.lambda_security_group = aws.ec2.SecurityGroup(
            f"{name}-lambda-sg",
            tags=context.tags,
            name=context.name("lambda", "security-group"),
            description="recsys Lambda functions: no ingress, egress to the VPC and HTTPS",
            vpc_id=self.vpc_id,
            egress=[
                aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=443, to_port=443,
                                                cidr_blocks=["0.0.0.0/0"], description="AWS APIs over HTTPS"),
                aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=defaults.VECTOR_DB_PORT,
                                                to_port=defaults.VECTOR_DB_PORT, cidr_blocks=[self.vpc_cidr],
                                                description="vector DB"),
                aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=defaults.SOURCE_DB_PORT,
                                                to_port=defaults.SOURCE_DB_PORT, cidr_blocks=[self.vpc_cidr],
                                                description="source DB"),
            ],
            opts=child,
        )
        # Glue requires a security group that admits all TCP from itself (its workers talk to each other).
        self.glue_security_group = aws.ec2.SecurityGroup(
            f"{name}-glue-sg",
            tags=context.tags,
            name=context.name("glue", "security-group"),
            description="recsys Glue job: self-referencing, egress to the VPC and HTTPS",
            vpc_id=self.vpc_id,
            ingress=[aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=0, to_port=65535, self=True,
                                                      description="Glue workers")],
            egress=[
                aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=0, to_port=65535, self=True,
                                                description="Glue workers"),
                aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=443, to_port=443,
                                                cidr_blocks=["0.0.0.0/0"], description="S3 and AWS APIs"),
                aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=0, to_port=65535,
                                                cidr_blocks=[self.vpc_cidr], description="JDBC source in the VPC"),
            ],
            opts=child,
        )
        self.lambda_security_group_id = self.lambda_security_group.id
        self.glue_security_group_id = self.glue_security_group.id

        if config.vpc_id is None:
            self._endpoints(name, context, child)

        self.register_outputs({
            "vpc_id": self.vpc_id,
            "private_subnet_ids": self.private_subnet_ids,
            "public_subnet_ids": self.public_subnet_ids,
            "availability_zones": self.availability_zones,
            "lambda_security_group_id": self.lambda_security_group_id,
            "glue_security_group_id": self.glue_security_group_id,
        })

    def _create(self, name: str, context: StackContext, args: NetworkArgs, child: pulumi.ResourceOptions) -> None:
        config = args.config
        zones = aws.get_availability_zones_output(state="available", opts=pulumi.InvokeOutputOptions(parent=self))
        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=config.vpc_cidr, enable_dns_hostnames=True,
                          enable_dns_support=True, tags=name_tags(context, "vpc"), opts=child)
        self.vpc_id = vpc.id
        self.vpc_cidr = vpc.cidr_block
        count = defaults.AVAILABILITY_ZONE_COUNT
        cidrs = subnet_cidrs(config.vpc_cidr, 2 * count)
        zone_names = [zones.names[index] for index in range(count)]
        self.availability_zones = pulumi.Output.all(*zone_names)

        self.private_route_table = aws.ec2.RouteTable(f"{name}-private-rt", vpc_id=vpc.id,
                                                      tags=name_tags(context, "private"), opts=child)
        private = []
        for index in range(count):
            subnet = aws.ec2.Subnet(f"{name}-private-{index}", vpc_id=vpc.id, cidr_block=cidrs[index],
                                    availability_zone=zone_names[index], map_public_ip_on_launch=False,
                                    tags=name_tags(context, f"private-{index}"), opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-private-{index}-rt", subnet_id=subnet.id,
                                          route_table_id=self.private_route_table.id, opts=child)
            private.append(subnet.id)
        self.private_subnet_ids = pulumi.Output.all(*private)

        if not args.public_subnets:
            self.public_subnet_ids = pulumi.Output.from_input([])
            return
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=context.tags, opts=child)
        public_route_table = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=gateway.id)],
            tags=name_tags(context, "public"), opts=child)
        public = []
        for index in range(count):
            subnet = aws.ec2.Subnet(f"{name}-public-{index}", vpc_id=vpc.id, cidr_block=cidrs[count + index],
                                    availability_zone=zone_names[index], map_public_ip_on_launch=False,
                                    tags=name_tags(context, f"public-{index}"), opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-public-{index}-rt", subnet_id=subnet.id,
                                          route_table_id=public_route_table.id, opts=child)
            public.append(subnet.id)
        self.public_subnet_ids = pulumi.Output.all(*public)

    def _endpoints(self, name: str, context: StackContext, child: pulumi.ResourceOptions) -> None:
        # Glue in a private subnet reads its script and writes the lake through this gateway endpoint.
        aws.ec2.VpcEndpoint(f"{name}-s3-endpoint", vpc_id=self.vpc_id, vpc_endpoint_type="Gateway",
                            service_name=f"com.amazonaws.{context.region}.s3",
                            route_table_ids=[self.private_route_table.id], tags=context.tags, opts=child)
        endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints-sg",
            tags=context.tags,
            name=context.name("endpoints", "security-group"),
            description="recsys interface endpoints: HTTPS from the VPC",
            vpc_id=self.vpc_id,
            ingress=[aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=443, to_port=443,
                                                      cidr_blocks=[self.vpc_cidr], description="HTTPS from the VPC")],
            opts=child,
        )
        for service in INTERFACE_ENDPOINT_SERVICES:
            aws.ec2.VpcEndpoint(f"{name}-{service}-endpoint", vpc_id=self.vpc_id, vpc_endpoint_type="Interface",
                                service_name=f"com.amazonaws.{context.region}.{service}", private_dns_enabled=True,
                                subnet_ids=self.private_subnet_ids, security_group_ids=[endpoint_sg.id],
                                tags=context.tags, opts=child)
