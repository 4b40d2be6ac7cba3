"""MMAction2's and MMSeg's own inference APIs on nlnet configs, each in a fresh interpreter
where nothing of nlnet is registered (the config's ``custom_imports`` must do it): they give
what nlnet.apis gives in this process.

MMAction2's runs in a user's script that imports nlnet first (which registers nothing
before the stack is loaded), MMSeg's where nlnet was never imported. The two interpreters
run side by side (one start-up's wait instead of two).
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers.demo_inputs import (dataset_meta, save_seeded_checkpoint, write_scene_image,
                                 write_tiny_ade_config)
from helpers.h264_videos import write_h264_clip
from helpers.video_tools import DEMO_CONFIG, ROOT
from mmengine.config import Config

from nlnet import apis

NO_NLNET = "assert not [m for m in sys.modules if m.split('.')[0] == 'nlnet'], 'nlnet imported'"

# A user's script: ``import nlnet`` first, which registers nothing before the stack is
# loaded, then MMAction2's own API builds the model from an nlnet config.
MMACTION = """
import json, sys
import nlnet
registered_by_import = 'nlnet.openmmlab' in sys.modules
from mmaction.apis import inference_recognizer, init_recognizer
model = init_recognizer(CONFIG, CHECKPOINT, device='cpu')
blocks = [type(m).__name__ for m in model.modules() if type(m).__name__ == 'NonLocalBlock']
sample = inference_recognizer(model, VIDEO)
print(json.dumps(dict(registered_by_import=registered_by_import,
                      registered='nlnet.openmmlab' in sys.modules, blocks=blocks,
                      scores=sample.pred_score.tolist())))
"""

MMSEG = """
import json, sys
from mmseg.apis import MMSegInferencer, inference_model, init_model
assert not [m for m in sys.modules if m.split('.')[0] == 'nlnet'], 'nlnet imported'
model = init_model(CONFIG, CHECKPOINT, device='cpu')
registered = 'nlnet.openmmlab' in sys.modules
mask = inference_model(model, IMAGE).pred_sem_seg.data[0]
inferencer = MMSegInferencer(model=CONFIG, weights=CHECKPOINT, device='cpu')
inferred = inferencer(IMAGE, return_datasamples=True).pred_sem_seg.data[0]
print(json.dumps(dict(registered=registered, mask=mask.tolist(), inferencer=inferred.tolist())))
"""


def start(script, **values):
    """Start ``script`` in a fresh interpreter with ``values`` as its globals' constants."""
    header = ''.join(f'{name} = {value!r}\n' for name, value in values.items())
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, '-c', header + textwrap.dedent(script)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process, name):
    stdout, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, f'{name} failed:\n{stderr[-3000:]}'
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp('openmmlab_inference')
    video = write_h264_clip(root / 'clip.mp4', num_frames=40)
    video_ckpt = save_seeded_checkpoint(Config.fromfile(DEMO_CONFIG), root / 'nl.pth')
    seg_config = write_tiny_ade_config(root / 'tiny_ade.py')
    seg_cfg = Config.fromfile(seg_config)
    seg_ckpt = save_seeded_checkpoint(seg_cfg, root / 'seg.pth',
                                      meta=dict(dataset_meta=dataset_meta(seg_cfg)))
    image = write_scene_image(root / 'scene.png')
    processes = dict(
        mmaction=start(MMACTION, CONFIG=DEMO_CONFIG, CHECKPOINT=video_ckpt, VIDEO=video),
        mmseg=start(MMSEG, CONFIG=seg_config, CHECKPOINT=seg_ckpt, IMAGE=image))
    outputs = {name: finish(process, name) for name, process in processes.items()}
    return dict(outputs=outputs, video=video, video_ckpt=video_ckpt, seg_config=seg_config,
                seg_ckpt=seg_ckpt, image=image)


def test_mmaction_inference_recognizer_scores_as_nlnet(runs):
    """After ``import nlnet`` nothing is registered; init_recognizer registers nlnet through
    the config's custom_imports and builds its non-local block, and inference_recognizer
    (the config's test_pipeline: 10 clips x 3 crops) scores as nlnet.apis does."""
    output = runs['outputs']['mmaction']
    assert not output['registered_by_import']
    assert output['registered'] and output['blocks'] == ['NonLocalBlock']
    model = apis.load_model(DEMO_CONFIG, runs['video_ckpt'])
    ours = apis.video_scores(model, apis.read_video(runs['video'], model.cfg))
    assert np.array_equal(np.asarray(output['scores'], np.float32), ours)


def test_mmseg_init_model_and_inferencer_segment_as_nlnet(runs):
    """MMSeg's init_model + inference_model and MMSegInferencer, in an interpreter that never
    imported nlnet, segment as nlnet.apis does."""
    output = runs['outputs']['mmseg']
    assert output['registered']
    model = apis.load_model(runs['seg_config'], runs['seg_ckpt'])
    ours = apis.segment_image(model, runs['image']).mask
    assert np.array_equal(np.asarray(output['mask']), ours)
    assert np.array_equal(np.asarray(output['inferencer']), ours)
