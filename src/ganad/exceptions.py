"""Errors raised by ganad; all input problems are ``ValueError`` subclasses."""


class NotFittedError(ValueError, AttributeError):
    """A detector was asked to score before ``fit`` was called."""


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite during training."""


class DistributedError(RuntimeError):
    """A collective of a torchrun run failed: another process died or stopped answering,
    or the processes disagree (:mod:`ganad.distributed`)."""


class NoAnomalyMapError(ValueError):
    """``anomaly_map`` was asked of a detector that does not reconstruct its input."""
