"""ClinicFlow: a multi-tenant backend API for health practices."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("clinicflow")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
