"""The one error users see for bad input."""


class AuditInputError(ValueError):
    """Bad input: says what is wrong, where, and how to fix it.

    Raised at the edges (loading data, models, configs) so that users never see a deep
    traceback from JAX. The CLI turns it into a one-line message and exit code 2.
    """
