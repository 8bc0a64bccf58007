"""rlcheck's pytest plugin in a throwaway user project, as a user would run it."""

import pytest

USER_NETS = """
from torch import nn


def make_net(in_dim, out_dim):
    return nn.Sequential(nn.Linear(in_dim, 48), nn.ReLU(), nn.Linear(48, 48), nn.ReLU(), nn.Linear(48, out_dim))


def bn_net(in_dim, out_dim):
    return nn.Sequential(nn.Linear(in_dim, 48), nn.BatchNorm1d(48), nn.ReLU(), nn.Linear(48, out_dim))


class Actor(nn.Module):  # CleanRL-shaped: built from the env, ends in tanh
    def __init__(self, env):
        super().__init__()
        self.fc1 = nn.Linear(env.single_observation_space.shape[0], 64)
        self.fc2 = nn.Linear(64, 64)
        self.mu = nn.Linear(64, env.single_action_space.shape[0])

    def forward(self, x):
        return self.mu(self.fc2(self.fc1(x).relu()).relu()).tanh()


class TwinCritic(nn.Module):  # SB3-shaped: n_critics=2
    def __init__(self, observation_space, action_space):
        super().__init__()
        self.qs = nn.ModuleList(nn.Linear(observation_space.shape[0] + action_space.shape[0], 1) for _ in range(2))

    def forward(self, obs, action):
        import torch

        return tuple(q(torch.cat([obs, action], -1)) for q in self.qs)


class ThreeActions:  # a whole agent (rlcheck_agent) whose actions have the wrong shape
    family = "td3"

    def act(self, obs, explore):
        return [0.0, 0.0, 0.0]

    def observe(self, *transition):
        pass


def make_agent(env, seed):
    return ThreeActions()
"""

PYPROJECT = """
[tool.pytest.ini_options]
pythonpath = ["."]
rlcheck_net = "mynets:make_net"
rlcheck_algos = "td3"
rlcheck_probes = "action"
rlcheck_seeds = "3"
"""


@pytest.fixture
def project(pytester):
    pytester.makepyfile(mynets=USER_NETS)
    pytester.makefile(".toml", pyproject=PYPROJECT)
    return pytester


def test_options_are_registered_in_their_own_group(pytester):
    result = pytester.runpytest("--help")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["rlcheck: gate your RL network code:", "*--rlcheck-net=*", "*--rlcheck-seeds=*"])


def test_fixture_gates_the_net_from_pyproject_settings(project):
    project.makepyfile(
        test_mine="""
        from rlcheck.front.words import check_report

        def test_my_net_passes(rlcheck_gate):
            result = rlcheck_gate()
            assert result.passed, check_report(result)
            assert [c.cell.label for c in result.study.comparisons] == ["td3 ActionReward-v0"]
        """
    )
    project.runpytest_subprocess().assert_outcomes(passed=1)


def test_the_baseline_takes_its_hidden_widths_from_the_settings(project):
    project.makepyfile(
        test_mine="""
        import rlcheck.front.api

        rlcheck.front.api.check_networks = lambda config, *args: config  # the settings, not the training

        def test_widths(rlcheck_gate):
            assert rlcheck_gate().hidden == (32,)
            assert rlcheck_gate(hidden="16,16").hidden == (16, 16)
        """
    )
    project.runpytest_subprocess("--rlcheck-hidden", "32").assert_outcomes(passed=1)


def test_seed_and_slower_settings_reach_the_check_and_one_cell_keeps_the_whole_gates_levels(project):
    project.makepyfile(
        test_mine="""
        import rlcheck.front.api

        rlcheck.front.api.check_networks = lambda config, *args: config  # the settings, not the training

        def test_settings(rlcheck_gate):
            config = rlcheck_gate()
            assert (config.max_seeds, config.slower_budget) == (4, 2.0)
            whole = rlcheck_gate(probes="all", algos="td3,sac")
            one = rlcheck_gate(probes="all", algos="td3,sac", cells=whole.cells[:1])
            assert one.cells == whole.cells[:1] and one.levels == whole.levels and whole.levels.comparisons == 12
        """
    )
    project.runpytest_subprocess("--rlcheck-max-seeds", "4", "--rlcheck-slower-budget", "2").assert_outcomes(passed=1)


def test_a_nonsense_slower_budget_fails_in_one_line(project):
    result = project.runpytest_subprocess("--pyargs", "rlcheck.gate", "--rlcheck-slower-budget", "fast")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*rlcheck: rlcheck_slower_budget 'fast' is not a number*"])
    assert "Traceback" not in result.stdout.str()


def test_shipped_gate_fails_naive_batchnorm_under_xdist_with_a_finding(project):
    result = project.runpytest_subprocess("--pyargs", "rlcheck.gate", "--rlcheck-net", "mynets:bn_net", "-n", "2")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*td3-action*", "*td3 on action (ActionReward-v0): *"])
    assert "underperforms" in result.stdout.str() or "unreliable" in result.stdout.str()
    assert "CheckResult(" not in result.stdout.str()  # the finding, not a dump of the result object


