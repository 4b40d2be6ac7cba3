"""The attention explorer (demo/attention_app.py) in a real browser: headless Chromium driven
by Selenium uploads a generated demo video, moves to a frame, clicks a point, and the attention
the page shows must be ``reference_weights`` of the block for that query, computed here from
the block and its input as MMAction2's own inference caught it; the heat-map sheet the browser
received must be the one drawn from those weights; the labels the page lists must be the
recognizer's scores. The page's screenshot is kept as an artifact (path printed). Without the
browser: ``--views test`` labels, and the errors the page shows."""
import importlib.util
import os
import os.path as osp
import socket
import urllib.request

import cv2
import numpy as np
import pytest
import torch
from mmaction.apis import inference_recognizer
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import MODELS, init_default_scope

from helpers.tool_modules import load_tool
from helpers.video_tools import DEMO_CONFIG, ROOT
from nlnet.apps.attention_session import AttentionExplorer
from nlnet.apps.attention_sheet import draw_attention_sheet
from nlnet.apps.explorer_browser import ExplorerBrowser, find_browser
from nlnet.ops.reference import reference_weights

DEFAULT_SCOPE = 'mmaction'
BLOCK = 'backbone.layer2.0.non_local_block'
ADE_CONFIG = osp.join(ROOT, 'configs', 'segmentation', 'nonlocal_net',
                      'nonlocal_r50-d8_4xb4-80k_ade20k-512x512.py')
ARTIFACT = osp.join(ROOT, 'work_dirs', 'test_artifacts', 'attention_app.png')
# The demo clip: 8 frames of 32 x 32 px; the block after res3 sees a 4 x 4 grid per frame,
# so one feature cell (and key cell: no sub-sampling) covers 8 x 8 input pixels.
FRAMES, SIZE, CELL = 8, 32, 8
# A single view as MMAction2's demo would read it: the centre clip, no crop (the demo's
# crops are the whole 32 x 32 frame).
SINGLE_VIEW = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=2, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]

gradio = pytest.importorskip('gradio', reason='gradio is not installed (pip install .[app])')
BROWSER, MISSING = find_browser()


