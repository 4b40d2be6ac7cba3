"""The Charades-layout demo generator (tools/data/make_charades_demo.py), loaded for tests."""
import importlib.util
import os.path as osp

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))

_spec = importlib.util.spec_from_file_location(
    'make_charades_demo', osp.join(ROOT, 'tools', 'data', 'make_charades_demo.py'))
make_charades_demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_charades_demo)