def test_shipped_gate_passes_a_plain_user_net_without_xdist_and_reports_its_cells(project, tmp_path, monkeypatch):
    import xml.etree.ElementTree as ET

    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    junit = tmp_path / "junit.xml"
    result = project.runpytest_subprocess("--pyargs", "rlcheck.gate", "-v", f"--junitxml={junit}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_network_learns_probe_like_plain_baseline?td3-action? PASSED*",
            "*- rlcheck gate -*",
            "td3 ActionReward-v0 * pass * drop * (tolerance *, 6 seeds)",
        ]
    )
    assert "PytestWarning" not in result.stdout.str()  # user_properties, not record_property (xunit2 warns)
    properties = {p.get("name"): p.get("value") for p in ET.parse(junit).iter("property")}
    assert properties["rlcheck_cell"] == "td3 ActionReward-v0" and properties["rlcheck_outcome"] == "pass"
    assert properties["rlcheck_seeds"] == "6" and float(properties["rlcheck_tolerance"]) > 0  # 3 doubled once
    assert "| td3 | ActionReward-v0 | `mynets:make_net` | 6 | pass |" in summary.read_text()


def test_the_shipped_gate_takes_a_td3_actor_setting_and_skips_sac_which_has_none_of_yours(project):
    result = project.runpytest_subprocess(
        "--pyargs", "rlcheck.gate", "--rlcheck-td3-actor-net", "mynets:Actor", "--rlcheck-algos", "td3,sac", "-rs"
    )
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*sac skipped: none of your networks is for SAC*"])


def test_a_critic_shape_rlcheck_cannot_take_fails_the_gate_test_in_one_line(project):
    result = project.runpytest_subprocess("--pyargs", "rlcheck.gate", "--rlcheck-critic-net", "mynets:TwinCritic")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*rlcheck: critic 'mynets:TwinCritic' returns 2 Q-values*"])
    assert "Traceback" not in result.stdout.str()


def test_a_bad_factory_path_fails_with_one_line(project):
    result = project.runpytest_subprocess("--pyargs", "rlcheck.gate", "--rlcheck-net", "mynets:nope")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*rlcheck: 'mynets' has no callable 'nope'*"])
    assert "Traceback" not in result.stdout.str()


def test_the_shipped_gate_takes_an_agent_setting_and_a_bad_agent_fails_in_one_line(project):
    result = project.runpytest_subprocess("--pyargs", "rlcheck.gate", "--rlcheck-agent", "mynets:make_agent")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*rlcheck: --agent mynets:make_agent: act() returned an action of shape (3,)*"])
    assert "Traceback" not in result.stdout.str()


def test_unknown_probe_setting_is_a_one_line_collection_error(project):
    result = project.runpytest_subprocess("--pyargs", "rlcheck.gate", "--rlcheck-probes", "nope")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*rlcheck: unknown probe 'nope': choose from constant*"])
    assert "Traceback" not in result.stdout.str() and "plugin.py" not in result.stdout.str()


def _modules_after(statement: str) -> set[str]:
    import json
    import subprocess
    import sys

    probe = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


def test_loading_the_plugin_imports_neither_torch_nor_scipy():
    # pytest loads the plugin in every session of an environment rlcheck is installed in.
    loaded = _modules_after("import rlcheck.plugin")
    assert "rlcheck.plugin" in loaded and not {"torch", "scipy", "rlcheck.verdicts.check"} & loaded


def test_training_processes_do_not_import_the_statistics():
    # What every spawned training worker imports; scipy is 1.3 s of its start.
    loaded = _modules_after("import rlcheck.engine.runner")
    assert "torch" in loaded and not {"scipy", "matplotlib"} & loaded
    assert not [m for m in loaded if m.startswith(("rlcheck.verdicts", "rlcheck.front"))]


def test_the_console_script_module_imports_nothing_heavy():
    # multiprocessing's spawn re-runs the console script in every training process it starts,
    # and the script imports rlcheck.cli at its top: whatever that imports, each worker imports too.
    loaded = _modules_after("import rlcheck.cli")
    assert "rlcheck.cli" in loaded and not {"torch", "scipy", "numpy", "rlcheck.front.commands"} & loaded


def test_package_names_resolve_on_first_use():
    import rlcheck
    from rlcheck.front.api import run_check

    assert all(getattr(rlcheck, name) is not None for name in rlcheck.__all__)
    assert sorted(rlcheck.__all__) == sorted(rlcheck._WHERE)  # one list of the public names
    assert rlcheck.run_check is run_check and "run_check" in dir(rlcheck)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = rlcheck.nope


def test_every_option_of_a_check_has_its_plugin_setting():
    from rlcheck.front.commands import build_check_parser
    from rlcheck.plugin import SETTINGS

    # What only a command line has: where output goes, how it is printed, this machine's processes.
    command_line_only = {"help", "out", "json", "quiet", "workers", "cache_dir", "no_cache", "resume"}
    options = {a.dest for a in build_check_parser()._actions} - command_line_only
    assert options <= set(SETTINGS), sorted(options - set(SETTINGS))
