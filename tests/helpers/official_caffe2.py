"""The official Caffe2 models written out independently of nlnet, for the converter tests.

Everything here is transcribed from facebookresearch/video-nonlocal-net (lib/models/
resnet_video.py, resnet_video_org.py, resnet_helper.py, nonlocal_helper.py,
model_builder_video.py, lib/utils/checkpoints.py): which blobs its builder creates, with
which shapes, how Python 2 pickled them, and its forward pass in plain torch ops.
"""
from collections import namedtuple

import numpy as np
import torch
import torch.nn.functional as F
from helpers.python2_pickles import write_python2_pickle  # noqa: F401  (re-exported)

BN_EPSILON = 1.0000001e-5  # cfg.MODEL.BN_EPSILON and cfg.NONLOCAL.BN_EPSILON
# obtain_arc(): use_temp_convs of conv1 and of each block of res2..res5 (ResNet-50).
TEMP_CONVS = {
    'c2d': ([0], [0, 0, 0], [0] * 4, [0] * 6, [0, 0, 0]),
    'i3d': ([2], [1, 1, 1], [1, 0, 1, 0], [1, 0, 1, 0, 1, 0], [0, 1, 0]),
}
# (conv1 temporal stride, pool1 temporal kernel = stride): resnet_video.py builds the 8x8
# and 32x4 models, resnet_video_org.py the 32x2 and 128x1 ones.
STEMS = {'video': (1, 1), 'org': (2, 2)}

# arc, stem, non-local, affine (MODEL.USE_AFFINE with NONLOCAL.USE_BN False).
Official = namedtuple('Official', 'arc stem non_local affine')
# The official configs and the official model each one builds.
OFFICIAL_CONFIGS = {
    'c2d_r50-official_8xb8-8x8x1-400k_kinetics400-rgb.py': Official('c2d', 'video', False, False),
    'nl-c2d_r50-official_8xb8-8x8x1-400k_kinetics400-rgb.py': Official('c2d', 'video', True, False),
    'i3d_r50-official_8xb8-8x8x1-400k_kinetics400-rgb.py': Official('i3d', 'video', False, False),
    'nl-i3d_r50-official_8xb8-8x8x1-400k_kinetics400-rgb.py': Official('i3d', 'video', True, False),
    'c2d_r50-official_8xb8-32x2x1-400k_kinetics400-rgb.py': Official('c2d', 'org', False, False),
    'nl-c2d_r50-official_8xb8-32x2x1-400k_kinetics400-rgb.py': Official('c2d', 'org', True, False),
    'i3d_r50-official_8xb8-32x2x1-400k_kinetics400-rgb.py': Official('i3d', 'org', False, False),
    'nl-i3d_r50-official_8xb8-32x2x1-400k_kinetics400-rgb.py': Official('i3d', 'org', True, False),
    'i3d_r50-official-affine_8xb2-32x4x1-400k_kinetics400-rgb.py':
    Official('i3d', 'video', False, True),
    'nl-i3d_r50-official-affine_8xb2-32x4x1-400k_kinetics400-rgb.py':
    Official('i3d', 'video', True, True),
    'i3d_r50-official-affine_8xb2-128x1x1-400k_kinetics400-rgb.py':
    Official('i3d', 'org', False, True),
    'nl-i3d_r50-official-affine_8xb2-128x1x1-400k_kinetics400-rgb.py':
    Official('i3d', 'org', True, True),
}


def _bn_shapes(prefix, channels, affine):
    """Conv3dBN's SpatialBN (s, b, rm, riv) or Conv3dAffine's AffineNd (s, b)."""
    suffixes = ('s', 'b') if affine else ('s', 'b', 'rm', 'riv')
    return {f'{prefix}_{s}': (channels, ) for s in suffixes}


