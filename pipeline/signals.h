// Cooperative cancellation. SIGINT/SIGTERM set an async-signal-safe flag (nothing else happens in the
// handler); the render loop polls it, cancels the graph's task_group_context, and stage bodies poll it
// between steps (StageContext::throw_if_cancelled). A second signal restores the default action and
// re-raises it, so a stuck run can still be killed with a second Ctrl-C.
#pragma once
#include <atomic>

namespace clipgen::pipeline {

// Installs the SIGINT/SIGTERM handlers (idempotent).
void install_signal_handlers();
// The signal number received (0 = none).
int received_signal();
// For tests: forget a received signal.
void reset_signal_state();

// A cancellation flag shared between a caller and a run (e.g. a GUI's "stop" button, or a test).
class CancelToken {
public:
  void cancel() { flag_.store(true); }
  bool cancelled() const { return flag_.load(); }

private:
  std::atomic<bool> flag_{false};
};

}  // namespace clipgen::pipeline
