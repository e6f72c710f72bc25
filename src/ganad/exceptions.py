"""Errors raised by ganad; all input problems are ``ValueError`` subclasses."""


class NotFittedError(ValueError, AttributeError):
    """A detector was asked to score before ``fit`` was called."""


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite during training."""
