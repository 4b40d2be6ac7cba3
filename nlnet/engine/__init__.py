"""Training loops, hooks and checked runs; importing this module registers them in mmengine."""
from .checked_runs import run_testing, run_training
from .checkpoint_check_hook import CheckpointCheckHook
from .keyed_batches import KeyedBatchSampler, ReseedingDataset, SampleKey, reseed
from .loops import (ReproducibleEpochBasedTrainLoop, ReproducibleIterBasedTrainLoop,
                    keyed_dataloader, reproducible_train_cfg)

__all__ = [
    'run_testing', 'run_training', 'CheckpointCheckHook', 'KeyedBatchSampler',
    'ReseedingDataset', 'SampleKey', 'reseed', 'ReproducibleEpochBasedTrainLoop',
    'ReproducibleIterBasedTrainLoop', 'keyed_dataloader', 'reproducible_train_cfg'
]
