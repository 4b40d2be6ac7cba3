"""The non-local block for any PyTorch model; needs torch alone (no ``mm*`` package).

>>> from nlnet.ops import NonLocal2d
>>> block = NonLocal2d(256)                       # mmcv's arguments and defaults
>>> from nlnet.ops import NonLocalBlock
>>> block = NonLocalBlock(1024, dim=3, mode='embedded_gaussian', sub_sample=True)

:class:`NonLocalBlock` is the block with every option (modes, scopes, sub-sampling,
routes); :func:`reference.reference_forward` its plain form, which the tests hold every
route equal to. :mod:`nlnet.openmmlab` registers a subclass taking ``norm_cfg`` dicts.
"""
from .autotune import set_autotune
from .non_local import MODES, NonLocalBlock
from .non_local_nd import NonLocal1d, NonLocal2d, NonLocal3d
from .onnx_export import OnnxExport, export_onnx
from .reference import reference_forward, reference_weights

__all__ = ['MODES', 'NonLocal1d', 'NonLocal2d', 'NonLocal3d', 'NonLocalBlock', 'OnnxExport',
           'export_onnx', 'reference_forward', 'reference_weights', 'set_autotune']
