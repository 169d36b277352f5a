"""Data: obtain, verify, extract and pack CIFAR-100 (or the synthetic fixture); the device-resident loader."""

from msga.infra.errors import Failure


class FetchError(Failure):
    """The data could not be obtained, verified, extracted or loaded; nothing half-made was left behind."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient  # another attempt may succeed (a dropped connection, a 5xx)
