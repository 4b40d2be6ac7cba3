"""Samples read by key: numbered batches, skipped batches, draws fixed by the key."""
import random

import numpy as np
import pytest
import torch
from mmengine.dataset import DefaultSampler
from torch.utils.data import BatchSampler, DataLoader, Dataset

from nlnet.engine import KeyedBatchSampler, ReseedingDataset, SampleKey


class RandomDraws(Dataset):
    """Each item: its index and one draw of python, numpy and torch randomness."""

    metainfo = dict(classes=('a', 'b'))

    def __len__(self):
        return 6

    def __getitem__(self, index):
        return index, random.random(), float(np.random.rand()), float(torch.rand(()))


def keyed_batches(seed=0, batch_size=2):
    sampler = DefaultSampler(RandomDraws(), shuffle=True, seed=seed)
    return KeyedBatchSampler(BatchSampler(sampler, batch_size, drop_last=False))


def test_batches_are_numbered_on_across_passes_and_a_started_pass_skips_its_first_batches():
    batches = keyed_batches()
    first_pass = list(batches)
    assert [[key.batch for key in batch] for batch in first_pass] == [[0, 0], [1, 1], [2, 2]]
    assert [[key.slot for key in batch] for batch in first_pass] == [[0, 1]] * 3
    assert [batch[0].batch for batch in batches] == [3, 4, 5]

    batches.start(0, skip=2)
    assert list(batches) == first_pass[2:]
    assert [batch[0].batch for batch in batches] == [3, 4, 5]  # the skip holds for one pass
    batches.start(6)
    assert [batch[0].batch for batch in batches] == [6, 7, 8]
    assert len(batches) == 3 and batches.batch_size == 2


def test_start_refuses_negative_numbers():
    batches = keyed_batches()
    with pytest.raises(ValueError, match='first_batch must be >= 0, got -1'):
        batches.start(-1)
    with pytest.raises(ValueError, match='skip must be >= 0, got -2'):
        batches.start(0, skip=-2)


def test_set_epoch_reaches_the_index_sampler():
    batches = keyed_batches()
    epoch0 = [key.index for batch in batches for key in batch]
    batches.sampler.set_epoch(1)
    batches.start(0)
    epoch1 = [key.index for batch in batches for key in batch]
    assert sorted(epoch0) == sorted(epoch1) == list(range(6)) and epoch0 != epoch1


def test_draws_depend_on_the_key_alone_in_workers_as_in_the_main_process():
    dataset = ReseedingDataset(RandomDraws(), seed=3, rank=0)
    random.seed(123)
    np.random.seed(123)
    first = dataset[SampleKey(batch=5, slot=1, index=2)]
    random.random(), np.random.rand(), torch.rand(())  # any state in between
    assert dataset[SampleKey(batch=5, slot=1, index=2)] == first
    assert dataset[SampleKey(batch=5, slot=0, index=2)][1:] != first[1:]
    assert ReseedingDataset(RandomDraws(), seed=3, rank=1)[SampleKey(5, 1, 2)][1:] != first[1:]
    assert dataset.metainfo == RandomDraws.metainfo and len(dataset) == 6

    in_main = list(DataLoader(dataset, batch_sampler=keyed_batches(), collate_fn=list))
    in_workers = list(DataLoader(dataset, batch_sampler=keyed_batches(), collate_fn=list,
                                 num_workers=2))
    assert in_main == in_workers
