"""The process variables of a task that ``srun`` started (``--launcher slurm`` on CPU).

The full path, srun with tools/slurm_train.sh on a real Slurm, is in
tests/test_cluster/test_slurm.py.
"""
import shutil
import subprocess

import pytest

from nlnet.utils import PreflightError
from nlnet.utils.distributed import slurm_process_environment

TASK = dict(SLURM_PROCID='3', SLURM_NTASKS='8', SLURM_LOCALID='1',
            SLURM_STEP_NODELIST='node[3-5,9]', SLURM_NODELIST='node[1-9]')


def scontrol_usable():
    """'' when ``scontrol show hostnames`` works here, else why not."""
    if shutil.which('scontrol') is None:
        return 'scontrol is not on PATH (Slurm not installed; tools/ci/start_slurm.sh installs it)'
    probe = subprocess.run(['scontrol', 'show', 'hostnames', 'node1'], capture_output=True,
                           text=True)
    if probe.returncode != 0:
        return f'scontrol show hostnames node1 failed: {probe.stderr.strip()[-300:]}'
    return ''


def test_rank_world_size_and_local_rank_are_slurms_task_numbers():
    variables = slurm_process_environment(dict(TASK, MASTER_ADDR='10.0.0.7', MASTER_PORT='23456'))
    assert variables == dict(RANK='3', WORLD_SIZE='8', LOCAL_RANK='1', MASTER_ADDR='10.0.0.7',
                             MASTER_PORT='23456')


def test_master_is_the_first_host_of_the_steps_nodes_and_the_port_defaults_to_torchs():
    reason = scontrol_usable()
    if reason:
        pytest.skip(reason)
    variables = slurm_process_environment(TASK)
    assert variables['MASTER_ADDR'] == 'node3'
    assert variables['MASTER_PORT'] == '29500'
    without_step = {key: value for key, value in TASK.items() if key != 'SLURM_STEP_NODELIST'}
    assert slurm_process_environment(without_step)['MASTER_ADDR'] == 'node1'


@pytest.mark.parametrize('missing', ['SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID'])
def test_a_missing_slurm_variable_is_named(missing):
    task = {key: value for key, value in TASK.items() if key != missing}
    with pytest.raises(PreflightError, match=f'{missing} is not set; start the script with srun'):
        slurm_process_environment(task)


def test_without_a_node_list_the_error_names_both_variables():
    task = {key: value for key, value in TASK.items() if not key.endswith('NODELIST')}
    with pytest.raises(PreflightError, match=r'SLURM_STEP_NODELIST \(or SLURM_NODELIST\)'):
        slurm_process_environment(task)
