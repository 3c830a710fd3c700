// What every bench binary needs besides the model: where the repository's reference configs are, and
// the process's peak memory.
#pragma once
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

namespace clipgen::bench {

// Peak resident set of this process so far (getrusage ru_maxrss), in GiB.
inline double peak_rss_gib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0 / 1024.0;
}

// `rel` (e.g. "tests/data/manifests/sd15/unet/config.json") looked up from the working directory, then
// from the executable's folder upwards, so a bench runs from the build tree or the source tree alike.
// Returns `rel` itself when nothing matches (the caller's read then names it).
inline std::filesystem::path repo_file(const std::string& rel) {
  namespace fs = std::filesystem;
  std::vector<fs::path> roots = {fs::current_path()};
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  for (auto d = exe.parent_path(); !ec && !d.empty() && d != d.root_path(); d = d.parent_path()) roots.push_back(d);
  for (const auto& r : roots)
    if (fs::exists(r / rel)) return r / rel;
  return rel;
}

// "256,512" → {256, 512} (a bench's --sizes / --frames list).
inline std::vector<int64_t> int_list(const std::string& csv) {
  std::vector<int64_t> out;
  std::stringstream ss(csv);
  for (std::string s; std::getline(ss, s, ',');) out.push_back(std::stoll(s));
  return out;
}

// The best of `reps` timed calls of `f`, in seconds.
template <class F>
double best_seconds(int reps, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace clipgen::bench