def load_demo(path):
    spec = importlib.util.spec_from_file_location('attention_app', osp.join(ROOT, 'demo', path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def model_and_files(tmp_path_factory):
    """A seeded fresh demo NL-C2D saved as the checkpoint, and a generated demo video.

    theta and phi are drawn wide, so that the block's attention is far from uniform (at
    their initial scale every weight is about 1/M, and another query's would look alike)."""
    root = tmp_path_factory.mktemp('attention_app')
    cfg = Config.fromfile(DEMO_CONFIG)
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    block = model.get_submodule(BLOCK)
    for conv in (block.theta.conv, block.phi.conv):
        torch.nn.init.normal_(conv.weight, std=1.0)
    checkpoint = str(root / 'nl.pth')
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    labels = root / 'classes.txt'
    labels.write_text('\n'.join(f'demo class {i}' for i in range(4)) + '\n')
    video = load_tool('data/make_demo_examples.py').make_examples(str(root), count=1)[0]
    return model, checkpoint, str(labels), video


@pytest.fixture(scope='module')
def page(model_and_files):
    """The page as ``demo/attention_app.py CONFIG CHECKPOINT --label-map ...`` builds it."""
    _, checkpoint, labels, _ = model_and_files
    app = load_demo('attention_app.py')
    return app.build_page(app.parse_args([DEMO_CONFIG, checkpoint, '--label-map', labels,
                                          '--examples']))


@pytest.fixture(scope='module')
def browser_on_page(page):
    port = free_port()
    server = page.launch('127.0.0.1', port, block=False)
    try:
        browser = ExplorerBrowser(f'http://127.0.0.1:{port}/', *BROWSER)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        server.close()


def mmaction_view(model, video, pipeline=SINGLE_VIEW):
    """Scores and the block's input x as MMAction2's ``inference_recognizer`` runs the model."""
    caught = {}
    block = model.get_submodule(BLOCK)
    handle = block.register_forward_pre_hook(lambda module, args: caught.update(x=args[0]))
    try:
        sample = inference_recognizer(model, video, Compose(pipeline))
    finally:
        handle.remove()
    return sample.pred_score, caught['x'], block


def sheet_of(weights, frames, query, num_keys):
    """The heat-map sheet for ``weights`` (T*4*4 keys), drawn from the weights alone."""
    grid = weights.reshape(FRAMES, SIZE // CELL, SIZE // CELL).numpy()
    heat = grid.repeat(CELL, axis=1).repeat(CELL, axis=2)
    keys = []
    for index in weights.topk(num_keys).indices.tolist():
        t, rest = divmod(index, (SIZE // CELL) ** 2)
        row, column = divmod(rest, SIZE // CELL)
        keys.append(dict(box=[[t, t + 1], [row * CELL, (row + 1) * CELL],
                              [column * CELL, (column + 1) * CELL]]))
    shares = grid.reshape(FRAMES, -1).sum(1).tolist()
    return draw_attention_sheet(frames, heat, query, keys, shares, scale=5, columns=4)


def fetched_image(browser, selector):
    url = browser.driver.find_element('css selector', f'{selector} img').get_attribute('src')
    with urllib.request.urlopen(url, timeout=10) as response:
        data = np.frombuffer(response.read(), np.uint8)
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.mark.skipif(BROWSER is None, reason=f'no browser for the test: {MISSING}')
def test_click_shows_reference_weights_of_the_query(model_and_files, browser_on_page):
    model, _, _, video = model_and_files
    browser = browser_on_page
    first = browser.upload(video)
    scores, x, block = mmaction_view(model, video)

    # The labels: the recognizer's four scores, best first, under the label map's names.
    order = scores.argsort(descending=True).tolist()
    shown_labels = browser.labels()
    assert [name for name, _ in shown_labels] == [f'demo class {i}' for i in order]
    np.testing.assert_allclose([score for _, score in shown_labels], scores[order].numpy(),
                               rtol=1e-6)

    # Frame 6 (not the first query's frame), pixel (y, x) = (27, 12): feature cell (3, 1).
    assert first['query'] != [6.0, 27.0, 12.0]
    browser.show_frame(6)
    shown, _ = browser.click(27, 12, scale=10)  # the clickable frame: 32 px drawn at 320
    query_index = 6 * 16 + (27 // CELL) * 4 + 12 // CELL
    assert shown['block'] == BLOCK and shown['query'] == [6.0, 27.0, 12.0]
    assert shown['query_index'] == query_index
    assert shown['grid'] == shown['key_grid'] == [FRAMES, 4, 4]
    with torch.no_grad():
        expected = reference_weights(block, x, [query_index])[0, 0]
    weights = torch.tensor(shown['weights'], dtype=torch.float64)
    torch.testing.assert_close(weights, expected.double(), rtol=1e-6, atol=1e-9)
    assert [key['key_index'] for key in shown['top_keys']] == \
        expected.topk(len(shown['top_keys'])).indices.tolist()

    # The sheet the browser shows is the one drawn from the reference weights.
    clip = Compose(SINGLE_VIEW)(dict(filename=video, label=-1, start_index=0, modality='RGB'))
    frames = clip['inputs'][0].permute(1, 2, 3, 0).numpy()
    drawn = sheet_of(expected, frames, shown['query'], len(shown['top_keys']))
    np.testing.assert_array_equal(fetched_image(browser, '#attention-maps'), drawn)

    os.makedirs(osp.dirname(ARTIFACT), exist_ok=True)
    print(f'attention explorer screenshot: {browser.screenshot(ARTIFACT)}')
    assert cv2.imread(ARTIFACT) is not None


def test_test_views_label_the_video_and_clicks_use_the_first_view(model_and_files):
    """``--views test``: the labels combine the config's 10 clips x 3 crops; a click's
    attention is that of the first view (the one whose frames the page shows)."""
    model, checkpoint, labels, video = model_and_files
    app = load_demo('attention_app.py')
    explorer = app.build_page(app.parse_args([DEMO_CONFIG, checkpoint, '--label-map', labels,
                                              '--views', 'test', '--examples'])).explorer
    features = explorer.analyse(video)
    scores, x, block = mmaction_view(
        model, video, Config.fromfile(DEMO_CONFIG).test_dataloader.dataset.pipeline)
    assert x.shape[0] == 30
    order = scores.argsort(descending=True).tolist()
    assert [label.index for label in features.labels] == order
    np.testing.assert_allclose([label.score for label in features.labels], scores[order].numpy(),
                               rtol=1e-6)
    record, _ = explorer.attend(features, BLOCK, [7, 30, 2])
    with torch.no_grad():
        expected = reference_weights(block, x[:1], [7 * 16 + 3 * 4 + 0])[0, 0]
    torch.testing.assert_close(torch.tensor(record['weights'], dtype=torch.float64),
                               expected.double(), rtol=1e-6, atol=1e-9)


def test_command_line_errors_name_the_file(model_and_files):
    app = load_demo('attention_app.py')
    c2d = DEMO_CONFIG.replace('nl-c2d', 'c2d')
    with pytest.raises(SystemExit, match=r"attention_app.py: error: checkpoint '.*nl.pth' does "
                       r'not fit the model of .*c2d_r18'):
        app.main([c2d, model_and_files[1]])


def test_unreadable_upload_and_outside_click_are_named(page, model_and_files, tmp_path):
    not_a_video = tmp_path / 'notes.mp4'
    not_a_video.write_text('not a video')
    with pytest.raises(gradio.Error, match=r"video '.*notes\.mp4' cannot be read"):
        page.on_video(str(not_a_video), BLOCK)
    features = page.explorer.analyse(model_and_files[3])
    with pytest.raises(gradio.Error, match=r'query \(8, 1, 1\): t=8 is outside the input'):
        page._show(features, BLOCK, [8, 1, 1])


def test_models_without_attention_to_explore_are_refused():
    for config, message in ((DEMO_CONFIG.replace('nl-c2d', 'c2d'), 'has no non-local block'),
                            (ADE_CONFIG, 'takes video recognition configs, this one is for '
                                         'segmentation')):
        cfg = Config.fromfile(config)
        init_default_scope(cfg.default_scope)
        if cfg.default_scope == 'mmseg':  # a narrow NonLocalNet: the refusal is the point
            cfg.model.update(pretrained=None)
            cfg.model.backbone.depth = 18
            cfg.model.decode_head.update(in_channels=512, channels=32)
            cfg.model.auxiliary_head.update(in_channels=256, channels=16)
        model = MODELS.build(cfg.model)
        model.cfg = cfg
        with pytest.raises(ValueError, match=f'{osp.basename(config)}: the (model|explorer) '
                           f'.*{message}'):
            AttentionExplorer(model, ['a', 'b', 'c', 'd'])
