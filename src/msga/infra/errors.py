"""The one base of every failure the command line reports as a message (exit status 1), not a
traceback: each says what went wrong, that nothing half-made was left, and what to do."""


class Failure(RuntimeError):
    pass
