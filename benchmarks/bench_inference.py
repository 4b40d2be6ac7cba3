"""Videos per second of the multi-view test: nlnet's tools/test.py against MMAction2's, and the
demo's single-video latency.

    python benchmarks/bench_inference.py [--views 10x3] [--videos 3] [--repeats 2]
        [--workers 2] [--threads N] [--max-testing-views N] [--no-latency]
        [--paths nlnet mmaction2-tool mmaction2] [--device cpu|cuda] [--json PATH]

The model is the 5-block embedded-Gaussian NL-I3D ResNet-50, 32x2 clips, of MMAction2's
table, tested as its configs test it: clips of 32 frames (every 2nd) resized to a short
side of 256 and cropped at 256 x 256, ``--views CLIPSxCROPS`` views per video (the
configs: 10 clips x 3 crops; one crop is the centre crop). One random initialisation of
MMAction2's model is saved once, and under nlnet's names for nlnet's config
(:func:`save_weights`); every path loads those weights. ``--videos`` H.264 clips of
Kinetics' size (10 s at 30 fps, 340x256, ``bench_check_videos.write_clip``) are
generated once; every path tests the same list. The paths, each run as its own
command in a fresh process (``--repeats`` times, the paths taking turns):

- ``nlnet``: nlnet's ``tools/test.py`` on nlnet's config of the row
  (``configs/recognition/nl-i3d/...-mmaction-embedded-gaussian...``);
- ``mmaction2-tool``: MMAction2's own ``tools/test.py`` (mmengine's Runner and
  TestLoop, nothing of nlnet's test path) on the same nlnet config;
- ``mmaction2``: MMAction2's ``tools/test.py`` on MMAction2's config of the row
  (its ResNet3d and mmcv's NonLocal3d), run with nlnet's stack fixes alone
  (:data:`MMACTION_LAUNCHER`).

Every path tests with ``--dump`` and the benchmark prints how far the dumped scores
of each path are from nlnet's: none for ``mmaction2-tool`` (the same model); for
``mmaction2``, float32 rounding amplified by the random weights (the unscaled
embedded Gaussian's peaked softmax over ~50 layers; the two models are held equal in
float64 by tests/test_models/test_backbones/test_video_resnet.py).
Videos per second are those of the test loop (``_test_timing.InferenceTimingHook``,
the same hook in every path: reading, preprocessing, the model), after the first
video, whose step also holds one-time costs (it is printed apart); "startup" is the
rest of the command (imports, building the runner and the dataset, loading the
checkpoint). The loop is split into dataloader wait, the data preprocessor, the
backbone (and its non-local blocks) and the head. ``--max-testing-views N`` sets
``model.test_cfg.max_testing_views`` (views per backbone call) in every path.

The latency is the demo's (``nlnet.apis``, as ``demo/video_demo.py`` runs): one
video read through the config's test pipeline and scored, with the test views
(``--views``) and with one view, after the model is loaded once (timed too).

Defaults: 10x3 views on CUDA; 1x3 on CPU, where a 10x3 test of this model takes
20-40 s per video on two cores. This is not a test: times on a shared machine are
noisy (the load average is printed; the CPU time per video moves less with it).
"""
import argparse
import json
import os
import os.path as osp
import pickle
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
NLNET_CONFIG = osp.join(ROOT, 'configs', 'recognition', 'nl-i3d',
                        'nl-i3d_r50-in1k-pre-mmaction-embedded-gaussian_8xb8-32x2x1-100e_'
                        'kinetics400-rgb.py')
MMACTION_CONFIG = osp.join('recognition', 'i3d', 'i3d_imagenet-pretrained-r50-nl-embedded-'
                           'gaussian_8xb8-32x2x1-100e_kinetics400-rgb.py')
PATHS = ('nlnet', 'mmaction2-tool', 'mmaction2')
CROP = 256
# MMAction2's tools/test.py, run with nlnet's stack fixes alone (nlnet.compat, no nlnet
# registration): mmaction2 1.2.0's wheel lacks models/localizers/drn, without which
# ``import mmaction.models`` fails.
MMACTION_LAUNCHER = ('import runpy, sys; import nlnet.compat; sys.argv = sys.argv[1:]; '
                     "runpy.run_path(sys.argv[0], run_name='__main__')")


