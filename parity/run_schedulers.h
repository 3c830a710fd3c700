// Fixture runner for schedulers/<name>/ (README section e): replays the synthetic-model trajectory of
// each run listed in fixture.json "runs" (steps_4, steps_25, …) and compares schedule, trajectory and
// step-only results.
#pragma once
#include <functional>

#include "models/schedulers/scheduler.h"
#include "parity/fixture.h"

namespace clipgen::parity {

// Runs one scheduler fixture. `mutate` edits the parsed scheduler_config.json before the scheduler is
// built (tests use it to show a wrong setting fails the comparison).
void run_scheduler_fixture(FixtureContext& ctx,
                           const std::function<void(schedulers::SchedulerConfig&)>& mutate = {});

}  // namespace clipgen::parity
