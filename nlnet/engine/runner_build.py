"""Building a checked run's runner, and its datasets before any work starts."""
import mmengine.registry as mm_registry
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

__all__ = ['build_runner', 'build_datasets']


def build_runner(cfg):
    """The config's runner (``runner_type`` or mmengine's Runner)."""
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def build_datasets(runner, loader_attrs):
    """Build the datasets of the runner's dataloaders now, so bad data fails early.

    The built datasets replace their configs, so nothing is loaded twice.

    Args:
        runner (Runner): a runner whose dataloaders are still configs.
        loader_attrs (list[str]): e.g. ``['_train_dataloader']``.
    """
    for attr in loader_attrs:
        loader = getattr(runner, attr, None)
        if not isinstance(loader, dict) or not isinstance(loader.get('dataset'), dict):
            continue
        dataset = mm_registry.DATASETS.build(loader['dataset'])
        if hasattr(dataset, 'full_init'):
            dataset.full_init()
        loader['dataset'] = dataset
