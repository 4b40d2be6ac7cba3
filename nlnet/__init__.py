"""nlnet: Non-local Neural Networks (Wang et al., CVPR 2018) for the OpenMMLab stack.

``import nlnet`` (or ``custom_imports=dict(imports=['nlnet'])`` in a config) applies
the stack fixes of :mod:`nlnet.compat` and registers every nlnet module into the
mmengine, mmaction, mmseg and mmdet registries.
"""
from . import compat

compat.apply()

from . import datasets, engine, evaluation, hooks, models, utils  # noqa: E402,F401  (registers)

__version__ = '0.1.0'
