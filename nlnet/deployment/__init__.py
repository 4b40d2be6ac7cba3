"""A config's model deployed to ONNX: a recognizer (one view -> class scores) or a NonLocalNet
segmentor (one image -> class logits) as a tensor-in/tensor-out module, exported, checked with
``onnx.checker`` and run in onnxruntime against PyTorch.

``tools/deployment/export_onnx.py`` is a thin shell over :func:`export_config_model`; the block
alone exports with :func:`nlnet.ops.export_onnx`.
"""
from .. import compat  # noqa: F401,I001  (first: the stack fixes before any mm import)
from .config_export import ConfigExport, export_config_model, export_input
from .tensor_models import RecognizerScores, SegmentorLogits

__all__ = ['ConfigExport', 'export_config_model', 'export_input', 'RecognizerScores',
           'SegmentorLogits']