def video_blob_shapes(official, width=64, num_classes=400):
    """Parameter blobs (name -> shape) that create_model() builds for ``official``.

    ``width`` is RESNETS.WIDTH_PER_GROUP (64): the tests shrink it, keeping every
    other rule (block counts, inflation, placement of the non-local blocks).
    """
    temp = TEMP_CONVS[official.arc]
    shapes = {'conv1_w': (width, 3, 1 + 2 * temp[0][0], 7, 7)}
    shapes.update(_bn_shapes('res_conv1_bn', width, official.affine))
    dim_in = width
    for stage, use_temp_convs in enumerate(temp[1:]):
        dim_inner, dim_out = width * 2**stage, 4 * width * 2**stage
        # LAYER_MOD 2 in res3 and res4 when CONV3/CONV4_NONLOCAL (ResNet-50).
        nonlocal_mod = 2 if official.non_local and stage in (1, 2) else 1000
        for idx, use_temp_conv in enumerate(use_temp_convs):
            prefix = f'res{stage + 2}_{idx}'
            for branch, shape in (
                    ('branch2a', (dim_inner, dim_in, 1 + 2 * use_temp_conv, 1, 1)),
                    ('branch2b', (dim_inner, dim_inner, 1, 3, 3)),
                    ('branch2c', (dim_out, dim_inner, 1, 1, 1))):
                shapes[f'{prefix}_{branch}_w'] = shape
                shapes.update(_bn_shapes(f'{prefix}_{branch}_bn', shape[0], official.affine))
            stride = 2 if idx == 0 and stage > 0 else 1
            if dim_in != dim_out or stride != 1:  # _add_shortcut_3d
                shapes[f'{prefix}_branch1_w'] = (dim_out, dim_in, 1, 1, 1)
                shapes.update(_bn_shapes(f'{prefix}_branch1_bn', dim_out, official.affine))
            dim_in = dim_out
            if idx % nonlocal_mod == nonlocal_mod - 1:
                nl, inner = f'nonlocal_conv{stage + 2}_{idx}', dim_out // 2
                for conv in ('theta', 'phi', 'g'):
                    shapes[f'{nl}_{conv}_w'] = (inner, dim_out, 1, 1, 1)
                    shapes[f'{nl}_{conv}_b'] = (inner, )
                shapes[f'{nl}_out_w'] = (dim_out, inner, 1, 1, 1)
                shapes[f'{nl}_out_b'] = (dim_out, )
                if not official.affine:  # NONLOCAL.USE_BN
                    shapes.update(_bn_shapes(f'{nl}_bn', dim_out, affine=False))
    shapes['pred_w'] = (num_classes, dim_in)  # FC of the train net, as checkpoints save it
    shapes['pred_b'] = (num_classes, )
    return shapes


def imagenet_blob_shapes(depth, width=64, num_classes=1000):
    """Blobs of the official Caffe2 ImageNet ResNet-50/101 (2D kernels, SpatialBN)."""
    shapes = {'conv1_w': (width, 3, 7, 7), **_bn_shapes('res_conv1_bn', width, False)}
    dim_in = width
    for stage, num_blocks in enumerate({50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]):
        dim_inner, dim_out = width * 2**stage, 4 * width * 2**stage
        for idx in range(num_blocks):
            prefix = f'res{stage + 2}_{idx}'
            for branch, shape in (('branch2a', (dim_inner, dim_in, 1, 1)),
                                  ('branch2b', (dim_inner, dim_inner, 3, 3)),
                                  ('branch2c', (dim_out, dim_inner, 1, 1))):
                shapes[f'{prefix}_{branch}_w'] = shape
                shapes.update(_bn_shapes(f'{prefix}_{branch}_bn', shape[0], False))
            if idx == 0:
                shapes[f'{prefix}_branch1_w'] = (dim_out, dim_in, 1, 1)
                shapes.update(_bn_shapes(f'{prefix}_branch1_bn', dim_out, False))
            dim_in = dim_out
    shapes['pred_w'] = (num_classes, dim_in)
    shapes['pred_b'] = (num_classes, )
    return shapes


def random_blobs(shapes, seed=0):
    """float32 blobs of ``shapes``: weights ~ N(0, 1/fan_in) so that activations stay
    O(1) through 16 blocks, BN scales/shifts ~ O(1), variances in [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    blobs = {}
    for name, shape in shapes.items():
        if name.endswith('_riv'):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith('_w'):
            value = rng.normal(0, 1 / np.sqrt(np.prod(shape[1:])), shape)
        elif name.endswith('_s'):
            value = rng.uniform(0.5, 1.0, shape)
        else:
            value = rng.normal(0, 0.1, shape)
        blobs[name] = value.astype(np.float32)
    return blobs


def with_training_state(blobs):
    """What save_model_params() writes besides the parameters: a momentum blob per
    trainable parameter, ``model_iter`` and ``lr``."""
    state = dict(blobs)
    for name, value in blobs.items():
        if not name.endswith(('_rm', '_riv')):
            state[f'{name}_momentum'] = np.zeros(value.shape, value.dtype)
    state['model_iter'] = 400000
    state['lr'] = np.array([1e-4], dtype=np.float32)
    return state


# ----------------------------------------------------------------------------- forward pass


def _bn(x, blobs, prefix):
    """SpatialBN in test mode, (x - rm) / sqrt(riv + eps) * s + b, or AffineNd, x * s + b."""
    def channel(name):
        return blobs[f'{prefix}_{name}'].reshape(1, -1, 1, 1, 1)

    if f'{prefix}_rm' in blobs:
        return (x - channel('rm')) / torch.sqrt(channel('riv') + BN_EPSILON) * channel('s') \
            + channel('b')
    return x * channel('s') + channel('b')


def _conv(x, blobs, name, stride=1, pads=(0, 0, 0)):
    return F.conv3d(x, blobs[f'{name}_w'], blobs.get(f'{name}_b'), stride=stride, padding=pads)


def _spacetime_nonlocal(x, blobs, prefix):
    """nonlocal_helper.spacetime_nonlocal + add_nonlocal's sum, as written there."""
    batch, _, t, h, w = x.shape
    theta = _conv(x, blobs, f'{prefix}_theta')
    pooled = F.max_pool3d(x, kernel_size=(1, 2, 2), stride=(1, 2, 2))  # USE_MAXPOOL
    phi = _conv(pooled, blobs, f'{prefix}_phi')
    g = _conv(pooled, blobs, f'{prefix}_g')
    dim_inner = theta.shape[1]
    theta, phi, g = (blob.reshape(batch, dim_inner, -1) for blob in (theta, phi, g))
    theta_phi = torch.bmm(theta.transpose(1, 2), phi)  # BatchMatMul trans_a=1
    p = torch.softmax(theta_phi * dim_inner**-.5, dim=2)  # USE_SCALE, USE_SOFTMAX
    y = torch.bmm(g, p.transpose(1, 2))  # BatchMatMul trans_b=1: (B, C', N)
    out = _conv(y.reshape(batch, dim_inner, t, h, w), blobs, f'{prefix}_out')
    if f'{prefix}_bn_rm' in blobs:  # NONLOCAL.USE_BN
        out = _bn(out, blobs, f'{prefix}_bn')
    return x + out


