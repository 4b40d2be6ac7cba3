"""nlnet's NonLocalHead against MMSeg's NLHead: same layout, same logits, same gradients."""
import pytest
import torch
from mmcv.cnn import NonLocal2d
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

import nlnet.openmmlab  # noqa: F401  (registers NonLocalHead)
from mmseg.registry import MODELS
from nlnet.models.heads import NonLocalHead
from nlnet.models.heads.non_local_head import FLAT_BLOCK_ARGS

IN_CHANNELS, CHANNELS, CLASSES = 24, 16, 5


def head_cfg(type_, **kwargs):
    cfg = dict(type=type_, in_channels=IN_CHANNELS, channels=CHANNELS, num_classes=CLASSES,
               in_index=0, dropout_ratio=0.0, norm_cfg=dict(type='BN'), align_corners=False)
    cfg.update(kwargs)
    return cfg


def build(cfg):
    init_default_scope('mmseg')
    return MODELS.build(cfg)


def random_state(module, seed=0):
    """A state dict of ``module`` with every float tensor random (BN variances positive)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in module.state_dict().items():
        if not value.is_floating_point():
            state[key] = value
        elif key.endswith('running_var'):
            state[key] = torch.rand(value.shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(value.shape, generator=gen) * 0.2
    return state


def features(seed=1, shape=(2, IN_CHANNELS, 9, 14)):
    return [torch.randn(shape, generator=torch.Generator().manual_seed(seed))]


@pytest.mark.parametrize('mode', ['embedded_gaussian', 'dot_product', 'gaussian', 'concatenation'])
@pytest.mark.parametrize('use_scale', [True, False])
def test_same_state_dict_gives_mmseg_logits(mode, use_scale):
    ref = build(head_cfg('NLHead', mode=mode, use_scale=use_scale)).eval()
    ours = build(head_cfg('NonLocalHead', non_local_cfg=dict(mode=mode, use_scale=use_scale)))
    ours.eval()
    assert ours.state_dict().keys() == ref.state_dict().keys()
    state = random_state(ref)
    ref.load_state_dict(state)
    ours.load_state_dict(state, strict=True)
    x = features()
    with torch.no_grad():
        expected = ref(x)
        actual = ours(x)
    assert actual.shape == (2, CLASSES, 9, 14)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


# (dtype, rtol, atol). float64 leaves only rounding (relative errors near 1e-14), so
# any change to the maths fails, a 1.001 factor on one gradient included; float32 is
# the dtype of training. atol covers gradients that are zero in exact arithmetic
# (phi's and g's biases: softmax and the output BN remove constant shifts).
GRADIENT_PRECISIONS = {
    'float64': (torch.float64, 1e-9, 1e-12),
    'float32': (torch.float32, 1e-4, 1e-4),
}


@pytest.mark.parametrize('precision', list(GRADIENT_PRECISIONS))
def test_training_mode_gradients_match_mmseg(precision):
    dtype, rtol, atol = GRADIENT_PRECISIONS[precision]
    ref = build(head_cfg('NLHead')).to(dtype)
    ours = build(head_cfg('NonLocalHead')).to(dtype)
    state = random_state(ref, seed=3)
    ref.load_state_dict(state)
    ours.load_state_dict(state)
    x_ref = features(seed=4)[0].to(dtype).requires_grad_()
    x_ours = x_ref.detach().clone().requires_grad_()
    out_ref = ref([x_ref])
    out_ours = ours([x_ours])
    torch.testing.assert_close(out_ours, out_ref, rtol=rtol, atol=atol)
    weights = torch.randn(out_ref.shape, generator=torch.Generator().manual_seed(5)).to(dtype)
    (out_ref * weights).sum().backward()
    (out_ours * weights).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=rtol, atol=atol)
    ref_grads = dict(ref.named_parameters())
    for name, param in ours.named_parameters():
        torch.testing.assert_close(param.grad, ref_grads[name].grad, rtol=rtol, atol=atol,
                                   msg=lambda m, name=name: f'{name}: {m}')


def test_sub_sampled_head_matches_mmcv_pooling_after():
    """sub_sample + pool_position='after' is mmcv's NonLocal2d(sub_sample=True), nested keys too."""
    ref = build(head_cfg('NLHead'))
    ref.nl_block = NonLocal2d(CHANNELS, reduction=2, use_scale=True, sub_sample=True,
                              norm_cfg=dict(type='BN'), mode='embedded_gaussian')
    ref.eval()
    ours = build(head_cfg('NonLocalHead', non_local_cfg=dict(sub_sample=True,
                                                             pool_position='after'))).eval()
    state = random_state(ref, seed=6)
    assert 'nl_block.g.0.conv.weight' in state
    ref.load_state_dict(state)
    ours.load_state_dict(state, strict=True)
    x = features(seed=7, shape=(1, IN_CHANNELS, 10, 12))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-4)


