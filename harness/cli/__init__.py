"""One module per group of `python -m harness` commands; each defines `register(app)`."""
