"""Click latency of the attention explorer (demo/attention_app.py), in a real browser.

Serves the page in this process (as ``demo/attention_app.py`` builds it), opens it in
headless Chromium through Selenium, uploads a video, then clicks ``--clicks`` points
(frames and pixels drawn with a fixed seed; the frame slider is moved first where the
frame changes) and reports, per click:

* ``server attend``: the server's time for the query's attention alone
  (:meth:`AttentionExplorer.attend`: one query's ``reference_weights`` from the cached
  block input, heat map, top keys);
* ``server handler``: the whole click handler (attend plus drawing the sheet and the
  frame);
* ``browser``: from the click event in the page to the new JSON and heat-map sheet
  shown (``performance.now`` in the page): what the user waits.

Also the upload (model run on the video, first query shown). Without ``--checkpoint``
the demo model is a seeded fresh network (the same cost as a trained one); with
``--screenshot`` the page is saved after a last click at ``--query``.

    python benchmarks/bench_attention_app.py [--clicks 20] [--json out.json]
    python benchmarks/bench_attention_app.py --checkpoint CKPT --label-map data/demo/demo_classes.txt \\
        --video demo/examples/cue_at_top_left.mp4 --query 7,4,4 --screenshot resources/attention_app.png
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import socket
import statistics
import sys
import tempfile
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CONFIG = osp.join(REPO, 'configs', 'demo', 'nl-c2d_r18-tiny_1xb16-8x2x1-20e_demo-rgb.py')
DEMO_VIDEO = osp.join(REPO, 'demo', 'examples', 'cue_at_top_left.mp4')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', default=DEMO_CONFIG, help='default: the demo NL-C2D')
    parser.add_argument('--checkpoint', help='default: a seeded fresh model of --config')
    parser.add_argument('--label-map', help='class names, one a line')
    parser.add_argument('--video', default=DEMO_VIDEO, help='default: a shipped example')
    parser.add_argument('--clicks', type=int, default=20, help='measured clicks (default 20)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the clicked points')
    parser.add_argument('--query', help='t,y,x of a last click before the screenshot')
    parser.add_argument('--screenshot', help='save the page as this PNG at the end')
    parser.add_argument('--json', help='write the figures here')
    return parser.parse_args(argv)


def _load_demo():
    spec = importlib.util.spec_from_file_location(
        'attention_app', osp.join(REPO, 'demo', 'attention_app.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fresh_checkpoint(config, folder):
    import torch
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    path = osp.join(folder, 'fresh.pth')
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()), path)
    return path


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _summary(values):
    ordered = sorted(values)
    return dict(median=statistics.median(ordered), p90=ordered[int(0.9 * (len(ordered) - 1))],
                max=ordered[-1], min=ordered[0], n=len(ordered))


def _ms(summary):
    return (f"median {1000 * summary['median']:.1f} ms, p90 {1000 * summary['p90']:.1f} ms, "
            f"max {1000 * summary['max']:.1f} ms (n={summary['n']})")


def _clicks(rng, count, input_size, first_query):
    """``count`` (t, y, x) input pixels, each other than the one before it."""
    points, last = [], [int(v) for v in first_query]
    while len(points) < count:
        point = [int(rng.integers(size)) for size in input_size]
        if point != last:
            points.append(point)
            last = point
    return points


def main(argv=None):
    args = parse_args(argv)
    import numpy as np
    import torch

    from nlnet.apps.attention_explorer import CLICK_FRAME_PIXELS
    from nlnet.apps.attention_sheet import enlargement
    from nlnet.apps.explorer_browser import ExplorerBrowser, find_browser

    found, missing = find_browser()
    if found is None:
        sys.exit(f'bench_attention_app: {missing}')
    app = _load_demo()
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = args.checkpoint or _fresh_checkpoint(args.config, folder)
        argv = [args.config, checkpoint, '--examples']
        if args.label_map:
            argv += ['--label-map', args.label_map]
        page = app.build_page(app.parse_args(argv))
        port = _free_port()
        server = page.launch('127.0.0.1', port, block=False)
        browser = ExplorerBrowser(f'http://127.0.0.1:{port}/', *found)
        load_before = os.getloadavg()
        try:
            start = time.perf_counter()
            first = browser.upload(args.video)
            upload_seconds = time.perf_counter() - start
            input_size = first['input_size']
            scale = enlargement(input_size[1:], CLICK_FRAME_PIXELS)
            points = _clicks(np.random.default_rng(args.seed), args.clicks, input_size,
                             first['query'])
            attend, handler, in_browser = [], [], []
            shown_frame = int(first['query'][0])
            for t, y, x in points:
                if t != shown_frame:
                    browser.show_frame(t)
                    shown_frame = t
                record, seconds = browser.click(y, x, scale)
                # At 1:1 a click may land one pixel off (ExplorerBrowser.click).
                shown = record['query']
                if shown[0] != t or abs(shown[1] - y) > 1 or abs(shown[2] - x) > 1:
                    raise RuntimeError(f'clicked {(t, y, x)}, the page shows {shown}')
                attend.append(record['seconds'])
                handler.append(record['handler_seconds'])
                in_browser.append(seconds)
            if args.query:
                t, y, x = (int(v) for v in args.query.split(','))
                if t != shown_frame:
                    browser.show_frame(t)
                browser.click(y, x, scale)
            if args.screenshot:
                browser.screenshot(args.screenshot)
            labels = browser.labels()
        finally:
            browser.close()
            server.close()
    load_after = os.getloadavg()
    result = dict(
        config=args.config, checkpoint=args.checkpoint or 'seeded fresh model',
        video=args.video, input_size=input_size, block=first['block'],
        key_grid=first['key_grid'], torch_threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(), load_average_before=load_before,
        load_average_after=load_after, upload_seconds=upload_seconds, labels=labels,
        server_attend=_summary(attend), server_handler=_summary(handler),
        browser=_summary(in_browser))
    print(f'attention explorer, {osp.basename(args.config)} ({result["checkpoint"]}), '
          f'{osp.basename(args.video)}: input {"x".join(map(str, input_size))}, block '
          f'{first["block"]} (key grid {"x".join(map(str, first["key_grid"]))}), '
          f'{result["torch_threads"]} torch threads on {result["cpu_count"]} CPUs, load average '
          f'{load_before[0]:.2f} before / {load_after[0]:.2f} after')
    print(f'upload (model run + first query shown): {1000 * upload_seconds:.0f} ms')
    print(f'click, server attend : {_ms(result["server_attend"])}')
    print(f'click, server handler: {_ms(result["server_handler"])}')
    print(f'click, in the browser: {_ms(result["browser"])}')
    if args.screenshot:
        print(f'screenshot: {args.screenshot}')
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(result, handle, indent=1)
    return result


if __name__ == '__main__':
    main()
