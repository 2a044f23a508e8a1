"""Configuration: the schema of every key (schema.py) and loading YAML + `-o` overrides into one
frozen, validated `Config` (loading.py)."""

from .loading import (config_from_dict, load_config, load_default_config, parse_override,
                      parse_yaml, save_config, shipped_configs, shipped_configs_folder)
from .schema import (SECTIONS, AugmentConfig, Config, DataConfig, ModelConfig, OptimConfig,
                     OutputConfig, TrainConfig, all_keys, check_config, to_plain)

__all__ = [
    "AugmentConfig", "Config", "DataConfig", "ModelConfig", "OptimConfig", "OutputConfig",
    "SECTIONS", "TrainConfig", "all_keys", "check_config", "config_from_dict", "load_config",
    "load_default_config", "parse_override", "parse_yaml", "save_config", "shipped_configs",
    "shipped_configs_folder", "to_plain",
]
