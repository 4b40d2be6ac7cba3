"""--auto-scale-lr: lr x (processes x batch per process) / the batch the lr was tuned for."""
import pytest

from nlnet.utils import scale_optimizer_lr, scaled_lr


@pytest.mark.parametrize('world_size, batch_size, base_batch_size, factor', [
    (1, 16, 16, 1.0), (8, 32, 256, 1.0), (2, 2, 16, 0.25), (4, 8, 16, 2.0), (1, 2, 16, 0.125)])
def test_lr_scales_with_the_total_batch_of_all_processes(world_size, batch_size,
                                                         base_batch_size, factor):
    assert scaled_lr(0.01, world_size, batch_size, base_batch_size) == pytest.approx(
        0.01 * factor, rel=1e-12)


def test_scaling_sets_the_optimizer_lr_of_the_config():
    optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9),
                         paramwise_cfg=dict(norm_decay_mult=0.0))
    assert scale_optimizer_lr(optim_wrapper, world_size=2, batch_size=4, base_batch_size=16) == \
        pytest.approx(0.05)
    assert optim_wrapper == dict(optimizer=dict(type='SGD', lr=pytest.approx(0.05), momentum=0.9),
                                 paramwise_cfg=dict(norm_decay_mult=0.0))


@pytest.mark.parametrize('name, arguments', [
    ('world_size', (0, 2, 16)), ('batch_size', (1, 2.5, 16)), ('base_batch_size', (1, 2, 0))])
def test_bad_sizes_are_named(name, arguments):
    with pytest.raises(ValueError, match=f'{name} must be an int >= 1'):
        scaled_lr(0.1, *arguments)


def test_a_config_without_optimizer_lr_is_named():
    with pytest.raises(ValueError, match='optim_wrapper.optimizer.lr'):
        scale_optimizer_lr(dict(optimizer=dict(type='SGD')), 1, 2, 16)
