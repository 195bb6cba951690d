"""The AWS emulator: runs the Pulumi program under mocks that create each resource in moto and in local database
servers, and completes behind AWS's own APIs what AWS would do (Lambda invocations, Function URLs, Firehose delivery).
Workflows never import this package; they reach a stack through its outputs and AWS's APIs."""
