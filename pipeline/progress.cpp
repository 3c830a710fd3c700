#include "pipeline/progress.h"

#include <fmt/format.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace clipgen::pipeline {
using Clock = std::chrono::steady_clock;

Progress::Mode Progress::detect(bool quiet, std::FILE* stream) {
  if (quiet) return Mode::Quiet;
  return ::isatty(::fileno(stream)) ? Mode::Live : Mode::Plain;
}

bool Progress::color_allowed(std::FILE* stream) {
  const char* nc = std::getenv("NO_COLOR");
  if (nc != nullptr && nc[0] != '\0') return false;
  return ::isatty(::fileno(stream)) != 0;
}

Progress::Progress(Mode mode, bool color, std::FILE* stream) : mode_(mode), color_(color), out_(stream) {}

Progress::~Progress() {
  std::lock_guard lock(mutex_);
  if (mode_ == Mode::Live) {
    lines_.clear();
    order_.clear();
    redraw_locked(true);
  }
}

static std::string hms(double s) {
  if (s < 0 || s > 1e7) return "--:--";
  const auto t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
  return fmt::format("{}:{:02}", t / 60, t % 60);
}

std::string Progress::format_line(const std::string& shot, const Line& line) const {
  auto it = line.stages.find(line.stage);
  const StageState st = it == line.stages.end() ? StageState{0, 0, Clock::now(), Clock::now()} : it->second;
  const double elapsed = std::chrono::duration<double>(Clock::now() - st.start).count();
  std::string eta = "ETA --:--";
  if (st.done > 0 && st.total > st.done) eta = "ETA " + hms(elapsed / st.done * (st.total - st.done));
  const auto count = st.total > 0 ? fmt::format("{}/{}", st.done, st.total) : std::string("...");
  if (color_)
    return fmt::format("\x1b[1m{:<20}\x1b[0m \x1b[36m{:<10}\x1b[0m {:>11}  {}", shot, line.stage, count, eta);
  return fmt::format("{:<20} {:<10} {:>11}  {}", shot, line.stage, count, eta);
}

void Progress::redraw_locked(bool force) {
  const auto now = Clock::now();
  if (!force && pending_.empty() && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  std::string s;
  if (drawn_ > 0) s += fmt::format("\x1b[{}F", drawn_);  // to the start of the first live line
  for (const auto& p : pending_) s += "\x1b[2K" + p + "\n";
  pending_.clear();
  for (const auto& id : order_) s += "\x1b[2K" + format_line(id, lines_.at(id)) + "\n";
  s += "\x1b[J";  // clear what an earlier, longer live area left below
  drawn_ = static_cast<int>(order_.size());
  std::fputs(s.c_str(), out_);
  std::fflush(out_);
}

void Progress::shot_started(const std::string& shot, int64_t frames) {
  {
    std::lock_guard lock(mutex_);
    if (lines_.count(shot) == 0) order_.push_back(shot);
    auto& l = lines_[shot];
    l.stage = "queued";
    l.stages.clear();
    if (mode_ == Mode::Live) redraw_locked(true);
  }
  // Logged outside the lock: the log sink may be print().
  if (mode_ == Mode::Plain) spdlog::info("shot '{}': started ({} frames)", shot, frames);
}

void Progress::update(const std::string& shot, std::string_view stage, int64_t done, int64_t total) {
  std::string log;
  {
    std::lock_guard lock(mutex_);
    auto it = lines_.find(shot);
    if (it == lines_.end()) return;
    auto& l = it->second;
    const auto now = Clock::now();
    auto st_it = l.stages.find(stage);
    const bool first = st_it == l.stages.end();
    if (first) st_it = l.stages.emplace(std::string(stage), StageState{0, 0, now, now}).first;
    auto& st = st_it->second;
    const bool finished_now = total > 0 && done == total && st.done != total;
    st.done = done;
    st.total = total;
    l.stage = std::string(stage);
    if (mode_ == Mode::Live) {
      redraw_locked(finished_now);
    } else if (mode_ == Mode::Plain && (first || finished_now || now - st.last_log > std::chrono::seconds(5))) {
      st.last_log = now;
      log = fmt::format("shot '{}': {} {}/{}", shot, stage, done, total);
    }
  }
  if (!log.empty()) spdlog::info("{}", log);  // outside the lock: the log sink may be print()
}

void Progress::shot_finished(const std::string& shot, std::string_view status, std::string_view detail) {
  const std::string msg =
      fmt::format("shot '{}': {}{}{}", shot, status, detail.empty() ? "" : " ", detail);
  {
    std::lock_guard lock(mutex_);
    lines_.erase(shot);
    order_.erase(std::remove(order_.begin(), order_.end(), shot), order_.end());
    if (mode_ == Mode::Live) {
      pending_.push_back(msg);
      redraw_locked(true);
    }
  }
  if (mode_ == Mode::Plain) spdlog::info("{}", msg);
}

void Progress::print(const std::string& line) {
  std::lock_guard lock(mutex_);
  if (mode_ == Mode::Live) {
    pending_.push_back(line);
    redraw_locked(true);
  } else {
    std::fputs((line + "\n").c_str(), out_);
    std::fflush(out_);
  }
}

namespace {
class ProgressSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
  explicit ProgressSink(Progress& p) : progress_(p) {}

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    std::string s(buf.data(), buf.size());
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    progress_.print(s);
  }
  void flush_() override {}

private:
  Progress& progress_;
};
}  // namespace

std::shared_ptr<spdlog::sinks::sink> Progress::log_sink() { return std::make_shared<ProgressSink>(*this); }

}  // namespace clipgen::pipeline
