"""The checkpoint a run loads is checked against the model it loads into."""
import pytest
import torch

from mmseg.models import SegTTAModel
from nlnet.utils import PreflightError, check_state_dict


def test_partial_load_needs_shared_weights_of_the_same_shape():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    own = model.state_dict()
    check_state_dict(model, {'state_dict': {'0.weight': own['0.weight']}}, 'part.pth',
                     'load_from', strict=False)
    with pytest.raises(PreflightError, match=r"load_from: checkpoint 'wide.pth' does not match "
                       r'the model Sequential:\nsize mismatch for 0.weight: checkpoint \(4, 2\), '
                       r'model \(3, 2\)'):
        check_state_dict(model, {'0.weight': torch.zeros(4, 2)}, 'wide.pth', 'load_from',
                         strict=False)
    with pytest.raises(PreflightError, match='unexpected keys in the checkpoint: extra'):
        check_state_dict(model, dict(own, extra=torch.zeros(1)), 'extra.pth', '--resume')


class TinySegmentor(torch.nn.Sequential):
    """A module a test-time-augmentation wrapper accepts (it needs ``test_step``)."""

    def test_step(self, data):
        return data


def test_test_time_augmentation_wrapper_is_checked_by_its_module_weights():
    model = TinySegmentor(torch.nn.Linear(2, 3))
    check_state_dict(SegTTAModel(module=model), {'state_dict': model.state_dict()}, 'row.pth',
                     'checkpoint')
    with pytest.raises(PreflightError, match='missing keys in the checkpoint: 0.bias'):
        check_state_dict(SegTTAModel(module=model), {'0.weight': model[0].weight}, 'row.pth',
                         'checkpoint')


def test_mmcv_sub_sampled_block_keys_are_checked_as_the_block_loads_them():
    """MMAction2's sub-sampled NL-I3D blocks are mmcv NonLocal3d's: ``g.0.conv.*`` keys."""
    from mmcv.cnn import NonLocal3d

    from nlnet.models.layers import NonLocalBlock
    model = torch.nn.Sequential(NonLocalBlock(8, dim=3, sub_sample=True, pool_position='after'))
    mmcv_state = {f'0.{key}': value for key, value in
                  NonLocal3d(8, sub_sample=True, norm_cfg=dict(type='BN3d')).state_dict().items()}
    assert '0.g.0.conv.weight' in mmcv_state
    check_state_dict(model, {'state_dict': mmcv_state}, 'mmaction.pth', 'checkpoint')
    model.load_state_dict(mmcv_state, strict=True)  # what the check promises
    del mmcv_state['0.phi.0.conv.bias']
    with pytest.raises(PreflightError, match=r'missing keys in the checkpoint: 0\.phi\.conv\.bias'):
        check_state_dict(model, {'state_dict': mmcv_state}, 'mmaction.pth', 'checkpoint')
