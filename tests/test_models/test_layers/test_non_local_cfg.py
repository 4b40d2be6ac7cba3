"""checked_non_local_cfg and build_non_local_block: the non_local_cfg argument of every model."""
import pytest

from nlnet.models.layers import NonLocalBlock, build_non_local_block, checked_non_local_cfg


def test_checked_cfg_is_a_copy_and_none_is_empty():
    user = dict(mode='dot_product')
    checked = checked_non_local_cfg(user, 'Owner', ('in_channels', 'dim'))
    checked['sub_sample'] = True
    assert user == dict(mode='dot_product')
    assert checked_non_local_cfg(None, 'Owner', ('dim', )) == {}


def test_derived_key_error_names_argument_key_owner_and_value():
    with pytest.raises(ValueError, match=r"^non_local_cfg must not set 'dim': Owner derives it "
                                         r"\(got dim=3\)$"):
        checked_non_local_cfg(dict(dim=3), 'Owner', ('in_channels', 'dim'))


def test_not_a_dict_is_refused_naming_the_owner():
    with pytest.raises(TypeError, match='non_local_cfg of Owner must be a dict'):
        checked_non_local_cfg([('mode', 'gaussian')], 'Owner', ())


def test_built_block_takes_both_and_its_errors_name_non_local_cfg():
    block = build_non_local_block(dict(mode='gaussian'), in_channels=8, dim=1)
    assert isinstance(block, NonLocalBlock) and (block.in_channels, block.mode) == (8, 'gaussian')
    with pytest.raises(ValueError, match='^non_local_cfg: mode must be one of'):
        build_non_local_block(dict(mode='cosine'), in_channels=8, dim=1)
    with pytest.raises(TypeError, match='^non_local_cfg: .*reductoin'):
        build_non_local_block(dict(reductoin=4), in_channels=8, dim=1)