def test_fresh_block_is_identity_and_loss_runs():
    head = build(head_cfg('NonLocalHead', dropout_ratio=0.1))
    x = features(seed=8)[0]
    middle = head.convs[0](x)
    torch.testing.assert_close(head.nl_block(middle), middle)
    labels = torch.randint(0, CLASSES, (2, 1, 36, 56), generator=torch.Generator().manual_seed(9))
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for label in labels:
        sample = SegDataSample(metainfo=dict(img_shape=(36, 56), pad_shape=(36, 56)))
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    losses = head.loss([x], samples, train_cfg=dict())
    assert torch.isfinite(losses['loss_ce'])
    losses['loss_ce'].backward()
    assert head.conv_seg.weight.grad is not None


def test_mmseg_checkpoint_file_loads_into_nlnet_model(tmp_path):
    """A whole EncoderDecoder checkpoint saved with NLHead loads into the NonLocalHead model."""
    def model_cfg(head_type):
        return dict(
            type='EncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                                   std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
            backbone=dict(type='ResNetV1c', depth=18, base_channels=8, stem_channels=8,
                          dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), contract_dilation=True,
                          norm_cfg=dict(type='BN')),
            decode_head=dict(head_cfg(head_type, in_channels=64, in_index=3)),
            auxiliary_head=dict(type='FCNHead', in_channels=32, in_index=2, channels=8,
                                num_convs=1, concat_input=False, num_classes=CLASSES,
                                norm_cfg=dict(type='BN')),
            test_cfg=dict(mode='whole'))

    ref = build(model_cfg('NLHead')).eval()
    ref.load_state_dict(random_state(ref, seed=10))
    path = tmp_path / 'nonlocal_mmseg.pth'
    torch.save(dict(meta=dict(mmseg_version='1.2.2'), state_dict=ref.state_dict()), path)

    ours = build(model_cfg('NonLocalHead')).eval()
    load_checkpoint(ours, str(path), map_location='cpu', strict=True)
    image = torch.randn(1, 3, 32, 48, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        torch.testing.assert_close(ours(image, mode='tensor'), ref(image, mode='tensor'),
                                   rtol=1e-4, atol=1e-4)


def test_split_conv_cat_equals_concatenation():
    head = build(head_cfg('NonLocalHead')).eval()
    head.load_state_dict(random_state(head, seed=12))
    x = features(seed=13)[0]
    output = torch.randn(2, CHANNELS, 9, 14, generator=torch.Generator().manual_seed(14))
    with torch.no_grad():
        torch.testing.assert_close(head._conv_cat(x, output),
                                   head.conv_cat(torch.cat([x, output], dim=1)),
                                   rtol=1e-5, atol=1e-5)


def test_block_norm_is_the_heads_unless_non_local_cfg_sets_it():
    assert isinstance(build(head_cfg('NonLocalHead')).nl_block.conv_out.norm, torch.nn.BatchNorm2d)
    group_norm = dict(type='GN', num_groups=2)
    head = build(head_cfg('NonLocalHead', non_local_cfg=dict(norm_cfg=group_norm)))
    assert isinstance(head.nl_block.conv_out.norm, torch.nn.GroupNorm)


FLAT_VALUES = dict(reduction=4, use_scale=False, mode='dot_product', sub_sample=True,
                   pool_position='after')


@pytest.mark.parametrize('key', FLAT_BLOCK_ARGS)
def test_mmseg_flat_block_argument_says_to_use_non_local_cfg(key):
    """A config written for MMSeg's NLHead (reduction=, use_scale=, mode=) fails at once
    with a ValueError that says where the option goes, not with a TypeError."""
    with pytest.raises(ValueError, match=rf'NonLocalHead: pass {key} inside '
                                         rf'non_local_cfg=dict\({key}=\.\.\.\)'):
        build(head_cfg('NonLocalHead', **{key: FLAT_VALUES[key]}))


@pytest.mark.parametrize('kwargs,match', [
    (dict(non_local_cfg=dict(mode='cosine')), 'non_local_cfg: mode must be one of'),
    (dict(non_local_cfg=dict(pool_position='middle')),
     'non_local_cfg: pool_position must be one of'),
    (dict(non_local_cfg=dict(dim=3)), "non_local_cfg must not set 'dim': NonLocalHead derives it"),
    (dict(num_convs=1), 'num_convs must be 2'),
])
def test_bad_arguments_name_the_argument(kwargs, match):
    cfg = head_cfg('NonLocalHead', **kwargs)
    cfg.pop('type')
    with pytest.raises(ValueError, match=match):
        NonLocalHead(**cfg)
