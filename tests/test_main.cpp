#include <gtest/gtest.h>

#include <csignal>
#include <cstring>

#include <execinfo.h>
#include <unistd.h>

// A test that crashes prints where: the signal and the raw backtrace (file(+offset) per frame, which
// `addr2line -f -C -e FILE OFFSET` turns into function names; scripts/device-check.sh does that for the
// tests that crash on the GPU machine). Only async-signal-safe calls; the default action then runs, so
// ctest still reports the crash as such.
static void print_backtrace_and_die(int sig) {
  const char* head = "\n*** clipgen test: fatal signal ";
  ssize_t unused = ::write(STDERR_FILENO, head, std::strlen(head));
  const char* name = sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" : sig == SIGFPE ? "SIGFPE"
                     : sig == SIGILL ? "SIGILL" : "SIGABRT";
  unused = ::write(STDERR_FILENO, name, std::strlen(name));
  unused = ::write(STDERR_FILENO, "; backtrace:\n", 13);
  void* frames[64];
  const int n = ::backtrace(frames, 64);
  ::backtrace_symbols_fd(frames, n, STDERR_FILENO);
  unused = ::write(STDERR_FILENO, "*** end of backtrace\n", 21);
  (void)unused;
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // backtrace() loads libgcc_s on first use, which is not safe inside a handler: load it now.
  void* warm[1];
  ::backtrace(warm, 1);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) std::signal(sig, print_backtrace_and_die);
  return RUN_ALL_TESTS();
}
