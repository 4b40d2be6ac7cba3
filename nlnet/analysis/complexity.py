"""FLOPs and parameters of the model a config builds, by the convention of its toolbox.

The task is the config's ``default_scope``:

- ``mmaction`` (recognition, MMAction2's ``get_flops.py``): the backbone
  features (``extract_feat``) of ONE view, ``clip_len`` frames of the test
  pipeline at its crop; ``shape`` is T H W, N C T H W, H W (T from the config)
  or H; parameters of the whole recognizer;
- ``mmseg`` (segmentation, MMSeg's ``get_flops.py``): the segmentor's forward
  (backbone and decode head, no auxiliary head) on one (1, 3, H, W) image,
  default the config's crop; ``shape`` is H W or H; parameters without the
  auxiliary head, as MMSeg's tool removes it. MMSeg's tool also passes the image
  through the data preprocessor, which pads it to the crop when it is smaller;
  at the default shape both agree;
- ``mmdet`` (detection, MMDetection's convention): backbone, neck, RPN head and
  RoI heads on one image of H x W (default 1280 x 800) padded to a multiple of
  32, the RoI heads on ``rpn.max_per_img`` proposals (1000; the mask head on the
  first 100, as MMDetection's tensor-mode forward); since the RoI heads cost the
  same wherever the boxes lie, the count does not depend on the weights.
  ``shape`` is H W or H; parameters of the whole detector.

A test-time-augmentation wrapper (``SegTTAModel``) is counted by its model at
one scale.
"""
import copy
import math

import torch
from mmengine.config import ConfigDict
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from .flops import count_flops, module_rows

TASKS = {'mmaction': 'recognition', 'mmseg': 'segmentation', 'mmdet': 'detection'}
SHAPE_FORMS = {'recognition': 'T H W, N C T H W, H W or H', 'segmentation': 'H W or H',
               'detection': 'H W or H'}
DETECTION_SHAPE = (1280, 800)
DETECTION_PAD_DIVISOR = 32
_CROP_TRANSFORMS = ('ThreeCrop', 'TenCrop', 'CenterCrop')


def config_task(cfg):
    """'recognition', 'segmentation' or 'detection', from the config's ``default_scope``."""
    name = cfg.filename or 'config'
    if not isinstance(cfg.get('model'), (dict, ConfigDict)):
        raise ValueError(f'{name}: no `model` to count (the config defines no model dict)')
    scope = cfg.get('default_scope')
    if scope not in TASKS:
        raise ValueError(f'{name}: default_scope must be one of {tuple(TASKS)} to tell the '
                         f'task, got {scope!r}')
    return TASKS[scope]


def _square_or_pair(shape, task):
    if len(shape) == 1:
        return (shape[0], shape[0])
    if len(shape) == 2:
        return tuple(shape)
    raise ValueError(f'--shape of a {task} config: expected {SHAPE_FORMS[task]}, got '
                     f'{list(shape)}')


def recognition_view(cfg, shape=None):
    """(N, C, T, H, W) of one test view, from ``shape`` and the config's test pipeline."""
    pipeline = cfg.test_dataloader.dataset.pipeline
    sample = next((t for t in pipeline if 'SampleFrames' in t['type']), None)
    crop = next((t for t in pipeline if t['type'] in _CROP_TRANSFORMS), None)
    clip_len = sample['clip_len'] if sample else 1
    size = crop['crop_size'] if crop else 224
    shape = list(shape or [])
    if len(shape) == 5:
        return tuple(shape)
    if len(shape) == 3:
        return (1, 3, *shape)
    if shape:
        return (1, 3, clip_len, *_square_or_pair(shape, 'recognition'))
    height, width = (size, size) if isinstance(size, int) else tuple(size)[::-1]
    return (1, 3, clip_len, height, width)


def segmentation_image(cfg, shape=None):
    """(1, 3, H, W): ``shape``, else the config's crop."""
    if shape:
        return (1, 3, *_square_or_pair(shape, 'segmentation'))
    crop = cfg.get('crop_size') or _segmentor_cfg(cfg).data_preprocessor.get('size')
    if crop is None:
        raise ValueError(f'{cfg.filename}: no crop_size to count at; give --shape H W')
    return (1, 3, *crop)


