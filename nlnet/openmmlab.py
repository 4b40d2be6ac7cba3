"""nlnet in the OpenMMLab stack: ``import nlnet.openmmlab`` registers every nlnet module.

It applies the stack fixes of :mod:`nlnet.compat` and registers nlnet's models,
datasets, transforms, hooks, loops and metrics into the mmengine, mmaction, mmseg
and mmdet registries. Every shipped config names it in
``custom_imports=dict(imports=['nlnet.openmmlab'])`` and every tool imports it first.
:mod:`nlnet.ops` (the block for plain PyTorch) needs none of this.
"""
from . import compat  # noqa: F401,I001  (first: the stack fixes before any mm import)
from . import datasets, engine, evaluation, hooks, models, utils  # noqa: F401  (registers)
