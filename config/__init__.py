"""One settings object for the whole platform: environment first, then local defaults."""

from config.settings import Settings, SettingsError, load_settings

__all__ = ["Settings", "SettingsError", "load_settings"]
