"""Configuration: the settings table and configuration files.

``dastrax.config`` keeps the names of the configuration-file module it was before it became a
package (:mod:`dastrax.config.files`).
"""

from __future__ import annotations

from dastrax.config.files import (
    DEFAULT_CONFIG_PATH,
    ENV_VAR,
    Settings,
    config_path,
    import_plugin,
    load_config,
)

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ENV_VAR",
    "Settings",
    "config_path",
    "import_plugin",
    "load_config",
]
