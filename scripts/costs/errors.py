"""The calculator's one error type, in its own module so that every module can raise it."""


class CostError(Exception):
    """Input the user must fix; printed as one line, never as a traceback."""
