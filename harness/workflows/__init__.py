"""The platform's workflows (seed, batch, train, load, stream, redrive, demo, soak): what a user does with a deployed
stack, locally or on AWS."""
