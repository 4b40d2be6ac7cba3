"""tools/model_converters/caffe2_to_nlnet.py: official pickle in, mmengine checkpoint out."""
import glob
import os.path as osp
import re
import runpy
import sys

import numpy as np
import pytest
import torch
from helpers.official_caffe2 import (OFFICIAL_CONFIGS, imagenet_blob_shapes, random_blobs,
                                     video_blob_shapes, with_training_state, write_python2_pickle)
from helpers.official_models import CONFIG_DIR, NUM_CLASSES, WIDTH, tiny_model
from mmengine.runner import load_checkpoint

from nlnet.converters import (ConfigChoiceError, blob_name_of_key, choose_config,
                              config_named_by, configs_fitting)

TOOL = osp.join(osp.dirname(osp.dirname(osp.dirname(CONFIG_DIR))), 'tools',
                'model_converters', 'caffe2_to_nlnet.py')
CONFIG = 'nl-i3d_r50-official-affine_8xb2-32x4x1-400k_kinetics400-rgb.py'


def run_tool(monkeypatch, *args):
    monkeypatch.setattr(sys, 'argv', [TOOL, *args])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(TOOL, run_name='__main__')
    return exit_info.value.code


@pytest.fixture
def tiny_config(tmp_path):
    """The official config at WIDTH channels per group, as a config file."""
    path = tmp_path / 'tiny.py'
    path.write_text(f"_base_ = [{osp.join(CONFIG_DIR, CONFIG)!r}]\n"
                    f"model = dict(backbone=dict(base_channels={WIDTH}), cls_head=dict("
                    f"in_channels={32 * WIDTH}, num_classes={NUM_CLASSES}))\n")
    return str(path)


def test_converts_into_the_config_model(monkeypatch, tmp_path, tiny_config):
    blobs = random_blobs(video_blob_shapes(OFFICIAL_CONFIGS[CONFIG], WIDTH, NUM_CLASSES))
    pkl, out = str(tmp_path / 'official.pkl'), str(tmp_path / 'converted.pth')
    write_python2_pickle(pkl, dict(blobs=with_training_state(blobs)))
    assert run_tool(monkeypatch, pkl, out, '--config', tiny_config) == 0
    model = tiny_model(CONFIG)
    checkpoint = load_checkpoint(model, out, strict=True)
    assert 'lr' in checkpoint['meta']['dropped_blobs']
    for key, value in model.state_dict().items():
        if blob_name_of_key(key):
            assert np.array_equal(value.numpy().reshape(blobs[blob_name_of_key(key)].shape),
                                  blobs[blob_name_of_key(key)]), key


def test_configs_fitting_names_the_fitting_config(tmp_path, tiny_config):
    """What the tool does without --config, on two candidates."""
    pkl = str(tmp_path / 'tiny.pkl')
    write_python2_pickle(pkl, dict(blobs=random_blobs(
        video_blob_shapes(OFFICIAL_CONFIGS[CONFIG], WIDTH, NUM_CLASSES))))
    full_size = osp.join(CONFIG_DIR, CONFIG)
    fitting, reasons = configs_fitting(pkl, [full_size, tiny_config])
    assert fitting == [tiny_config]
    assert 'conv1_w: shape (4, 3, 5, 7, 7)' in reasons[full_size]


def test_imagenet_mode(monkeypatch, tmp_path):
    blobs = random_blobs(imagenet_blob_shapes(50, WIDTH, NUM_CLASSES))
    pkl, out = str(tmp_path / 'r50.pkl'), str(tmp_path / 'r50.pth')
    write_python2_pickle(pkl, dict(blobs=with_training_state(blobs)))
    assert run_tool(monkeypatch, pkl, out, '--imagenet') == 0
    state_dict = torch.load(out, weights_only=True)
    assert np.array_equal(state_dict['layer4.2.bn3.running_var'].numpy(),
                          blobs['res5_2_branch2c_bn_riv'])
    assert np.array_equal(state_dict['fc.weight'].numpy(), blobs['pred_w'])


def write_tiny_config(folder, config):
    """The official ``config`` at WIDTH channels, saved under its own file name in ``folder``."""
    path = folder / config
    path.write_text(f"_base_ = [{osp.join(CONFIG_DIR, config)!r}]\n"
                    f"model = dict(backbone=dict(base_channels={WIDTH}), cls_head=dict("
                    f"in_channels={32 * WIDTH}, num_classes={NUM_CLASSES}))\n")
    return str(path)


