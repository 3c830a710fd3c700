#include "pipeline/signals.h"

#include <csignal>

namespace clipgen::pipeline {
namespace {
volatile std::sig_atomic_t g_signal = 0;
std::atomic<bool> g_installed{false};

extern "C" void clipgen_on_signal(int sig) {
  if (g_signal != 0) {  // second signal: give up cooperative cancellation
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_signal = sig;
}
}  // namespace

void install_signal_handlers() {
  if (g_installed.exchange(true)) return;
  struct sigaction sa {};
  sa.sa_handler = clipgen_on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int received_signal() { return g_signal; }

void reset_signal_state() { g_signal = 0; }

}  // namespace clipgen::pipeline
