"""Export the model of a config and checkpoint to ONNX and check it against PyTorch.

Recognition configs export :class:`.RecognizerScores` on one view (N, C, T, H, W),
by default one clip of the config's test view (``clip_len`` frames at its crop);
segmentation configs :class:`.SegmentorLogits` on one (N, 3, H, W) image, by default
the config's crop. With ``dynamic`` the batch axis (and, for video, the time axis) is
left free in the graph.
"""
import dataclasses

import torch

from nlnet.analysis.complexity import config_task, recognition_view, segmentation_image
from nlnet.apis.model_loading import load_model
from nlnet.ops import export_onnx
from nlnet.utils.config_values import load_config
from nlnet.utils.preflight import PreflightError

from .tensor_models import RecognizerScores, SegmentorLogits

__all__ = ['ConfigExport', 'export_config_model', 'export_input']

# The free axes of each task's input with ``dynamic``.
DYNAMIC_AXES = {'recognition': {0: 'batch', 2: 'time'}, 'segmentation': {0: 'batch'}}
_TENSOR_MODELS = {'recognition': RecognizerScores, 'segmentation': SegmentorLogits}
_SHAPES = {'recognition': 'N C T H W, T H W, H W or H',
           'segmentation': 'N C H W, H W or H'}


@dataclasses.dataclass
class ConfigExport:
    """What :func:`export_config_model` exported.

    Attributes:
        task (str): ``'recognition'`` or ``'segmentation'``.
        input_shape (tuple[int]): the example the graph was traced and checked on.
        output_shape (tuple[int]): the model's output on it.
        dynamic_axes (dict[int, str]): the input's free axes.
        onnx (nlnet.ops.OnnxExport): the model, its path and the max relative
            difference between onnxruntime and PyTorch.
    """
    task: str
    input_shape: tuple
    output_shape: tuple
    dynamic_axes: dict
    onnx: object


def export_input(cfg, shape=None, dynamic=False):
    """The task and the example input's shape for ``cfg``.

    Args:
        cfg (mmengine.Config): a recognition or segmentation config.
        shape (Sequence[int] | None): recognition N C T H W, T H W, H W or H (T from
            the config); segmentation N C H W, H W or H; None: the config's view/crop.
        dynamic (bool): with dynamic axes the batch is at least 2 (an exporter would
            specialise the graph to a batch of 1).

    Raises:
        ValueError: a detection config, a 2D (NCHW) recognizer or a bad ``shape``.
    """
    task = config_task(cfg)
    name = cfg.filename or 'the config'
    if task not in _TENSOR_MODELS:
        raise ValueError(f'{name}: a {task} config; ONNX export takes recognition and '
                         'segmentation configs')
    shape = list(shape or [])
    if task == 'recognition':
        if cfg.model.data_preprocessor.get('format_shape', 'NCTHW') != 'NCTHW':
            raise ValueError(f'{name}: format_shape must be NCTHW (a 3D recognizer) to export '
                             'one view')
        full = len(shape) == 5
        input_shape = list(recognition_view(cfg, shape))
    else:
        full = len(shape) == 4
        if len(shape) > 4 or len(shape) == 3:
            raise ValueError(f'--shape of a segmentation config: expected {_SHAPES[task]}, '
                             f'got {shape}')
        input_shape = list(shape if full else segmentation_image(cfg, shape))
    if dynamic and input_shape[0] < 2:
        input_shape[0] = 2
    return task, tuple(input_shape)


def export_config_model(config, checkpoint, out_file=None, shape=None, dynamic=False,
                        exporter='dynamo', cfg_options=None, verbose=True):
    """Export the model of ``config`` with ``checkpoint`` to ONNX and check it.

    The checkpoint loads strictly (:func:`nlnet.apis.load_model`); the example
    is standard normal (seed 0), as normalised inputs are.

    Args:
        config (str): a recognition or segmentation config file.
        checkpoint (str): a checkpoint of its model.
        out_file (str | None): the ``.onnx`` file (None: in memory only).
        shape (Sequence[int] | None): see :func:`export_input`.
        dynamic (bool): free batch (and time) axes, :data:`DYNAMIC_AXES`.
        exporter (str): ``'dynamo'`` or ``'torchscript'`` (:func:`nlnet.ops.export_onnx`).
        cfg_options (dict | None): config overrides, as ``--cfg-options``.
        verbose (bool): print the relative difference.

    Returns:
        ConfigExport

    Raises:
        ValueError: the config or checkpoint is missing or does not fit (naming the
            file), an unsupported task, a bad shape;
            :class:`nlnet.ops.onnx_export.OnnxMismatchError` where onnxruntime differs
            from PyTorch by more than 1e-4.
    """
    try:
        cfg = load_config(str(config))
    except PreflightError as error:
        raise ValueError(str(error)) from error
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    task, input_shape = export_input(cfg, shape, dynamic)
    model = _TENSOR_MODELS[task](load_model(cfg, checkpoint))
    example = torch.randn(input_shape, generator=torch.Generator().manual_seed(0))
    dynamic_axes = DYNAMIC_AXES[task] if dynamic else {}
    result = export_onnx(model, example, out_file, dynamic_axes, exporter=exporter,
                         verbose=verbose)
    return ConfigExport(task, input_shape, result.output_shapes[0], dynamic_axes, result)
