"""Scenario files (the acceptance format of shared/scenarios): load, run, check."""

from engine.scenarios.check import check_step
from engine.scenarios.model import Scenario, load_scenario, load_scenarios
from engine.scenarios.runner import ScenarioResult, StepRun, run_scenario

__all__ = [
    "Scenario",
    "ScenarioResult",
    "StepRun",
    "check_step",
    "load_scenario",
    "load_scenarios",
    "run_scenario",
]
