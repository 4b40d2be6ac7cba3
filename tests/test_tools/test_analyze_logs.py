"""tools/analysis/analyze_logs.py on mmengine scalars.json files written by mmengine's
own LocalVisBackend, as a training run writes them."""

import cv2
import pytest
from helpers.tool_modules import load_tool
from mmengine.visualization import LocalVisBackend

from nlnet.visualization.training_logs import load_scalars, plot_paper_fig4, train_time

tool = load_tool('analysis/analyze_logs.py')

ITERS_PER_EPOCH = 4


def write_run(root, name, train_acc, val_acc, time=0.5):
    """A 2-epoch run logging every 2 iterations and validating after each epoch, through
    mmengine's LocalVisBackend (the LoggerHook's backend) into <name>/vis_data."""
    backend = LocalVisBackend(save_dir=str(root / name / 'vis_data'))
    iteration = 0
    for epoch in (1, 2):
        for _ in range(ITERS_PER_EPOCH // 2):
            iteration += 2
            backend.add_scalars(dict(loss=1.0 / iteration, top1_acc=train_acc[iteration // 2 - 1],
                                     time=time * (3 if iteration == 2 else 1), epoch=epoch,
                                     iter=iteration), step=iteration)
        backend.add_scalars({'acc/top1': val_acc[epoch - 1]}, step=epoch)
    return str(root / name / 'vis_data' / 'scalars.json')


@pytest.fixture
def runs(tmp_path):
    return [write_run(tmp_path, 'c2d', [0.25, 0.25, 0.3, 0.2], [0.25, 0.26]),
            write_run(tmp_path, 'nl-c2d', [0.3, 0.5, 0.9, 0.9], [0.6, 0.95], time=0.25)]


def test_paper_fig4_curves(runs, tmp_path):
    logs = [load_scalars(path) for path in runs]
    out = str(tmp_path / 'fig4.png')
    curves = plot_paper_fig4(logs, out, legend=['C2D', 'NL-C2D'])
    # Training error: the mean over each epoch's records, at the epoch's last iteration;
    # validation error after epoch e at that same iteration.
    assert curves['NL-C2D']['train'] == [(4, pytest.approx(60)), (8, pytest.approx(10))]
    assert curves['NL-C2D']['val'] == [(4, pytest.approx(40)), (8, pytest.approx(5))]
    assert curves['C2D']['val'] == [(4, pytest.approx(75)), (8, pytest.approx(74))]
    assert cv2.imread(out).shape == (400, 600, 3)


def test_plot_curve_and_cal_train_time_commands(runs, tmp_path, capsys):
    out = str(tmp_path / 'loss.png')
    tool.main(['plot_curve', *runs, '--keys', 'loss', 'acc/top1', '--legend', 'a', 'b',
               '--out', out])
    assert cv2.imread(out) is not None
    tool.main(['plot_curve', *runs, '--style', 'paper-fig4', '--out', out])
    tool.main(['cal_train_time', runs[1]])
    printed = capsys.readouterr().out
    assert 'average: 0.2500 s/iter' in printed  # the first record of each epoch left out
    stats = train_time(load_scalars(runs[1]), include_outliers=True)
    assert stats['slowest_epoch'] == 1 and stats['slowest_time'] == pytest.approx(0.5)
    assert stats['fastest_epoch'] == 2 and stats['fastest_time'] == pytest.approx(0.25)


def test_bad_logs_are_named(runs, tmp_path):
    with pytest.raises(KeyError, match=r"scalars.json: no record logs 'top9'; logged keys: "
                       r'acc/top1, loss, time, top1_acc'):
        tool.main(['plot_curve', runs[0], '--keys', 'top9', '--out', str(tmp_path / 'x.png')])
    with pytest.raises(ValueError, match=r'--legend: 1 names for 2 logs'):
        tool.main(['plot_curve', *runs, '--legend', 'a', '--out', str(tmp_path / 'x.png')])
    broken = tmp_path / 'broken.json'
    broken.write_text('{"loss": 1, "iter": 1}\n{"loss": \n')
    with pytest.raises(ValueError, match=r'broken.json, line 2: not JSON'):
        load_scalars(str(broken))
    with pytest.raises(ValueError, match=r"log '.*absent.json' does not exist"):
        load_scalars(str(tmp_path / 'absent.json'))