def detection_image(shape=None):
    """((H, W), (1, 3, H', W')): the image and its input padded to a multiple of 32."""
    image = _square_or_pair(shape, 'detection') if shape else DETECTION_SHAPE
    padded = tuple(math.ceil(s / DETECTION_PAD_DIVISOR) * DETECTION_PAD_DIVISOR for s in image)
    return image, (1, 3, *padded)


def _segmentor_cfg(cfg):
    return cfg.model.module if cfg.model.type == 'SegTTAModel' else cfg.model


def build_counted_model(cfg):
    """The model the task's tool counts, built in the config's scope.

    The counts depend on shapes only, so the parameters are allocated without being
    initialised (built on the meta device, then given uninitialised CPU storage), which
    skips the random initialisation of every weight.
    """
    task = config_task(cfg)
    init_default_scope(cfg.default_scope)
    model_cfg = _segmentor_cfg(cfg) if task == 'segmentation' else cfg.model
    with torch.device('meta'):
        model = ROOT_MODELS.build(copy.deepcopy(model_cfg))  # builders edit their config
    model.to_empty(device='cpu')
    if task == 'segmentation':
        model.auxiliary_head = None
        model = revert_sync_batchnorm(model)
    return model


def detector_forward(detector, image_shape):
    """The detector's tensor-mode forward on fixed proposals (module docstring)."""
    height, width = image_shape
    num_proposals = detector.test_cfg.rpn.max_per_img
    proposals = InstanceData(bboxes=torch.tensor([[0., 0., width, height]]).repeat(
        num_proposals, 1))

    def forward(inputs):
        features = detector.extract_feat(inputs)
        return detector.rpn_head(features), detector.roi_head(features, [proposals])

    return forward


def model_complexity(cfg, shape=None, nl_flops='explicit', max_depth=2):
    """Count the model of ``cfg`` by its task's convention (module docstring).

    Args:
        cfg (mmengine.Config): a config with ``model`` and ``default_scope``.
        shape (Sequence[int], optional): the input, in the task's form.
        nl_flops (str): ``explicit`` or ``executed``, see :mod:`nlnet.analysis.flops`.
        max_depth (int): module depth listed for recognition models.

    Returns:
        dict: :func:`~nlnet.analysis.flops.count_flops`' result plus ``task``,
        ``input_shape`` (the counted tensor's shape), ``image_shape`` (detection:
        the image before padding) and ``rows`` (the module names to print).
    """
    task = config_task(cfg)
    if task == 'recognition':
        input_shape = recognition_view(cfg, shape)
    elif task == 'segmentation':
        input_shape = segmentation_image(cfg, shape)
    else:
        image_shape, input_shape = detection_image(shape)
    model = build_counted_model(cfg)
    if task == 'recognition':
        inputs = torch.randn(recognizer_input_shape(cfg, input_shape))
        result = count_flops(model, inputs, nl_flops, lambda x: model.extract_feat(x)[0])
        rows = module_rows(result, max_depth)
    elif task == 'segmentation':
        # The segmentor's tensor mode, with the head called as a module so that the
        # tracer names its own operations after it.
        result = count_flops(model, torch.randn(input_shape), nl_flops,
                             lambda x: model.decode_head(model.extract_feat(x)))
        rows = module_rows(result, names=('backbone', 'decode_head'))
    else:
        result = count_flops(model, torch.randn(input_shape), nl_flops,
                             detector_forward(model, image_shape))
        rows = module_rows(result, names=('backbone', 'neck', 'rpn_head', 'roi_head'))
        result['image_shape'] = image_shape
    result.update(task=task, input_shape=tuple(input_shape), rows=rows)
    return result


def recognizer_input_shape(cfg, view):
    """The recognizer's input shape for one ``view`` (N, C, T, H, W): its frames stacked for
    a 2D recognizer (``format_shape='NCHW'``), else one clip of a batch of one."""
    n, c, t, h, w = view
    if cfg.model.data_preprocessor.get('format_shape') == 'NCHW':
        return (1, n * t, c, h, w)
    return (1, n, c, t, h, w)
