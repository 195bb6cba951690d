"""The local stack: the platform's program, Glue script and Lambda code on one machine, no AWS account."""