def test_official_file_name_chooses_among_the_fitting_configs(tmp_path):
    """8x8 / 32x2 and 32x4 / 128x1 models share their parameters; the file name decides."""
    folder = tmp_path / 'configs'
    folder.mkdir()
    families = {
        'nl-i3d_r50-official_8xb8-8x8x1-400k_kinetics400-rgb.py':
            'nl-i3d_r50-official_8xb8-32x2x1-400k_kinetics400-rgb.py',
        'nl-i3d_r50-official-affine_8xb2-32x4x1-400k_kinetics400-rgb.py':
            'nl-i3d_r50-official-affine_8xb2-128x1x1-400k_kinetics400-rgb.py'}
    for short, long in families.items():
        configs = [write_tiny_config(folder, short), write_tiny_config(folder, long)]
        blobs = dict(blobs=random_blobs(video_blob_shapes(OFFICIAL_CONFIGS[short], WIDTH,
                                                          NUM_CLASSES)))
        prefix = 'I3D' if 'affine' in short else 'IN'
        for config, clip in ((short, re.search(r'-(\d+x\d+)x1-', short)[1]),
                             (long, re.search(r'-(\d+x\d+)x1-', long)[1])):
            pkl = write_python2_pickle(str(tmp_path / f'i3d_nonlocal_{clip}_{prefix}_pretrain_400k.pkl'),
                                       blobs)
            chosen, reason = choose_config(pkl, configs)
            assert chosen == str(folder / config) and 'named by the file name' in reason
        renamed = write_python2_pickle(str(tmp_path / 'model.pkl'), blobs)
        with pytest.raises(ConfigChoiceError) as refusal:
            choose_config(renamed, configs)
        assert 'fits 2 configs' in str(refusal.value) and 'pass --config' in str(refusal.value)
        assert f"['{short}', '{long}']" in str(refusal.value) or \
            f"['{long}', '{short}']" in str(refusal.value)


def test_every_released_model_name_names_its_config_in_the_readme():
    official = sorted(glob.glob(osp.join(CONFIG_DIR, '*.py')))
    with open(osp.join(CONFIG_DIR, 'README.md')) as handle:
        rows = re.findall(r'^\| ([A-Za-z0-9_]+) \| \[[^]]+\]\(([^)]+\.py)\)', handle.read(), re.M)
    assert len(rows) == 12
    for model, config in rows:
        assert config_named_by(f'/models/{model}.pkl', official) == osp.join(CONFIG_DIR, config)
    assert config_named_by('r50_pretrain_c2_model_iter450450_clean.pkl', official) is None


def test_imagenet_pickle_without_the_flag_gets_a_hint(monkeypatch, tmp_path, tiny_config, capsys):
    blobs = random_blobs(imagenet_blob_shapes(50, WIDTH, NUM_CLASSES))
    pkl = write_python2_pickle(str(tmp_path / 'r50.pkl'), dict(blobs=blobs))
    for config in ([], ['--config', tiny_config]):
        assert run_tool(monkeypatch, pkl, str(tmp_path / 'out.pth'), *config) == 2
        error = capsys.readouterr().err
        assert error.startswith(f'caffe2_to_nlnet.py: error: {pkl} is an official ImageNet '
                                'ResNet (conv1_w of shape (4, 3, 7, 7): 2-D kernels), not a '
                                'video model: convert it with --imagenet')
    assert not (tmp_path / 'out.pth').exists()


def test_unreadable_input_is_one_error_line(monkeypatch, tmp_path, capsys):
    missing, evil = tmp_path / 'missing.pkl', tmp_path / 'evil.pkl'
    evil.write_bytes(b"(dp0\nS'conv1_w'\np1\ncos\nsystem\np2\n(S'true'\ntRp3\ns.")
    for pkl, message in ((missing, f'Caffe2 checkpoint {missing} does not exist'),
                         (evil, f'refusing to load {evil}: it names the Python global os.system')):
        assert run_tool(monkeypatch, str(pkl), str(tmp_path / 'out.pth'), '--imagenet') == 2
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f'caffe2_to_nlnet.py: error: {message}')
