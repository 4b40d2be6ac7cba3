"""A config's model with its checkpoint, run once on one input with its blocks' inputs caught.

The input goes through the config's test pipeline as one view: for video
recognition one clip (``SampleFrames`` with ``num_clips=1``) and one centre crop
(``ThreeCrop``/``TenCrop`` become ``CenterCrop``); for segmentation and detection
the image as the test pipeline resizes it (annotations are not loaded). The
model's data preprocessor then normalises (and pads) it, and a forward
pre-hook on every non-local block keeps the block's input x.
"""
import copy
import os.path as osp
from dataclasses import dataclass, field

import numpy as np
import torch
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint

from nlnet.analysis.complexity import config_task

from .attention import non_local_blocks

_MULTI_VIEW_CROPS = ('ThreeCrop', 'TenCrop')


def build_model(cfg, checkpoint):
    """The config's model in eval mode on the CPU with ``checkpoint`` loaded strictly.

    Raises:
        ValueError: the config builds no non-local block, or the checkpoint is
            missing or does not fit the model (the message names the file and keys).
    """
    name = cfg.filename or 'config'
    init_default_scope(cfg.default_scope)
    model_cfg = cfg.model.module if cfg.model.get('type') == 'SegTTAModel' else cfg.model
    model = MODELS.build(model_cfg)
    if not non_local_blocks(model):
        raise ValueError(f'{name}: the model has no non-local block (NonLocalBlock), so there '
                         'is no attention to draw')
    if not osp.isfile(checkpoint):
        raise ValueError(f'checkpoint {checkpoint!r} does not exist')
    try:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True,
                        revise_keys=[(r'^module\.', '')], logger='silent')
    except (RuntimeError, KeyError, ValueError) as error:
        raise ValueError(f'checkpoint {checkpoint!r} does not fit the model of {name}: '
                         f'{error}') from error
    return model.eval()


def single_view_pipeline(cfg):
    """The config's test pipeline as one view without annotations (module docstring)."""
    pipeline = []
    for transform in copy.deepcopy(cfg.test_dataloader.dataset.pipeline):
        kind = str(transform['type'])
        if 'LoadAnnotations' in kind:
            continue
        if kind == 'SampleFrames':
            transform.update(num_clips=1, test_mode=True)
        elif kind in _MULTI_VIEW_CROPS:
            transform = dict(type='CenterCrop', crop_size=transform['crop_size'])
        pipeline.append(transform)
    return pipeline


@dataclass
class ModelRun:
    """One test-pipeline forward of a model.

    Attributes:
        frames (np.ndarray): (T, H, W, 3) uint8 RGB, the model's input as it saw
            it (after the pipeline and preprocessor, normalisation undone); T = 1
            for images.
        input_size (tuple[int]): (T, H, W) for video, (H, W) for images.
        block_inputs (dict[str, Tensor]): module path -> the block's input x.
        frame_inds (list[int] | None): the video frame of each clip frame.
        prediction (int | None): the recognizer's top-1 class.
    """
    frames: np.ndarray
    input_size: tuple
    block_inputs: dict = field(default_factory=dict)
    frame_inds: list = None
    prediction: int = None


def _pipeline_input(task, path):
    if task == 'recognition':
        return dict(filename=path, label=-1, start_index=0, modality='RGB')
    return dict(img_path=path, img_id=0)


@torch.no_grad()
def run_model(model, cfg, path):
    """Run ``model`` once on the file ``path`` (video or image, by the config's task).

    Args:
        model (nn.Module): from :func:`build_model`.
        cfg (Config): its config.
        path (str): the input file.

    Returns:
        ModelRun
    """
    if not osp.isfile(path):
        raise ValueError(f'input {path!r} does not exist')
    task = config_task(cfg)
    init_default_scope(cfg.default_scope)
    results = _pipeline_input(task, path)
    frame_inds = None
    for transform in Compose(single_view_pipeline(cfg)).transforms:
        results = transform(results)
        if results is None:
            raise ValueError(f'input {path!r}: the test pipeline dropped it at {transform!r}')
        if 'frame_inds' in results:
            frame_inds = [int(i) for i in np.asarray(results['frame_inds']).reshape(-1)]
    data = model.data_preprocessor(pseudo_collate([results]), False)

    block_inputs = {}
    handles = [block.register_forward_pre_hook(
        lambda module, args, name=name: block_inputs.__setitem__(name, args[0].detach()))
        for name, block in non_local_blocks(model).items()]
    try:
        samples = model(**data, mode='predict')
    finally:
        for handle in handles:
            handle.remove()

    frames = _display_frames(model.data_preprocessor, data['inputs'], task)
    prediction = None
    if task == 'recognition' and hasattr(samples[0], 'pred_score'):
        prediction = int(samples[0].pred_score.argmax())
    input_size = frames.shape[:3] if task == 'recognition' else frames.shape[1:3]
    return ModelRun(frames, tuple(input_size), block_inputs, frame_inds, prediction)


def _display_frames(preprocessor, inputs, task):
    """(T, H, W, 3) uint8 RGB from the preprocessed batch: mean and std undone, and
    the channels in RGB whether the file was read as RGB (decord) or BGR (cv2)."""
    view = inputs[0]
    if task == 'recognition':
        view = view.reshape(-1, *view.shape[-4:])[0]  # first view: (C, T, H, W)
    else:
        view = view.unsqueeze(1)  # (C, 1, H, W)
    channels = view.shape[0]
    if getattr(preprocessor, '_enable_normalize', False):
        view = (view * preprocessor.std.reshape(channels, 1, 1, 1)
                + preprocessor.mean.reshape(channels, 1, 1, 1))
    converted = bool(getattr(preprocessor, '_channel_conversion',  # mmengine's; mmaction's:
                             getattr(preprocessor, 'to_rgb', False)))
    read_as_bgr = task != 'recognition'
    if read_as_bgr != converted:
        view = view.flip(0)
    return view.clamp(0, 255).round().byte().permute(1, 2, 3, 0).cpu().numpy()
