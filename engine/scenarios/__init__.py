"""Scenario files (docs/scenarios.md): load, run, check; starting-state files."""

from engine.scenarios.check import check_step
from engine.scenarios.model import Scenario, load_scenario, load_scenarios
from engine.scenarios.runner import ScenarioResult, StepRun, run_scenario
from engine.scenarios.seeds import StartingState, load_state_file

__all__ = [
    "Scenario",
    "ScenarioResult",
    "StartingState",
    "StepRun",
    "check_step",
    "load_scenario",
    "load_scenarios",
    "load_state_file",
    "run_scenario",
]
