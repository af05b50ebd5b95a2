"""One settings object for the whole platform: environment first, then local defaults."""

from config.settings import Settings, SettingsError, load_settings, sample_sources, uses_sample

__all__ = ["Settings", "SettingsError", "load_settings", "sample_sources", "uses_sample"]
