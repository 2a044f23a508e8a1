"""Errors a user can cause, each carrying the one line the command line prints.

Library code raises these for mistakes in input, configuration or files; `vit.cli` turns them into
one line on stderr and exit code 2, so users never see a traceback for their own mistake. Where
one line cannot say everything (which tensors of a checkpoint do not fit), `details` holds a
table that is printed under the line.

The library names the parameters of its own functions, never a front end's controls: a message
marks a parameter with `param("precision")` (or a parameter set to a value, `param("precision",
"fp32")`), and each front end words the marks as its controls (`VitError.worded`: the command
line as flags, the web app as its fields). Printed as it is (`str`), a mark reads as the
parameter's name (`precision=fp32` with a value).
"""

import re
from typing import List, Mapping, Optional

_MARK = re.compile(r"\u27e8([A-Za-z_][A-Za-z0-9_.]*)(?:=([^\u27e9]*))?\u27e9")


def param(name: str, value: Optional[str] = None) -> str:
    """The mark of parameter `name` (set to `value`, if given) in an error's message or hint."""
    return f"\u27e8{name}\u27e9" if value is None else f"\u27e8{name}={value}\u27e9"


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
        super().__init__(self.worded({}))

    def worded(self, controls: Mapping[str, str]) -> str:
        """The one line, each mark worded by `controls`: a parameter set to a value by its
        `name=value` entry, else by the control of `name` followed by the value; a parameter
        `controls` does not name keeps its name."""
        def word(mark) -> str:
            name, value = mark.group(1), mark.group(2)
            if value is None:
                return controls.get(name, name)
            if f"{name}={value}" in controls:
                return controls[f"{name}={value}"]
            return f"{controls[name]} {value}" if name in controls else f"{name}={value}"

        text = f"{self.message}; {self.hint}" if self.hint else self.message
        return _MARK.sub(word, text)

    @property
    def parameters(self) -> List[str]:
        """The parameters the message and hint mark, in order (`name=value` where a mark sets
        a value)."""
        return [mark.group(1) if mark.group(2) is None else f"{mark.group(1)}={mark.group(2)}"
                for mark in _MARK.finditer(f"{self.message} {self.hint}")]

    def __str__(self) -> str:
        return self.worded({})


class ModelError(VitError, ValueError):
    """An unknown model name or an input the model cannot take."""


class ConfigError(VitError, ValueError):
    """An unknown config key, a wrong type or an impossible value."""


class DataError(VitError):
    """A data set that cannot be read, split or downloaded as configured."""


class CheckpointError(VitError):
    """A checkpoint that is missing, corrupt, unsafe or made for another model."""