def _grouped_nonlocal(x, blobs, prefix, group_size):
    """add_nonlocal_group: transpose, reshape into groups of frames, transpose back."""
    batch, c, t, h, w = x.shape
    groups = t // group_size
    x = x.transpose(1, 2).reshape(batch * groups, group_size, c, h, w).transpose(1, 2)
    out = _spacetime_nonlocal(x, blobs, prefix)
    return out.transpose(1, 2).reshape(batch, t, c, h, w).transpose(1, 2)


def official_forward(official, blobs, x):
    """Logits of the official train/val net (pool5 over the whole res5 map, as at 224
    crops, then the FC ``pred``) on x (N, 3, T, H, W), float64."""
    features = official_res5(official, blobs, x).mean(dim=(2, 3, 4))
    return features @ _tensors(blobs)['pred_w'].T + _tensors(blobs)['pred_b']


def official_test_scores(official, blobs, x):
    """Class probabilities of the official test net (split 'test', TEST_FULLY_CONV):
    pool5 (T, 7, 7) at stride 1, ``pred`` as a 1x1x1 conv, softmax per position, mean."""
    res5 = official_res5(official, blobs, x)
    pooled = F.avg_pool3d(res5, kernel_size=(res5.shape[2], 7, 7), stride=1)
    weight = _tensors(blobs)['pred_w']
    pred = F.conv3d(pooled, weight.reshape(*weight.shape, 1, 1, 1), _tensors(blobs)['pred_b'])
    return torch.softmax(pred, dim=1).mean(dim=(2, 3, 4))


def _tensors(blobs):
    return {k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in blobs.items()
            if isinstance(v, np.ndarray)}


def official_res5(official, blobs, x):
    """res5 features of the official net on x (N, 3, T, H, W), float64."""
    blobs = _tensors(blobs)
    temp = TEMP_CONVS[official.arc]
    conv1_stride, pool1 = STEMS[official.stem]
    x = _conv(x, blobs, 'conv1', (conv1_stride, 2, 2), (temp[0][0], 3, 3))
    x = F.relu(_bn(x, blobs, 'res_conv1_bn'))
    x = F.max_pool3d(x, kernel_size=(pool1, 3, 3), stride=(pool1, 2, 2))
    for stage, use_temp_convs in enumerate(temp[1:]):
        for idx, use_temp_conv in enumerate(use_temp_convs):
            prefix = f'res{stage + 2}_{idx}'
            stride = 2 if idx == 0 and stage > 0 else 1
            out = F.relu(_bn(_conv(x, blobs, f'{prefix}_branch2a', 1, (use_temp_conv, 0, 0)),
                             blobs, f'{prefix}_branch2a_bn'))
            out = F.relu(_bn(_conv(out, blobs, f'{prefix}_branch2b', (1, stride, stride),
                                   (0, 1, 1)), blobs, f'{prefix}_branch2b_bn'))
            out = _bn(_conv(out, blobs, f'{prefix}_branch2c'), blobs, f'{prefix}_branch2c_bn')
            shortcut = x
            if f'{prefix}_branch1_w' in blobs:
                shortcut = _bn(_conv(x, blobs, f'{prefix}_branch1', (1, stride, stride)), blobs,
                               f'{prefix}_branch1_bn')
            x = F.relu(out + shortcut)
            nl = f'nonlocal_conv{stage + 2}_{idx}'
            if f'{nl}_theta_w' in blobs:
                # res_stage_nonlocal_group (group_size 4) in res3 of the affine models.
                x = (_grouped_nonlocal(x, blobs, nl, 4) if official.affine and stage == 1 else
                     _spacetime_nonlocal(x, blobs, nl))
        if stage == 0:
            x = F.max_pool3d(x, kernel_size=(2, 1, 1), stride=(2, 1, 1))  # pool2
    return x
