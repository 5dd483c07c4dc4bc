"""DQN on the probe environments: the reference passes all five, planted bugs fail theirs."""

import numpy as np
import pytest

from rlcourse import dqn, probes

BUGS = dqn.planted_bugs()


@pytest.mark.parametrize("name", list(probes.PROBE_IDS))
def test_reference_dqn_learns_the_exact_q_values_of_every_probe(name):
    for seed in (0, 1):
        report = dqn.run_probe(name, seed)
        assert report.q.shape == report.true_q.shape
        assert report.passed, (name, seed, report.q, report.true_q)


def test_probe_report_compares_with_true_q_at_the_runs_gamma():
    report = dqn.run_probe("two_step", 0, gamma=0.5, total_steps=400)
    np.testing.assert_allclose(report.true_q, [[0.5], [1.0]])
    assert report.max_error == pytest.approx(np.abs(report.q - report.true_q).max())


@pytest.mark.parametrize("bug,probe", [
    ("no terminal mask", "constant"), ("no terminal mask", "two_step"),
    ("target never synced", "two_step"), ("no zero_grad", "observation"),
    ("Q of the greedy action", "action"), ("buffer stores s' as s", "observation")])
def test_a_planted_bug_fails_the_probe_that_isolates_it(bug, probe):
    report = dqn.run_probe(probe, 0, **BUGS[bug])
    assert not report.passed and report.max_error > 2 * dqn.PROBE_TOLERANCE, report.q


def test_truncation_bug_is_invisible_to_probes_that_only_terminate():
    """Every probe episode ends by termination, so masking truncations changes nothing."""
    for name in ("two_step", "observation_action"):
        clean = dqn.run_probe(name, 0, total_steps=400)
        buggy = dqn.run_probe(name, 0, total_steps=400, **BUGS["truncation = termination"])
        np.testing.assert_array_equal(clean.q, buggy.q)


def test_run_probe_rejects_an_unknown_probe():
    with pytest.raises(ValueError, match="unknown probe 'cartpole'"):
        dqn.run_probe("cartpole")
