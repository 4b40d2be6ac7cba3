"""Why a checkpoint file was refused: the errors of nlnet's checkpoint readers.

A leaf module (it imports nothing of nlnet), so the readers
(:mod:`nlnet.checkpoint_loading`, :mod:`nlnet.converters`) and the checks that
report their refusals (:mod:`nlnet.utils.checkpoint_checks`) share the classes
without importing each other.
"""
import pickle

__all__ = ['UnsafeCheckpointError', 'CorruptCheckpointError']


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds a Python global outside the allow-list."""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file is truncated or not a torch checkpoint."""
