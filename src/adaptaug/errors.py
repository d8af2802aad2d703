"""Errors the product raises for bad input; the CLI turns them into one clear line and exit code 2."""


class AdaptaugError(Exception):
    """Base class: a problem with the user's input or configuration, not a bug."""


class DataError(AdaptaugError, ValueError):
    """A data path, file or array that cannot be used (missing, corrupt, wrong shape, bad labels)."""


class ConfigError(AdaptaugError, ValueError):
    """An unknown name or an out-of-range setting (task, policy, op, epochs, learning rate...)."""


class OfflineError(AdaptaugError, RuntimeError):
    """A hub download was needed but the machine is offline; the message says how to use a local copy."""
