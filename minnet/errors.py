"""The one exception users see: bad input, said in a sentence that names the fix."""


class MinnetError(ValueError):
    """Bad input (a data file, a spec, a flag) or a failed safety check.

    The message is one line: what was found, where, and what to do instead.
    The CLI prints it and exits with code 2.
    """


class AuditError(MinnetError):
    """A trainable parameter is missing from the optimizer, got no gradient, or never moved."""
