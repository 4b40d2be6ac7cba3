"""The command-line tools as modules, so that tests run their ``main`` in this process
(no interpreter and stack start-up per call)."""
import importlib.util
import itertools
import os.path as osp

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
_runs = itertools.count()


def load_tool(path):
    """``tools/<path>`` (e.g. ``'analysis/dump_to_csv.py'``) loaded as a fresh module."""
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(path))[0],
                                                  osp.join(ROOT, 'tools', path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def own_instances(name):
    """``--cfg-options`` entries giving an in-process run its own mmengine logger, message hub
    and visualizer, named ``name`` and a number unique in this process.

    mmengine keeps them by name for the life of the process: the name is the config's file
    name and the start second (a train and a test run of one config in the same second would
    share them), or fixed by the config (MMSeg's and MMDet's ``visualizer.name``).
    """
    unique = f'{name}_{next(_runs)}'
    return [f'experiment_name={unique}', f'visualizer.name={unique}']
