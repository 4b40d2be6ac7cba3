"""tools/deployment/export_onnx.py: an NL-I3D, an NL-C2D and a NonLocalNet config exported to
ONNX, onnxruntime equal to PyTorch (max relative difference <= 1e-4) at the traced input and,
with --dynamic, at another batch and clip length; bad files and tasks fail naming them.

The configs are the shipped ones shrunk by --cfg-options (8 base channels, ResNet-18 for the
segmentor) at small inputs; they export with the TorchScript exporter, several times faster
here than the dynamo one (which tests/test_ops/test_onnx_export.py and the benchmark use).
"""
import os.path as osp

import pytest
import torch
from helpers.tool_modules import load_tool
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from nlnet.deployment import RecognizerScores, SegmentorLogits
from nlnet.ops.onnx_export import relative_difference, run_onnxruntime

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
NL_I3D = 'configs/recognition/nl-i3d/nl-i3d_r50-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb.py'
NL_C2D = 'configs/demo/nl-c2d_r18-tiny_1xb16-8x2x1-20e_demo-rgb.py'
NONLOCAL_NET = 'configs/segmentation/nonlocal_net/nonlocal_r50-d8_4xb2-40k_cityscapes-512x1024.py'
DETECTION = 'configs/detection'
# Shipped configs shrunk: the same network kinds, non-local blocks where the config puts them.
SMALL = {
    NL_I3D: {'model.backbone.base_channels': 8, 'model.cls_head.in_channels': 256},
    NL_C2D: {},
    NONLOCAL_NET: {'model.backbone.depth': 18, 'model.backbone.base_channels': 8,
                   'model.backbone.stem_channels': 8, 'model.decode_head.in_channels': 64,
                   'model.decode_head.channels': 16, 'model.auxiliary_head.in_channels': 32,
                   'model.auxiliary_head.channels': 8},
}


def _options(options):
    return ['--cfg-options', *(f'{key}={value}' for key, value in options.items())] if options \
        else []


def _checkpoint(config, tmp_path, zero_init=False):
    """A checkpoint of the shrunk model with random weights, its non-local blocks' BN on."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.merge_from_dict(SMALL[config])
    init_default_scope(cfg.default_scope)
    cfg.model.pop('pretrained', None)
    cfg.model.backbone.pop('pretrained', None)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.weight.uniform_(0.5, 1.5)  # zero-initialised blocks would be identities
                module.running_var.uniform_(0.5, 2)
    path = str(tmp_path / 'model.pth')
    torch.save({'state_dict': model.state_dict()}, path)
    return model.eval(), path


def _export(config, checkpoint, tmp_path, *args):
    tool = load_tool('deployment/export_onnx.py')
    out = str(tmp_path / 'model.onnx')
    result = tool.main([osp.join(ROOT, config), checkpoint, '--out', out, '--exporter',
                        'torchscript', *args, *_options(SMALL[config])])
    return result, out


@pytest.mark.parametrize('config,shape,other', [
    (NL_I3D, ['8', '32', '32'], (3, 3, 16, 32, 32)),
    (NL_C2D, [], (3, 3, 6, 32, 32)),
])
def test_recognizer_scores_in_onnxruntime_equal_pytorch(config, shape, other, tmp_path, capsys):
    model, checkpoint = _checkpoint(config, tmp_path)
    result, out = _export(config, checkpoint, tmp_path, '--dynamic',
                          *(['--shape', *shape] if shape else []))
    num_classes = model.cls_head.num_classes
    assert result.task == 'recognition' and result.dynamic_axes == {0: 'batch', 2: 'time'}
    assert result.input_shape == ((2, 3, *map(int, shape)) if shape else (2, 3, 8, 32, 32))
    assert result.output_shape == (result.input_shape[0], num_classes)
    assert result.onnx.max_relative_difference <= 1e-4
    assert 'onnx.checker passed, max relative difference' in capsys.readouterr().out
    # Another batch and clip length than traced.
    clips = torch.randn(other)
    with torch.no_grad():
        want = RecognizerScores(model)(clips)
    got, = run_onnxruntime(out, clips)
    assert want.shape == (3, num_classes)
    assert relative_difference(got, want) <= 1e-4
    # The scores are the recognizer's own for one-view videos (softmax probabilities).
    with torch.no_grad():
        samples = model(clips[:, None], [ActionDataSample() for _ in range(3)], mode='predict')
    torch.testing.assert_close(got, torch.stack([s.pred_score for s in samples]), rtol=1e-4,
                               atol=1e-6)


def test_segmentor_logits_in_onnxruntime_equal_pytorch(tmp_path):
    model, checkpoint = _checkpoint(NONLOCAL_NET, tmp_path)
    result, out = _export(NONLOCAL_NET, checkpoint, tmp_path, '--dynamic', '--shape', '40', '48')
    assert result.task == 'segmentation' and result.input_shape == (2, 3, 40, 48)
    assert result.output_shape == (2, 19, 40, 48)
    assert result.onnx.max_relative_difference <= 1e-4
    images = torch.randn(3, 3, 40, 48)
    with torch.no_grad():
        want = SegmentorLogits(model)(images)
    got, = run_onnxruntime(out, images)
    assert want.shape == (3, 19, 40, 48)
    assert relative_difference(got, want) <= 1e-4
    assert torch.equal(got.argmax(1), want.argmax(1))


def test_bad_files_and_tasks_are_named(tmp_path):
    _, checkpoint = _checkpoint(NL_C2D, tmp_path)
    missing = str(tmp_path / 'missing.pth')
    with pytest.raises(ValueError, match=f'checkpoint {missing!r} does not exist'):
        _export(NL_C2D, missing, tmp_path)
    # The NL-C2D's checkpoint does not fit the segmentor.
    with pytest.raises(ValueError, match=f'checkpoint {checkpoint!r} does not fit the model'):
        _export(NONLOCAL_NET, checkpoint, tmp_path)
    tool = load_tool('deployment/export_onnx.py')
    config = str(tmp_path / 'nowhere.py')
    with pytest.raises(ValueError, match=f'config file {config!r} does not exist'):
        tool.main([config, checkpoint, '--out', str(tmp_path / 'x.onnx')])
    detection = osp.join(ROOT, DETECTION, 'mask-rcnn_r50-nl_fpn_1x_coco.py')
    with pytest.raises(ValueError, match='a detection config; ONNX export takes recognition and '
                       'segmentation configs'):
        tool.main([detection, checkpoint, '--out', str(tmp_path / 'x.onnx')])
