"""Training loops whose resumed runs continue exactly like uninterrupted ones.

A checkpoint restores weights, optimizer, schedulers and the iteration count,
but not the random generators behind augmentation, broken-sample replacement
and dropout, and mmengine's epoch loop restarts an interrupted epoch from its
first batch while keeping the iteration count (training that part twice).
These loops draw every sample and every training step from generators reseeded
by their place in training (:mod:`nlnet.engine.keyed_batches`), and an epoch
resumed from an iteration checkpoint leaves out the batches trained before the
interruption without reading them. The sampler order needs nothing more: it is
a function of the seed and the epoch, which mmengine restores.
"""
from mmengine.logging import print_log
from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from torch.utils.data import DataLoader

from .keyed_batches import STEP_STREAM, KeyedBatchSampler, ReseedingDataset, reseed

# mmengine's training loops and the reproducible loop that replaces each.
REPRODUCIBLE_LOOPS = {
    'EpochBasedTrainLoop': 'ReproducibleEpochBasedTrainLoop',
    'IterBasedTrainLoop': 'ReproducibleIterBasedTrainLoop',
}


def keyed_dataloader(runner, dataloader):
    """``dataloader`` (built from its config if needed) reading samples by :class:`SampleKey`.

    Args:
        runner (Runner): the runner, for the seed, the rank and the builder.
        dataloader (DataLoader | dict): the training dataloader or its config.

    Returns:
        DataLoader: the same loader settings over :class:`ReseedingDataset`
        and :class:`KeyedBatchSampler`.
    """
    if isinstance(dataloader, dict):
        randomness = runner.cfg.get('randomness') or {}
        dataloader = runner.build_dataloader(
            dataloader, seed=runner.seed, diff_rank_seed=randomness.get('diff_rank_seed', False))
    return DataLoader(
        ReseedingDataset(dataloader.dataset, runner.seed, runner.rank),
        batch_sampler=KeyedBatchSampler(dataloader.batch_sampler),
        num_workers=dataloader.num_workers,
        collate_fn=dataloader.collate_fn,
        pin_memory=dataloader.pin_memory,
        timeout=dataloader.timeout,
        worker_init_fn=dataloader.worker_init_fn,
        multiprocessing_context=dataloader.multiprocessing_context,
        generator=dataloader.generator,
        prefetch_factor=dataloader.prefetch_factor,
        persistent_workers=dataloader.persistent_workers,
        pin_memory_device=dataloader.pin_memory_device,
        in_order=dataloader.in_order)


def reproducible_train_cfg(train_cfg):
    """``train_cfg`` with mmengine's epoch / iteration loop replaced by its reproducible twin.

    Args:
        train_cfg (dict): the config's ``train_cfg`` (``type`` or ``by_epoch``
            selects the loop, as in mmengine's Runner).

    Returns:
        tuple[dict, bool]: the new config, and whether it runs a reproducible
        loop (False for a loop of another type, which is left as it is).
    """
    train_cfg = dict(train_cfg)
    if 'type' not in train_cfg and 'by_epoch' in train_cfg:
        by_epoch = train_cfg.pop('by_epoch')
        train_cfg['type'] = 'EpochBasedTrainLoop' if by_epoch else 'IterBasedTrainLoop'
    loop_type = train_cfg.get('type')
    if isinstance(loop_type, str):
        train_cfg['type'] = REPRODUCIBLE_LOOPS.get(loop_type.split('.')[-1], loop_type)
    return train_cfg, train_cfg.get('type') in REPRODUCIBLE_LOOPS.values()


@LOOPS.register_module()
class ReproducibleEpochBasedTrainLoop(EpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop`` with reproducible resume (same arguments)."""

    def __init__(self, runner, dataloader, max_epochs, val_begin=1, val_interval=1,
                 dynamic_intervals=None):
        super().__init__(runner, keyed_dataloader(runner, dataloader), max_epochs,
                         val_begin=val_begin, val_interval=val_interval,
                         dynamic_intervals=dynamic_intervals)

    def run_epoch(self):
        """Train the rest of the current epoch (all of it unless resumed inside it)."""
        first = self._epoch * len(self.dataloader)
        done = max(self._iter - first, 0)
        self.dataloader.batch_sampler.start(first, skip=done)
        if done:
            print_log(f'Resuming inside epoch {self._epoch + 1}: skipping its first {done} '
                      'batches, which were trained before the interruption', logger='current')
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        # Batches keep their place in the epoch for the hooks (log, end-of-epoch checks).
        for idx, data_batch in enumerate(self.dataloader, start=done):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def run_iter(self, idx, data_batch):
        reseed(self.runner.seed, self.runner.rank, STEP_STREAM, self._iter)
        super().run_iter(idx, data_batch)


@LOOPS.register_module()
class ReproducibleIterBasedTrainLoop(IterBasedTrainLoop):
    """mmengine's ``IterBasedTrainLoop`` with reproducible resume (same arguments).

    A resumed run advances past the trained batches as mmengine's loop does
    (reading them); the samples' keys number every batch from the start.
    """

    def __init__(self, runner, dataloader, max_iters, val_begin=1, val_interval=1000,
                 dynamic_intervals=None):
        super().__init__(runner, keyed_dataloader(runner, dataloader), max_iters,
                         val_begin=val_begin, val_interval=val_interval,
                         dynamic_intervals=dynamic_intervals)

    def run_iter(self, data_batch):
        reseed(self.runner.seed, self.runner.rank, STEP_STREAM, self._iter)
        super().run_iter(data_batch)
