"""Curves and training times from mmengine logs (MMAction2/MMDetection's analyze_logs).

    python tools/analysis/analyze_logs.py plot_curve LOG.json [LOG.json ...] --keys KEY ...
        [--legend NAME ...] [--style plain|paper-fig4] [--title T] --out FIG.png
    python tools/analysis/analyze_logs.py cal_train_time LOG.json [...] [--include-outliers]

LOG.json is a work dir's ``<timestamp>/vis_data/scalars.json``. ``--style
paper-fig4`` draws the paper's Figure 4: top-1 training error (dashed) and
validation error (solid) of each run (``--keys`` then names the training and the
validation accuracy, default ``top1_acc acc/top1``). See
:mod:`nlnet.visualization.training_logs`.
"""
import argparse
import sys

from nlnet.visualization.training_logs import (STYLES, load_scalars, plot_curve,
                                               plot_paper_fig4, train_time)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Analyse mmengine scalars.json logs')
    commands = parser.add_subparsers(dest='command', required=True)
    curve = commands.add_parser('plot_curve', help='plot logged scalars against iterations')
    curve.add_argument('json_logs', nargs='+', help='vis_data/scalars.json files')
    curve.add_argument('--keys', nargs='+', help='scalars to plot (default: loss; '
                       'paper-fig4: top1_acc acc/top1)')
    curve.add_argument('--legend', nargs='+', help='one name per log')
    curve.add_argument('--style', choices=STYLES, default='plain')
    curve.add_argument('--title', help='figure title')
    curve.add_argument('--out', required=True, help='PNG file to write')
    timing = commands.add_parser('cal_train_time', help='seconds per iteration per epoch')
    timing.add_argument('json_logs', nargs='+', help='vis_data/scalars.json files')
    timing.add_argument('--include-outliers', action='store_true',
                        help="keep each epoch's first record (data loader start-up)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logs = [load_scalars(path) for path in args.json_logs]
    if args.command == 'cal_train_time':
        for log in logs:
            stats = train_time(log, args.include_outliers)
            print(f'{log.path}\n  slowest epoch {stats["slowest_epoch"]}: '
                  f'{stats["slowest_time"]:.4f} s/iter\n  fastest epoch '
                  f'{stats["fastest_epoch"]}: {stats["fastest_time"]:.4f} s/iter\n  '
                  f'std over epochs: {stats["std_over_epochs"]:.4f}\n  '
                  f'average: {stats["average"]:.4f} s/iter')
        return
    if args.style == 'paper-fig4':
        train_key, val_key = args.keys or ('top1_acc', 'acc/top1')
        plot_paper_fig4(logs, args.out, args.legend, args.title, train_key, val_key)
    else:
        plot_curve(logs, args.keys or ['loss'], args.out, args.legend, args.title)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    try:
        main()
    except (KeyError, ValueError) as error:
        sys.exit(f'analyze_logs.py: error: {error.args[0]}')
