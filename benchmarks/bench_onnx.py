"""onnxruntime against PyTorch eager: inference time of NL-I3D ResNet-50 on one view, on the CPU.

    python benchmarks/bench_onnx.py [--config CONFIG] [--shape T H W] [--repeats 5]
        [--threads N] [--exporter dynamo|torchscript] [--json PATH]

The model is the config's (default: NL-I3D R50, five embedded-Gaussian blocks, the
paper's row) with random weights, its non-local blocks' last BN gamma random too (a
zero gamma would make each block the identity, which the check could not see). It is
exported as ``tools/deployment/export_onnx.py`` exports it
(:func:`nlnet.deployment.export_config_model`: one view, the scores, checked by
onnx.checker and onnxruntime; the max relative difference is printed) on one view of
the config's test pipeline (1 x 3 x 32 x 256 x 256 for the default) or ``--shape``.

Then the same input runs in PyTorch eager (``torch.inference_mode``, nlnet's default
routes) and in an onnxruntime CPU session (all graph optimisations), both on
``--threads`` intra-op threads, taking turns: one warm-up each, then ``--repeats``
timed forwards each. It prints the median and the range of each and the ratio of the
medians, with the machine and its load average before and after. This is not a test:
times on a shared machine are noisy.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import tempfile
import time

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
CONFIG = osp.join(ROOT, 'configs', 'recognition', 'nl-i3d',
                  'nl-i3d_r50-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=CONFIG, help='recognition config (default NL-I3D R50)')
    parser.add_argument('--shape', type=int, nargs='+',
                        help='T H W of the view (default: the config\'s test view)')
    parser.add_argument('--repeats', type=int, default=5, help='timed forwards per path')
    parser.add_argument('--threads', type=int, default=os.cpu_count(),
                        help='intra-op threads of PyTorch and onnxruntime')
    parser.add_argument('--exporter', default='dynamo', choices=('dynamo', 'torchscript'))
    parser.add_argument('--json', help='write the results to this file')
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.threads < 1:
        parser.error('--repeats and --threads must be at least 1')
    return args


def machine_info(threads):
    import onnxruntime
    from _measure import machine_info as common_info
    return common_info(onnxruntime=onnxruntime.__version__, threads=threads)


def random_checkpoint(config, path):
    """Random weights of the config's model, non-local BN gammas included, saved to ``path``."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    from nlnet.ops import NonLocalBlock
    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    cfg.model.backbone.pretrained = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, NonLocalBlock) and module.conv_out.with_norm:
                module.conv_out.norm.weight.uniform_(0.5, 1.5)
    torch.save({'state_dict': model.state_dict()}, path)
    return model.eval()


def timed(run, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def main(argv=None):
    args = parse_args(argv)
    import nlnet.openmmlab  # noqa: F401  (registers nlnet's models)
    import onnxruntime
    import torch

    from nlnet.deployment import RecognizerScores, export_config_model
    torch.set_num_threads(args.threads)
    info = machine_info(args.threads)
    print(f"{info['cpu']}, {info['cores']} cores, {args.threads} threads; torch {info['torch']}, "
          f"onnxruntime {info['onnxruntime']}")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as work:
        checkpoint, out = osp.join(work, 'model.pth'), osp.join(work, 'model.onnx')
        model = RecognizerScores(random_checkpoint(args.config, checkpoint))
        start = time.perf_counter()
        exported = export_config_model(args.config, checkpoint, out, args.shape,
                                       exporter=args.exporter)
        export_seconds = time.perf_counter() - start
        print(f'{osp.basename(args.config)}: view {exported.input_shape}, exported '
              f'({args.exporter}) and checked in {export_seconds:.0f} s, '
              f'{osp.getsize(out) / 2**20:.0f} MiB')
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = onnxruntime.InferenceSession(out, options,
                                               providers=['CPUExecutionProvider'])
        view = torch.randn(exported.input_shape, generator=torch.Generator().manual_seed(1))
        feed = {session.get_inputs()[0].name: view.numpy()}

        def eager():
            with torch.inference_mode():
                return model(view)

        def ort():
            return session.run(None, feed)[0]

        difference = (torch.from_numpy(ort()) - eager()).abs().max().item()  # the warm-ups
        times = {'pytorch': [], 'onnxruntime': []}
        for _ in range(args.repeats):  # taking turns: load changes hit both
            times['pytorch'] += timed(eager, 1)
            times['onnxruntime'] += timed(ort, 1)
    load_after = os.getloadavg()[0]
    medians = {path: statistics.median(values) for path, values in times.items()}
    for path, values in times.items():
        print(f'{path:<12} median {medians[path]:.3f} s  (min {min(values):.3f}, max '
              f'{max(values):.3f}, {args.repeats} runs)')
    print(f'onnxruntime / pytorch: {medians["onnxruntime"] / medians["pytorch"]:.2f} (medians); '
          f'max |difference| of the scores {difference:.1e}; load average {load_before:.2f} '
          f'before, {load_after:.2f} after')
    result = dict(machine=info, config=osp.relpath(args.config, ROOT),
                  input_shape=exported.input_shape, exporter=args.exporter,
                  export_seconds=export_seconds,
                  max_relative_difference=exported.onnx.max_relative_difference, seconds=times,
                  medians=medians, load_average=[load_before, load_after])
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(result, handle, indent=1)
    return result


if __name__ == '__main__':
    main()
