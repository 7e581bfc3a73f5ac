"""The error family of hpcsweep.

Library code raises these; only the command-line interface prints them, as one
``Error: ...`` line on stderr, and exits with the error's ``exit_code``.
"""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class HpcsweepError(Exception):
    """Base class of every error that hpcsweep reports to its user."""

    exit_code: int = EXIT_FAILURE


class UsageError(HpcsweepError):
    """Invalid input from the user: an option, a prior, a command or a name."""

    exit_code = EXIT_USAGE


class PriorError(UsageError):
    """A prior expression that cannot be parsed or whose arguments are invalid."""


class TemplateError(UsageError):
    """A configuration template that is missing, unreadable or malformed."""


class ExperimentNotFoundError(UsageError):
    """No experiment of that name exists under the store's root."""


class StoreError(HpcsweepError):
    """The store on disk cannot be read or written."""


class LockError(StoreError):
    """Another process holds the writer lock of an experiment."""


class SubmissionError(HpcsweepError):
    """The scheduler rejected a submission, or submission failed part way."""


class TrialFailedError(HpcsweepError):
    """An array task ran trials and at least one of them did not complete.

    Raised at the end of an array task so that the scheduler records the task
    as failed, which keeps ``sacct`` and ``hpcsweep status`` in agreement.
    """
