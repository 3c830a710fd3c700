// Progress display. On a terminal (Live): one line per shot in flight, redrawn in place (stage,
// done/total, ETA); log messages are printed above the live lines through log_sink(). Otherwise
// (Plain): timestamped spdlog lines at stage start/end and at most every few seconds in between.
// Quiet (-q): nothing but warnings and errors. NO_COLOR (any value) turns colours off.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/sinks/sink.h>

namespace clipgen::pipeline {

class Progress {
public:
  enum class Mode { Live, Plain, Quiet };
  // Live when `stream` is a terminal and not quiet; Plain otherwise.
  static Mode detect(bool quiet, std::FILE* stream = stderr);
  static bool color_allowed(std::FILE* stream = stderr);  // a TTY and NO_COLOR unset

  explicit Progress(Mode mode, bool color = false, std::FILE* stream = stderr);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  Mode mode() const { return mode_; }
  // Thread-safe; called by the graph.
  void shot_started(const std::string& shot, int64_t frames);
  void update(const std::string& shot, std::string_view stage, int64_t done, int64_t total);
  void shot_finished(const std::string& shot, std::string_view status, std::string_view detail = {});
  // Prints a message above the live lines (Live) or to the stream (Plain/Quiet).
  void print(const std::string& line);
  // A spdlog sink that routes through print() (install it in Live mode so logs don't tear the lines).
  std::shared_ptr<spdlog::sinks::sink> log_sink();

private:
  struct StageState {
    int64_t done = 0, total = 0;
    std::chrono::steady_clock::time_point start, last_log;
  };
  struct Line {
    std::string stage;  // the stage shown (the latest one reported)
    std::map<std::string, StageState, std::less<>> stages;
  };
  void redraw_locked(bool force);
  std::string format_line(const std::string& shot, const Line& l) const;

  Mode mode_;
  bool color_;
  std::FILE* out_;
  std::mutex mutex_;
  std::vector<std::string> order_;  // shots in the order they started
  std::map<std::string, Line> lines_;
  std::vector<std::string> pending_;  // printed above the live area at the next redraw
  int drawn_ = 0;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace clipgen::pipeline
