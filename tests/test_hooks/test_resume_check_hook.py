"""ResumeCheckHook on a real Runner: where a resumed run continues, and the refusal of a
checkpoint saved by a run with another model, data or schedule."""
import pytest
from helpers.tiny_runner import tiny_runner
from helpers.video_tools import run_log
from mmengine.config import Config

from nlnet.hooks import ResumeCheckHook, run_config_differences
from nlnet.utils import PreflightError

RUN = dict(model=dict(type='A', depth=2), train_dataloader=dict(dataset=dict(ann_file='a.txt')),
           train_cfg=dict(max_epochs=2), optim_wrapper=dict(optimizer=dict(lr=0.1)),
           work_dir='run', default_hooks=dict(logger=dict(interval=1)))


def saved(cfg=RUN, **meta):
    """A checkpoint saved after epoch 1, iteration 4 by a run of ``cfg``."""
    return dict(meta=dict(epoch=1, iter=4, cfg=Config(cfg).pretty_text, **meta))


def runner_of(tmp_path, **changes):
    return tiny_runner(tmp_path, cfg=Config(dict(RUN, **changes)))


def test_the_same_run_resumes_and_says_where(tmp_path):
    runner = runner_of(tmp_path, work_dir='elsewhere', default_hooks=dict(logger=dict(interval=5)))
    ResumeCheckHook('iter_4.pth').after_load_checkpoint(runner, saved())
    assert ('--resume: continuing from iter_4.pth after epoch 1, iteration 4 (the next one '
            'trained is iteration 5)') in run_log(tmp_path)


def test_another_model_data_or_schedule_is_refused_naming_keys_and_values(tmp_path):
    runner = runner_of(tmp_path, model=dict(type='A', depth=3),
                       train_dataloader=dict(dataset=dict(ann_file='b.txt')),
                       optim_wrapper=dict(optimizer=dict(lr=0.2)))
    with pytest.raises(PreflightError) as error:
        ResumeCheckHook('iter_4.pth').after_load_checkpoint(runner, saved())
    message = str(error.value)
    assert message.startswith('--resume: the config of iter_4.pth differs from this one in the '
                              'model, data or schedule:')
    for line in ("  model.depth: 2 in the checkpoint, 3 now",
                 "  train_dataloader.dataset.ann_file: 'a.txt' in the checkpoint, 'b.txt' now",
                 "  optim_wrapper.optimizer.lr: 0.1 in the checkpoint, 0.2 now"):
        assert line in message.splitlines()
    assert message.endswith('pass --resume-anyway to resume all the same, or start a new run '
                            '(another --work-dir)')


def test_resume_anyway_logs_the_differences_and_goes_on(tmp_path):
    runner = runner_of(tmp_path, train_cfg=dict(max_epochs=3))
    ResumeCheckHook('iter_4.pth', resume_anyway=True).after_load_checkpoint(runner, saved())
    log = run_log(tmp_path)
    assert '  train_cfg.max_epochs: 2 in the checkpoint, 3 now' in log
    assert 'resuming all the same (--resume-anyway)' in log
    assert '--resume: continuing from iter_4.pth after epoch 1' in log


@pytest.mark.parametrize('meta, warning', [
    (dict(epoch=1, iter=4), '--resume: iter_4.pth holds no saved config (meta["cfg"]); cannot '
     'check that it is a checkpoint of this run'),
    (dict(epoch=1, iter=4, cfg='model = dict(\n'), '--resume: cannot read the config saved in '
     'iter_4.pth (SyntaxError'),
], ids=['no config', 'unreadable config'])
def test_a_checkpoint_without_a_readable_config_is_named_not_a_crash(tmp_path, meta, warning):
    ResumeCheckHook('iter_4.pth').after_load_checkpoint(runner_of(tmp_path), dict(meta=meta))
    log = run_log(tmp_path)
    assert f'WARNING - {warning}' in log
    assert '--resume: continuing from iter_4.pth after epoch 1, iteration 4' in log


def test_validation_left_out_on_resume_is_no_difference():
    saved_cfg = dict(model=dict(type='A'), train_dataloader=dict(dataset=dict(ann_file='a')),
                     val_dataloader=dict(dataset=dict(ann_file='v')), work_dir='x',
                     default_hooks=dict(logger=dict(interval=1)))
    current = dict(saved_cfg, val_dataloader=None, work_dir='y',
                   default_hooks=dict(logger=dict(interval=9)))
    assert run_config_differences(saved_cfg, current) == []
    current['train_dataloader'] = dict(dataset=dict(ann_file='b'))
    assert run_config_differences(saved_cfg, current) == [
        ('train_dataloader.dataset.ann_file', 'a', 'b')]
