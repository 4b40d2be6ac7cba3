"""tools/analysis/summarize_dumps.py: the demo's side-by-side metrics of --dump pickles."""
import pickle

import pytest
from helpers.tool_modules import load_tool

summarize_dumps = load_tool('analysis/summarize_dumps.py')


def write_dump(path, config, metrics, num_samples, skipped=()):
    with open(path, 'wb') as handle:
        pickle.dump(dict(config=config, checkpoint='ckpt.pth', metrics=metrics,
                         samples=[dict(index=i) for i in range(num_samples)],
                         skipped=list(skipped)), handle)
    return str(path)


def test_prints_one_row_per_dump_with_every_metric(tmp_path, capsys):
    nl = write_dump(tmp_path / 'nl.pkl', 'configs/demo/nl.py', {'acc/top1': 0.4675}, 400)
    c2d = write_dump(tmp_path / 'c2d.pkl', 'configs/demo/c2d.py',
                     {'acc/top1': 0.2625, 'acc/top5': 1.0}, 399, skipped=[dict(filename='x')])
    summarize_dumps.main([nl, c2d])
    header, first, second = capsys.readouterr().out.splitlines()
    assert header.split() == ['config', 'samples', 'skipped', 'acc/top1', 'acc/top5']
    assert first.split() == ['nl', '400', '0', '0.4675', '-']
    assert second.split() == ['c2d', '399', '1', '0.2625', '1.0000']


@pytest.mark.parametrize('content', [b'not a pickle', pickle.dumps({'samples': []})])
def test_unusable_file_is_named(tmp_path, content):
    path = tmp_path / 'bad.pkl'
    path.write_bytes(content)
    with pytest.raises(SystemExit, match='bad.pkl'):
        summarize_dumps.main([str(path)])
