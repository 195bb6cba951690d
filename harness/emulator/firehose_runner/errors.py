"""The Firehose runner's errors: a configuration it cannot emulate, a failed invocation, a crash on purpose."""

from __future__ import annotations


class FirehoseConfigError(ValueError):
    """The delivery stream uses a feature this runner does not emulate, or its configuration is malformed."""


class ProcessorError(Exception):
    """A failed invocation with Firehose's error code: raised by an `invoke` callable (the control plane's, when the
    function fails) and by the response check (`Lambda.MissingRecordId`, ...); either way the batch is retried."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RunnerCrashed(Exception):
    """The runner was crashed on purpose (`crash()`): nothing after that moment reaches S3 or the state file."""
