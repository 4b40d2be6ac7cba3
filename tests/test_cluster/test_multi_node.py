"""Two nodes train and test as one node with two processes does (issue 25 item 1).

The nodes are simulated on this machine: two launches of ``tools/dist_train.sh``
(then ``tools/dist_test.sh``) with ``NNODES=2``, ``NODE_RANK=0`` / ``1``,
``MASTER_ADDR=127.0.0.1`` and one process each, meeting in torchrun's
rendezvous and training over gloo. Their final checkpoint must equal the
uninterrupted 1 node x 2 processes reference run's (``cluster_reference``),
weights and optimizer state, tensor for tensor; their ``--dump`` of the
reference's checkpoint must equal the one 1 node x 2 processes writes
(``cluster_reference_dump``).
"""
import re

import pytest
from helpers.cluster_launches import (TEST_VIDEOS, CommandJob, assert_same_dump, dump_args,
                                      load_dump, wait_all)
from helpers.cluster_runs import (FINAL_CHECKPOINT, PROCESSES, TRAIN_ARGS,
                                  assert_same_training_state)
from helpers.video_tools import free_port, shell_tool

NODES = 2


def node_env(rank, port):
    return dict(NNODES=str(NODES), NODE_RANK=str(rank), MASTER_ADDR='127.0.0.1', PORT=str(port))


def launch_nodes(script, head, tail, work_dir):
    """Run ``tools/<script> HEAD 1 TAIL`` once per node (1 process each) to the end; the jobs."""
    port = free_port()
    jobs = [CommandJob(shell_tool(script, *head, '1', *tail), work_dir,
                       f'{work_dir.name}.node{rank}', env=node_env(rank, port))
            for rank in range(NODES)]
    wait_all(jobs)
    return jobs


@pytest.fixture(scope='module')
def two_nodes(cluster_reference):
    """The reference training on 2 nodes x 1 process; (work dir, node jobs)."""
    work_dir = cluster_reference.root / 'two_nodes'
    jobs = launch_nodes('dist_train.sh', [cluster_reference.config],
                        ['--work-dir', work_dir, *TRAIN_ARGS], work_dir)
    return work_dir, jobs


def test_two_nodes_train_to_the_one_node_weights_bit_for_bit(cluster_reference, two_nodes):
    work_dir, jobs = two_nodes
    # Each launch started one process, on its own node rank, and they formed one world of 2.
    for rank, job in enumerate(jobs):
        assert f'--nnodes={NODES} --node_rank={rank}' in job.stderr()
        assert '--nproc_per_node=1' in job.stderr()
    log = jobs[0].logs()[-1]
    assert re.search(rf'real batch \d+ \({PROCESSES} processes x \d+ per process\)', log)
    assert_same_training_state(work_dir / FINAL_CHECKPOINT, cluster_reference.final_checkpoint)
    print(f'2 nodes x 1 process: {max(job.seconds for job in jobs):.1f} s; 1 node x 2 processes: '
          f'{cluster_reference.seconds:.1f} s')


def test_two_nodes_test_to_the_one_node_dump(cluster_reference, cluster_reference_dump):
    work_dir = cluster_reference.root / 'test_two_nodes'
    launch_nodes('dist_test.sh', [cluster_reference.config, cluster_reference.final_checkpoint],
                 dump_args(cluster_reference, work_dir), work_dir)
    assert len(load_dump(work_dir / 'results.pkl')['samples']) == TEST_VIDEOS
    assert_same_dump(work_dir / 'results.pkl', cluster_reference_dump)


def test_several_nodes_without_master_addr_stop_with_what_to_set(tmp_path):
    env = dict(NNODES=str(NODES), NODE_RANK='1', MASTER_ADDR=None)
    job = CommandJob(shell_tool('dist_train.sh', 'config.py', '1'), tmp_path / 'run', 'no_master',
                     env=env)
    assert job.wait() == 2
    assert "NNODES=2: set MASTER_ADDR to node 0's address on every node" in job.stderr()
