"""Loading a config: built-in defaults <- a YAML file <- `-o section.key=value` overrides.

Flow is one way (docs/configs.md): the schema's defaults (schema.py), then the YAML file
(the shipped `default.yaml` when the tools get no -c), then the overrides, validated key by key
before anything runs. YAML is read with YAML 1.2 scalars, so `1e-3` is a number and only
true/false are booleans.
"""

import dataclasses
import difflib
import re
import typing
from pathlib import Path
from typing import Iterable, Optional, Union

import yaml

from ..errors import ConfigError
from .schema import SECTIONS, Config, all_keys, check_config, to_plain

# --- YAML with the YAML 1.2 scalars people expect -------------------------------------------
class _YamlLoader(yaml.SafeLoader):
    """SafeLoader where `1e-3` is a float (PyYAML 1.1 reads a string) and only true/false are
    booleans (PyYAML reads `on`, `off`, `yes`, `no` as booleans)."""


_REPLACED = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:float", "tag:yaml.org,2002:int"}
_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver("tag:yaml.org,2002:bool",
                                  re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                  list("tTfF"))
_YamlLoader.add_implicit_resolver("tag:yaml.org,2002:int",
                                  re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"), list("-+0123456789"))
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?[0-9][0-9_]*(?:\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)
                  |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def parse_yaml(text: str, source: str = "<text>"):
    """Parse YAML text with YAML 1.2 scalars; a syntax error names the source."""
    try:
        return yaml.load(text, Loader=_YamlLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{source} is not valid YAML{where}",
                          f"fix the syntax ({getattr(error, 'problem', error)})") from None


# --- validation -------------------------------------------------------------------------------
def _type_name(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union:
        return " or ".join("null" if a is type(None) else _type_name(a) for a in args)
    if origin in (tuple, list):
        return f"a list of {_PLURALS[args[0]]}"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[hint]


_PLURALS = {int: "integers", float: "numbers", bool: "booleans", str: "strings"}


def _coerce(value, hint):
    """Return `value` as `hint` requires, or raise TypeError."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union:
        for option in args:
            if option is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(value, option)
            except TypeError:
                pass
        raise TypeError
    if origin in (tuple, list):
        if isinstance(value, str) and args[0] is str:
            value = [value]  # -o train.compare_with=output/run1 means a list of one
        if not isinstance(value, (list, tuple)):
            raise TypeError
        return tuple(_coerce(item, args[0]) for item in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    raise TypeError


def _closest_key(key: str) -> str:
    keys = all_keys() + list(SECTIONS)
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.5)
    return f"did you mean '{close[0]}'?" if close else "see docs/configs.md for the valid keys"


def _build_section(section: str, values: dict, origins: dict):
    cls = SECTIONS[section]
    hints = typing.get_type_hints(cls)
    fields_ = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in values.items():
        key = f"{section}.{name}"
        where = origins.get(key, "")
        if name not in fields_:
            raise ConfigError(f"unknown key '{key}'{where}", _closest_key(key))
        try:
            kwargs[name] = _coerce(value, hints[name])
        except TypeError:
            raise ConfigError(f"{key} must be {_type_name(hints[name])}, got {value!r}{where}",
                              f"for example -o {key}={_example(fields_[name])}") from None
        choices = fields_[name].metadata.get("choices")
        if choices and kwargs[name] is not None and kwargs[name] not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(choices)}, got {value!r}{where}",
                              _choice_hint(kwargs[name], choices))
    return cls(**kwargs)


def _example(key_field) -> str:
    default = (key_field.default if key_field.default is not dataclasses.MISSING
               else key_field.default_factory())
    return yaml.safe_dump(to_plain(default), default_flow_style=True).strip().removesuffix("...").strip()


def _choice_hint(value, choices) -> str:
    close = difflib.get_close_matches(str(value), choices, n=1)
    return f"did you mean '{close[0]}'?" if close else f"choose one of {', '.join(choices)}"


def parse_override(text: str):
    """Split `section.key=value` on the first '=' and parse the value as a YAML scalar or list.

    Returns:
        (section, key, value)
    """
    if "=" not in text:
        raise ConfigError(f"override '{text}' has no '='", "write it as -o section.key=value")
    dotted, raw = text.split("=", 1)
    dotted = dotted.strip()
    if dotted.count(".") != 1:
        raise ConfigError(f"override key '{dotted}' must be section.key", _closest_key(dotted))
    section, name = dotted.split(".")
    value = parse_yaml(raw, source=f"-o {text}") if raw.strip() else None
    if isinstance(value, dict):
        raise ConfigError(f"-o {text} sets a mapping", "set one key at a time")
    return section, name, value


def shipped_configs_folder() -> Path:
    """The folder of the configs that come with vit-paddle.

    An installed wheel carries them as package data (`vit/configs/`, copied from the
    repository's `configs/` when the wheel is built); a checkout or an editable install reads
    the repository's `configs/` itself, so there is one copy to edit.
    """
    packaged = Path(__file__).resolve().parents[1] / "configs"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "configs"


def shipped_configs() -> dict:
    """Name (file stem) -> path of every shipped config, sorted by name."""
    return {path.stem: path for path in sorted(shipped_configs_folder().glob("*.yaml"))}


def load_default_config(overrides: Iterable[str] = ()) -> Config:
    """The config the tools use without -c: `default.yaml`, the CPU-sized digits run."""
    path = shipped_configs_folder() / "default.yaml"
    if not path.is_file():
        raise ConfigError(f"the default config {path} is missing",
                          "reinstall vit-paddle, or pass a config with -c FILE")
    return load_config(path, overrides)


def load_config(path: Optional[Union[str, Path]] = None, overrides: Iterable[str] = ()) -> Config:
    """Load a config: dataclass defaults <- YAML file `path` <- `overrides` ("a.b=value").

    Without `path` only the built-in defaults apply (neutral: no augmentation); the tools use
    `load_default_config` instead.

    Raises:
        ConfigError: for a missing file, invalid YAML, an unknown key, a wrong type or an
            impossible value, naming the key, what it expects and the closest valid key.
    """
    raw, origins = {}, {}
    name = "default"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file '{path}' does not exist",
                              "give a YAML file, e.g. -c configs/default.yaml")
        name = path.stem
        raw = parse_yaml(path.read_text(encoding="utf-8"), source=str(path)) or {}
        raw, origins = _sections_of(raw, f" in {path}")
    _apply_overrides(raw, origins, overrides)
    return _build_config(raw, origins, name)


def config_from_dict(raw: dict, name: str = "config", source: str = "a saved config",
                     overrides: Iterable[str] = ()) -> Config:
    """Rebuild and validate a Config from `Config.to_dict()` data (e.g. a checkpoint's), with
    `-o` style `overrides` applied on top."""
    raw, origins = _sections_of(raw, f" in {source}")
    _apply_overrides(raw, origins, overrides)
    return _build_config(raw, origins, name)


def _apply_overrides(raw: dict, origins: dict, overrides: Iterable[str]):
    for text in overrides:
        section, key, value = parse_override(text)
        if section not in SECTIONS:
            raise ConfigError(f"unknown key '{section}.{key}' in -o {text}",
                              _closest_key(f"{section}.{key}"))
        raw.setdefault(section, {})[key] = value
        origins[f"{section}.{key}"] = f" in -o {text}"


def _sections_of(raw, where: str):
    """Check the top level is a mapping of known sections; return (sections, key origins)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"the config{where} must hold a mapping of sections",
                          f"start it with one of: {', '.join(SECTIONS)}")
    origins = {}
    for section, values in raw.items():
        if section not in SECTIONS:
            raise ConfigError(f"unknown section '{section}'{where}", _closest_key(str(section)))
        if not isinstance(values, dict):
            raise ConfigError(f"section '{section}'{where} must be a mapping of keys",
                              f"indent its keys under '{section}:'")
        origins.update({f"{section}.{key}": where for key in values})
    return {section: dict(values) for section, values in raw.items()}, origins


def _build_config(raw: dict, origins: dict, name: str) -> Config:
    sections = {section: _build_section(section, raw.get(section, {}), origins)
                for section in SECTIONS}
    config = Config(name=name, given=frozenset(origins), **sections)
    check_config(config)
    return config


def save_config(config: Config, path: Union[str, Path]):
    """Write the resolved config as YAML that `load_config` reads back to an equal Config."""
    text = f"# resolved config of this run (from '{config.name}')\n"
    text += yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=None)
    Path(path).write_text(text, encoding="utf-8")
