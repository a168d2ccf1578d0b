"""Test-session set-up and reporting: one thread per test process, and the wall time of every
paper's quick run against the budget in CONTRIBUTING.md."""

import os
import shutil
import tempfile

import torch

# CONTRIBUTING.md: a new paper's quick run takes about 20 s on the faster 2-core machine (30 s at most);
# the table flags any run over 60 s, the most the older papers take on the slower machines.
QUICK_BUDGET_S = 60


def pytest_configure(config):
    # Every test session starts from an empty cache (milestones.core.cache), shared by the xdist
    # workers, which inherit the variable: what the tests need, they build.
    if "PYTEST_XDIST_WORKER" not in os.environ:
        os.environ["MILESTONES_CACHE"] = tempfile.mkdtemp(prefix="milestones-cache-")
    # `make test` runs one pytest-xdist worker per core; a second intra-op thread in each would
    # only make the two compete for the same cores.
    if "PYTEST_XDIST_WORKER" in os.environ:
        torch.set_num_threads(1)


def pytest_unconfigure(config):
    if "PYTEST_XDIST_WORKER" not in os.environ:
        shutil.rmtree(os.environ["MILESTONES_CACHE"], ignore_errors=True)


def pytest_terminal_summary(terminalreporter):
    times = {}  # paper id -> seconds
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        properties = dict(report.user_properties)
        if report.when == "call" and "quick_wall_s" in properties:
            times[report.nodeid.split("[")[-1].rstrip("]")] = properties["quick_wall_s"]
    if not times:
        return
    terminalreporter.section("quick runs: wall time (s), measured beside the other test process")
    for paper, seconds in sorted(times.items(), key=lambda item: -item[1]):
        flag = f"  over the {QUICK_BUDGET_S} s budget" if seconds > QUICK_BUDGET_S else ""
        terminalreporter.write_line(f"{paper:24s} {seconds:6.1f}{flag}")
    terminalreporter.write_line(f"{'total':24s} {sum(times.values()):6.1f}  "
                                f"(mean {sum(times.values()) / len(times):.1f}; budget: mean about 30)")
