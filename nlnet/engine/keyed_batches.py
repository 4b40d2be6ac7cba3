"""Random draws of a training sample as a function of its place in training alone.

A resumed run must draw the same augmentation, broken-video replacement and
dropout numbers as the uninterrupted run. The generators that feed those draws
live in the main process and in the dataloader workers, whose state after a
restart is not the state they had at that point of the uninterrupted run
(persistent workers carry it across epochs; fresh workers start from their
init seed). Here every sample is drawn after reseeding python, numpy and torch
from ``(seed, rank, batch number, slot in the batch)``: the batch sampler hands
the dataset a :class:`SampleKey` instead of a bare index, and the dataset
wrapper reseeds before it reads the sample, in whichever process that is.
"""
import random
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

# Separate streams for a training step and for a sample, which share the batch number.
STEP_STREAM, SAMPLE_STREAM = 0, 1


def reseed(seed, rank, *key):
    """Seed python, numpy and torch from ``(seed, rank, *key)`` alone.

    Args:
        seed (int): the run's seed.
        rank (int): the process rank.
        *key (int): the place in training, e.g. ``(STEP_STREAM, iteration)``.
    """
    value = int(np.random.SeedSequence([seed, rank, *key]).generate_state(1)[0])
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


class SampleKey(NamedTuple):
    """A dataset index with the place of its sample in training."""

    batch: int
    slot: int
    index: int


class KeyedBatchSampler(Sampler):
    """Yields the batches of ``batch_sampler`` as lists of :class:`SampleKey`.

    A batch's number is the training iteration it feeds: numbers run on from
    one pass to the next, and :meth:`start` sets where a pass begins.

    Args:
        batch_sampler (Iterable[list[int]]): the loader's batch sampler (with
            a ``sampler`` attribute, as torch's and mmengine's have).
    """

    def __init__(self, batch_sampler):
        self.batch_sampler = batch_sampler
        self._next_batch = 0
        self._skip = 0

    def start(self, first_batch, skip=0):
        """Number the next pass's batches from ``first_batch`` and leave out its first ``skip``.

        The skipped batches are numbered and dropped without being read, which is
        how a run resumed inside an epoch leaves out what it trained before the
        interruption. The skip holds for that one pass.

        Args:
            first_batch (int): the number of the pass's first batch, >= 0.
            skip (int): how many batches at the start of the pass to leave out, >= 0.
        """
        if first_batch < 0:
            raise ValueError(f'first_batch must be >= 0, got {first_batch}')
        if skip < 0:
            raise ValueError(f'skip must be >= 0, got {skip}')
        self._next_batch, self._skip = first_batch, skip

    @property
    def sampler(self):
        """The index sampler, where hooks call ``set_epoch``."""
        return self.batch_sampler.sampler

    @property
    def batch_size(self):
        return self.batch_sampler.batch_size

    def __len__(self):
        return len(self.batch_sampler)

    def __iter__(self):
        skip, self._skip = self._skip, 0
        for position, indices in enumerate(self.batch_sampler):
            batch, self._next_batch = self._next_batch, self._next_batch + 1
            if position >= skip:
                yield [SampleKey(batch, slot, index) for slot, index in enumerate(indices)]


class ReseedingDataset(Dataset):
    """``dataset`` read by :class:`SampleKey`, reseeding before every sample.

    Attributes other than the read are those of ``dataset``.

    Args:
        dataset (Dataset): the training dataset.
        seed (int): the run's seed.
        rank (int): the process rank.
    """

    def __init__(self, dataset, seed, rank):
        self.dataset = dataset
        self.seed = seed
        self.rank = rank

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        reseed(self.seed, self.rank, SAMPLE_STREAM, key.batch, key.slot)
        return self.dataset[key.index]

    def __getattr__(self, name):
        # Only called for names not found on the wrapper; 'dataset' is looked up
        # before __init__ sets it while the wrapper is unpickled in a worker.
        if name == 'dataset':
            raise AttributeError(name)
        return getattr(self.dataset, name)