def mmaction_file(*parts):
    import mmaction
    return osp.join(mmaction.__path__[0], '.mim', *parts)


def path_command(path):
    """(tool, config) of a path."""
    nlnet_tool = osp.join(ROOT, 'tools', 'test.py')
    mmaction_tool = mmaction_file('tools', 'test.py')
    return {'nlnet': (nlnet_tool, NLNET_CONFIG),
            'mmaction2-tool': (mmaction_tool, NLNET_CONFIG),
            'mmaction2': (mmaction_tool, mmaction_file('configs', MMACTION_CONFIG))}[path]


def parse_views(text):
    try:
        clips, crops = (int(n) for n in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'--views {text!r}: expected CLIPSxCROPS, e.g. 10x3')
    if clips < 1 or crops not in (1, 3):
        raise argparse.ArgumentTypeError(f'--views {text!r}: clips >= 1 and crops 1 or 3')
    return clips, crops


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--views', type=parse_views,
                        help='CLIPSxCROPS per video (default 10x3 on CUDA, 1x3 on CPU)')
    parser.add_argument('--videos', type=int, default=3,
                        help='generated test videos (the first is a warm-up)')
    parser.add_argument('--repeats', type=int, default=2, help='runs of each path')
    parser.add_argument('--workers', type=int, default=2, help='test dataloader workers')
    parser.add_argument('--threads', type=int,
                        help='intra-op threads of each test process (OMP_NUM_THREADS; default: '
                        'torch\'s, the cores)')
    parser.add_argument('--max-testing-views', type=int,
                        help='views per backbone call (model.test_cfg.max_testing_views)')
    parser.add_argument('--paths', nargs='+', choices=PATHS, default=list(PATHS))
    parser.add_argument('--no-latency', action='store_true', help='skip the demo latency')
    parser.add_argument('--device', choices=('cpu', 'cuda'), help='default: cuda when available')
    parser.add_argument('--work-dir', help='keep the videos, configs and logs here')
    parser.add_argument('--json', help='write the results to this file')
    parser.add_argument('--latency-case', nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.videos < 1 or args.repeats < 1:
        parser.error('--videos and --repeats must be at least 1')
    return args


def machine_info(device):
    import torch
    from _measure import machine_info as common_info
    gpu = dict(gpu=torch.cuda.get_device_name()) if device == 'cuda' else {}
    return common_info(device=device, **gpu)


def write_videos(root, count):
    """``count`` Kinetics-size clips under ``root/videos``; returns (list file, video prefix)."""
    from bench_check_videos import write_clip
    prefix = osp.join(root, 'videos')
    os.makedirs(osp.join(prefix, 'generated'), exist_ok=True)
    rng = np.random.default_rng(0)
    lines = []
    for index in range(count):
        name = f'generated/clip_{index:03d}.mp4'
        write_clip(osp.join(prefix, name), rng)
        lines.append(f'{name} {int(rng.integers(400))}\n')
    ann_file = osp.join(root, 'test_list.txt')
    with open(ann_file, 'w') as handle:
        handle.writelines(lines)
    return ann_file, prefix


def save_weights(root):
    """One random initialisation of MMAction2's model of the row, saved once for every path:
    nlnet's blocks load mmcv's sub-sampled layout, and ``tools/test.py``'s strict key check
    maps it as they do.

    Returns:
        dict: the checkpoint file of each path.
    """
    import logging

    import torch
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope

    import nlnet.openmmlab  # noqa: F401
    from mmaction.registry import MODELS
    init_default_scope('mmaction')
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # init_weights' report
    torch.manual_seed(0)
    cfg = Config.fromfile(mmaction_file('configs', MMACTION_CONFIG))
    cfg.model.backbone.pretrained = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    path = osp.join(root, 'random_init_mmaction2.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(note='random init, seed 0')), path)
    return {'mmaction2': path, 'nlnet': path, 'mmaction2-tool': path}


def test_pipeline(pipeline, clips, crops):
    """``pipeline`` (a 10-clip x 3-crop test pipeline) with ``clips`` clips and ``crops`` crops."""
    edited = []
    for step in pipeline:
        step = dict(step)
        if step['type'] == 'SampleFrames':
            step['num_clips'] = clips
        elif step['type'] == 'ThreeCrop' and crops == 1:
            step = dict(type='CenterCrop', crop_size=CROP)
        edited.append(step)
    return edited


def write_case_config(source, out_file, data, args, timing_file):
    """``source`` with the benchmark's data, views and timing hook, written to ``out_file``."""
    from mmengine.config import Config
    cfg = Config.fromfile(source)
    cfg.model.backbone.pretrained = None
    if args.max_testing_views:
        cfg.model.test_cfg = dict(max_testing_views=args.max_testing_views)
    loader = cfg.test_dataloader
    loader.update(batch_size=1, num_workers=args.workers, persistent_workers=False)
    loader.dataset.update(ann_file=data[0], data_prefix=dict(video=data[1]))
    loader.dataset.pipeline = test_pipeline(loader.dataset.pipeline, *args.views)
    imports = dict(cfg.get('custom_imports') or dict(imports=[], allow_failed_imports=False))
    imports['imports'] = list(imports['imports']) + ['_test_timing']
    cfg.custom_imports = imports
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
        dict(type='InferenceTimingHook', out_file=timing_file)]
    cfg.default_hooks.logger.interval = 1
    cfg.dump(out_file)
    return out_file


def case_env(device, threads):
    path = os.pathsep.join([HERE, ROOT, os.environ.get('PYTHONPATH', '')])
    env = dict(os.environ, PYTHONPATH=path, MALLOC_MMAP_THRESHOLD_='65536',
               MALLOC_TRIM_THRESHOLD_='0')
    if device == 'cpu':
        env['CUDA_VISIBLE_DEVICES'] = ''
    if threads:
        env['OMP_NUM_THREADS'] = str(threads)
    return env


def run_path(path, repeat, root, data, checkpoint, args):
    """One test command of ``path``; returns its timing record."""
    tool, source = path_command(path)
    case = osp.join(root, f'{path}_{repeat}')
    os.makedirs(case, exist_ok=True)
    timing_file = osp.join(case, 'timing.json')
    config = write_case_config(source, osp.join(case, 'config.py'), data, args, timing_file)
    dump = osp.join(case, 'scores.pkl')
    launch = [sys.executable] if path == 'nlnet' else [sys.executable, '-c', MMACTION_LAUNCHER]
    command = [*launch, tool, config, checkpoint, '--work-dir', osp.join(case, 'work'),
               '--dump', dump]
    start = time.perf_counter()
    with open(osp.join(case, 'stdout.txt'), 'w') as out, open(osp.join(case, 'stderr.txt'),
                                                              'w') as err:
        done = subprocess.run(command, cwd=case, env=case_env(args.device, args.threads),
                              stdout=out, stderr=err)
    wall = time.perf_counter() - start
    if done.returncode != 0 or not osp.exists(timing_file):
        with open(osp.join(case, 'stderr.txt')) as err:
            raise RuntimeError(f'{path} (repeat {repeat}) failed, exit {done.returncode}:\n'
                               f'{err.read()[-3000:]}')
    with open(timing_file) as handle:
        record = json.load(handle)
    record.update(path=path, repeat=repeat, wall_s=wall, scores=dumped_scores(dump))
    return record


def dumped_scores(dump):
    """Per-video scores of a dump: nlnet's plain dump or MMAction2's DumpResults list."""
    with open(dump, 'rb') as handle:
        payload = pickle.load(handle)
    samples = payload['samples'] if isinstance(payload, dict) else payload
    return [np.asarray(sample['pred_score'], dtype=np.float64).tolist() for sample in samples]


def latency_case(config, checkpoint, ann_file, prefix, repeats):
    """The demo's per-video latency in this process: (load_s, {views: [s per video, ...]})."""
    import nlnet.openmmlab  # noqa: F401
    from nlnet.apis import load_model, read_video, video_scores
    with open(ann_file) as handle:
        videos = [osp.join(prefix, line.split()[0]) for line in handle]
    start = time.perf_counter()
    model = load_model(config, checkpoint)
    load_s = time.perf_counter() - start
    seconds = {}
    for views in (None, 1):
        seconds[str(views)] = []
        for _ in range(repeats):
            for video in videos:
                start = time.perf_counter()
                video_scores(model, read_video(video, model.cfg, views=views))
                seconds[str(views)].append(time.perf_counter() - start)
    return dict(load_s=load_s, seconds=seconds)


def run_latency(root, data, checkpoint, args):
    config = write_case_config(NLNET_CONFIG, osp.join(root, 'latency_config.py'), data, args,
                               osp.join(root, 'latency_timing.json'))
    command = [sys.executable, __file__, '--latency-case', config, checkpoint, *data]
    command += ['--repeats', str(args.repeats)]
    done = subprocess.run(command, cwd=root, env=case_env(args.device, args.threads),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f'latency case failed:\n{done.stderr[-3000:]}')
    return json.loads(done.stdout.strip().splitlines()[-1])


def spread(values):
    return statistics.median(values), min(values), max(values)


def steady(record, key):
    """Seconds per video of ``record[key]`` (per-step times) after the first video, whose
    step also holds one-time costs (first allocations, kernel selection); all videos when
    there is only one."""
    steps = record[key][1:] or record[key]
    return sum(steps) / len(steps)


def steady_rate(record):
    return 1 / steady(record, 'iter_s')


def summarize(records, paths):
    """Per path: videos/s (median, min, max over repeats), the first video and the loop's split."""
    summary = {}
    for path in paths:
        runs = [r for r in records if r['path'] == path]
        rates = [steady_rate(r) for r in runs]
        split = {key: statistics.median(r[key] / r['loop_s'] for r in runs)
                 for key in ('preprocess_s', 'backbone_s', 'non_local_s', 'head_s')}
        split['data_wait_s'] = statistics.median(sum(r['data_wait_s']) / r['loop_s'] for r in runs)
        summary[path] = dict(
            videos_per_s=spread(rates), s_per_video=statistics.median(1 / v for v in rates),
            cpu_s_per_video=spread([steady(r, 'iter_cpu_s') for r in runs]),
            first_video_s=statistics.median(r['iter_s'][0] for r in runs),
            startup_s=statistics.median(r['wall_s'] - r['loop_s'] for r in runs),
            peak_mb=statistics.median(r['peak_mb'] for r in runs), split=split,
            backbone_calls=runs[0]['backbone_calls'], memory_method=runs[0]['memory_method'])
    return summary


def score_gap(records, path):
    """Largest |score difference| between ``path``'s first run and nlnet's."""
    first = {r['path']: np.asarray(r['scores']) for r in records if r['repeat'] == 0}
    if 'nlnet' not in first or path not in first:
        return None
    return float(np.abs(first[path] - first['nlnet']).max())


def print_report(info, args, summary, records, latency, loads):
    clips, crops = args.views
    print(f'machine: {info["cpu"]}, {info["cores"]} cores'
          + (f', {info["gpu"]}' if 'gpu' in info else '')
          + f'; python {info["python"]}, torch {info["torch"]}')
    print(f'device {args.device}, {records[0]["threads"]} threads; {args.videos} videos of 10 s, '
          f'340x256, H.264; {clips} clips x {crops} crops = {clips * crops} views of '
          f'32x{CROP}x{CROP}; {args.workers} dataloader workers; {args.repeats} repeats; '
          f'max_testing_views {args.max_testing_views or "unset (one batch)"}')
    print(f'load average (1 min) before {loads[0]:.2f}, after {loads[1]:.2f}')
    print('videos/s: after the first video (median [min, max] over the repeats); CPU s: this '
          'process\'s CPU time per video (all threads, not the dataloader workers); first: the '
          'first video\'s step; startup: the command outside the test loop; peak: above the '
          f'loop\'s start ({records[0]["memory_method"]}); split of the whole loop: dataloader '
          'wait / data preprocessor / backbone (its non-local blocks) / head')
    print(f'{"path":15s} {"videos/s":>28s} {"s/video":>8s} {"CPU s/video":>11s} '
          f'{"first s":>8s} {"startup s":>9s} {"peak MiB":>9s}  split')
    for path, s in summary.items():
        median, low, high = s['videos_per_s']
        split = s['split']
        print(f'{path:15s} {median:10.4f} [{low:.4f}, {high:.4f}] {s["s_per_video"]:8.2f} '
              f'{s["cpu_s_per_video"][0]:11.2f} {s["first_video_s"]:8.2f} '
              f'{s["startup_s"]:9.1f} {s["peak_mb"]:9.0f}  '
              f'{100 * split["data_wait_s"]:.0f} / {100 * split["preprocess_s"]:.0f} / '
              f'{100 * split["backbone_s"]:.0f} ({100 * split["non_local_s"]:.0f}) / '
              f'{100 * split["head_s"]:.0f} %')
    first = summary[next(iter(summary))]
    print(f'backbone calls per test (batch of each): {first["backbone_calls"]}')
    for path in summary:
        if path != 'nlnet' and 'nlnet' in summary:
            ratio = summary['nlnet']['videos_per_s'][0] / summary[path]['videos_per_s'][0]
            cpu = summary[path]['cpu_s_per_video'][0] / summary['nlnet']['cpu_s_per_video'][0]
            print(f'nlnet / {path}: {ratio:.3f}x videos per second, {cpu:.3f}x videos per CPU '
                  f'second (medians); dumped scores differ from nlnet\'s by at most '
                  f'{score_gap(records, path):.2e}')
    if latency:
        print(f'demo latency (nlnet.apis, model loaded once in {latency["load_s"]:.1f} s):')
        for views, seconds in latency['seconds'].items():
            label = f'{clips * crops} views' if views == 'None' else '1 view'
            median, low, high = spread(seconds)
            print(f'  {label:9s} read + score: {median:.2f} s per video [{low:.2f}, {high:.2f}] '
                  f'over {len(seconds)}')


def main(argv=None):
    args = parse_args(argv)
    if args.latency_case:
        print(json.dumps(latency_case(*args.latency_case, repeats=args.repeats)))
        return None
    import torch
    args.device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if args.views is None:
        args.views = (10, 3) if args.device == 'cuda' else (1, 3)
    info = machine_info(args.device)
    root = args.work_dir or tempfile.mkdtemp(prefix='bench_inference_')
    os.makedirs(root, exist_ok=True)
    data = write_videos(root, args.videos)
    checkpoints = save_weights(root)
    loads = [os.getloadavg()[0]]
    records = []
    for repeat in range(args.repeats):
        for path in args.paths:
            records.append(run_path(path, repeat, root, data, checkpoints[path], args))
            r = records[-1]
            print(f'{path:15s} run {repeat + 1}: {steady_rate(r):.4f} videos/s, '
                  f'loop {r["loop_s"]:.1f} s, command {r["wall_s"]:.1f} s', flush=True)
    latency = None if args.no_latency else run_latency(root, data, checkpoints['nlnet'], args)
    loads.append(os.getloadavg()[0])
    summary = summarize(records, args.paths)
    print_report(info, args, summary, records, latency, loads)
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(dict(machine=info, views=args.views, videos=args.videos,
                           repeats=args.repeats, workers=args.workers,
                           max_testing_views=args.max_testing_views, load_average=loads,
                           summary=summary, latency=latency,
                           runs=[{k: v for k, v in r.items() if k != 'scores'}
                                 for r in records]), handle, indent=2)
    return summary


if __name__ == '__main__':
    main()
