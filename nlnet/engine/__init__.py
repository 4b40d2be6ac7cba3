"""Training loops, CPU mixed precision, building a run's runner, checked runs and the tools'
``__main__``; importing this module registers them in mmengine."""
from .. import compat  # noqa: F401,I001  (first: the stack fixes before any mm import)
from .amp import CPUAmpOptimWrapper, amp_optim_wrapper
from .checked_runs import run_testing, run_training
from .command_line import run_tool_main
from .keyed_batches import KeyedBatchSampler, ReseedingDataset, SampleKey, reseed
from .loops import (ReproducibleEpochBasedTrainLoop, ReproducibleIterBasedTrainLoop,
                    keyed_dataloader, reproducible_train_cfg)
from .runner_build import build_datasets, build_runner

__all__ = [
    'CPUAmpOptimWrapper', 'amp_optim_wrapper', 'run_testing', 'run_training', 'run_tool_main',
    'KeyedBatchSampler', 'ReseedingDataset', 'SampleKey', 'reseed',
    'ReproducibleEpochBasedTrainLoop',
    'ReproducibleIterBasedTrainLoop', 'keyed_dataloader', 'reproducible_train_cfg',
    'build_datasets', 'build_runner'
]
