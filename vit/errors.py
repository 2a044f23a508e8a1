"""Errors a user can cause, each carrying the one line the command line prints.

Library code raises these for mistakes in input, configuration or files; `vit.cli` turns them into
one line on stderr and exit code 2, so users never see a traceback for their own mistake. Where
one line cannot say everything (which tensors of a checkpoint do not fit), `details` holds a
table that is printed under the line.
"""


class VitError(Exception):
    """A user-facing error: what went wrong and how to fix it, in one line.

    Args:
        message: what went wrong, naming the input.
        hint: how to fix it.
        details: optional lines shown under the message (a table of differences).
    """

    def __init__(self, message: str, hint: str = "", details: str = ""):
        self.message = message
        self.hint = hint
        self.details = details
        super().__init__(f"{message}; {hint}" if hint else message)


class ModelError(VitError, ValueError):
    """An unknown model name or an input the model cannot take."""


class ConfigError(VitError, ValueError):
    """An unknown config key, a wrong type or an impossible value."""


class DataError(VitError):
    """A data set that cannot be read, split or downloaded as configured."""


class CheckpointError(VitError):
    """A checkpoint that is missing, corrupt, unsafe or made for another model."""
