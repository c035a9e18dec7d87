"""The failures a user can act on, apart from bugs.

Everything raised as a HybridScorerError is expected: bad data, bad input, a setting that cannot work,
a file that is not there, a model that does not fit the LLM it would be served with. Its message names
what is wrong and how to fix it, and the CLI prints it as one line (exit 2). Anything else is a bug
and keeps its traceback. Each class also derives from the builtin a caller would expect
(ValueError, FileNotFoundError), so `except ValueError` keeps working."""


class HybridScorerError(Exception):
    """An expected, user-facing failure; the message says what is wrong and what to do."""


class ConfigurationError(HybridScorerError, ValueError):
    """A flag, setting, LLM spec or feature group that cannot work as given."""


class MissingArtifactError(HybridScorerError, FileNotFoundError):
    """A file the command needs is not there: the data, a trained model, a prompt, the GGUF, a log."""


class ModelMismatchError(HybridScorerError, ValueError):
    """The LLM setup (or its embedding width) serving would use is not the one the model was trained with."""


class StoreUnavailableError(HybridScorerError, ConnectionError):
    """The outcome store's database cannot be reached (or refused the write): retry later."""
