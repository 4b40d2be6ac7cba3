"""The command-line tools as modules, so that tests run their ``main`` in this process
(no interpreter and stack start-up per call)."""
import importlib.util
import os.path as osp

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def load_tool(path):
    """``tools/<path>`` (e.g. ``'analysis/dump_to_csv.py'``) loaded as a fresh module."""
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(path))[0],
                                                  osp.join(ROOT, 'tools', path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
