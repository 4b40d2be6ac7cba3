"""nlnet: Non-local Neural Networks (Wang et al., CVPR 2018), in PyTorch and for the OpenMMLab stack.

Two entry points:

- :mod:`nlnet.ops` is the non-local block for any PyTorch model; it needs torch alone.
- :mod:`nlnet.openmmlab` registers nlnet into the mmengine, mmaction, mmseg and mmdet
  registries (configs: ``custom_imports=dict(imports=['nlnet.openmmlab'])``).

``import nlnet`` itself loads neither, except in a process that has already loaded the
OpenMMLab stack (mmengine): there it imports :mod:`nlnet.openmmlab`, so that configs
written as ``custom_imports=dict(imports=['nlnet'])`` keep working, while a PyTorch user
importing :mod:`nlnet.ops` never pulls in an ``mm*`` package.
"""
import sys

__version__ = '0.1.0'

if 'mmengine' in sys.modules:
    from . import openmmlab  # noqa: F401  (registers; see the module docstring)
