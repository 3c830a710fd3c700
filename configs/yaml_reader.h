// INTERNAL to configs/ (includes yaml-cpp, which is linked PRIVATE): typed, position-aware reading of
// YAML nodes with every problem collected as a diagnostic instead of thrown. Other libraries must not
// include this header; they receive typed structs (shot.h, preset.h).
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "configs/preset.h"

namespace clipgen::configs::detail {

// One located message. line/col are 1-based (0 = unknown).
struct Diagnostic {
  int file_index = 0;  // order of the file in the load call (sort key)
  std::string file;
  int line = 0, col = 0;
  std::string message;
  std::string located() const;  // "file:line:col: message"
};

// Collects diagnostics of any number of files; throws them as one ConfigError, sorted by file (in the
// order given), line, column, with exact duplicates removed (an error inside `defaults:` is found once per
// shot that uses it but reported once).
class Diagnostics {
 public:
  void add(Diagnostic d) { items_.push_back(std::move(d)); }
  bool empty() const { return items_.empty(); }
  std::vector<Diagnostic> sorted() const;
  [[noreturn]] void throw_all() const;
  void throw_if_any() const {
    if (!empty()) throw_all();
  }

 private:
  std::vector<Diagnostic> items_;
};

// "nothing", "a mapping", "a list", "'text'", "12" — how a found value is shown after "got".
std::string describe(const YAML::Node& node);
// "a.b" joins; an empty prefix gives just the key.
std::string join_path(const std::string& prefix, const std::string& key);
// Shortest decimal form of a number: 2, 2.5, 0.125.
std::string format_number(double v);
// A frame rate: integers ("30"), decimals ("29.97" → 30000/1001, "23.976" → 24000/1001) or "num/den".
std::optional<Rational> parse_rate(const std::string& text);

// A node's position; the null mark (no position) for a missing node (yaml-cpp throws on those).
inline YAML::Mark mark_of(const YAML::Node& n) { return n.IsDefined() ? n.Mark() : YAML::Mark::null_mark(); }
// A scalar (not null, not a collection); false for missing nodes.
inline bool is_scalar(const YAML::Node& n) { return n.IsDefined() && n.IsScalar(); }
// Whether a scalar was written plain (not quoted): quoted scalars are text, never numbers.
inline bool is_plain_scalar(const YAML::Node& n) { return is_scalar(n) && n.Tag() != "!"; }
inline bool is_map(const YAML::Node& n) { return n.IsDefined() && n.IsMap(); }
inline bool is_seq(const YAML::Node& n) { return n.IsDefined() && n.IsSequence(); }

// Reads typed values from one file's nodes, reporting problems into a Diagnostics.
class Reader {
 public:
  Reader(Diagnostics& sink, std::string file, int file_index)
      : sink_(sink), file_(std::move(file)), index_(file_index) {}

  const std::string& file() const { return file_; }
  void error(const YAML::Mark& mark, const std::string& path, const std::string& message);
  void error(const YAML::Node& at, const std::string& path, const std::string& message) {
    error(mark_of(at), path, message);
  }
  // "path: expected <expected>, got <describe(node)><suffix>"
  void expected(const YAML::Node& node, const std::string& path, const std::string& expected_what,
                const std::string& suffix = "");
  Diagnostic located(const YAML::Mark& mark, const std::string& message) const;

  // Checks a mapping's keys: unknown keys (with a suggestion) and keys given twice.
  void check_keys(const YAML::Node& map, const std::string& path, const std::vector<std::string>& allowed);
  // True if `node` is a mapping; otherwise reports "expected a mapping (<what>)".
  bool require_map(const YAML::Node& node, const std::string& path, const std::string& what);

  // Typed scalars. Each returns nullopt after reporting a problem.
  std::optional<std::string> text(const YAML::Node& node, const std::string& path, bool allow_empty = true);
  std::optional<bool> boolean(const YAML::Node& node, const std::string& path);
  // Integer within [min, max]. When `limit_name` is given, values above max are reported as a limit:
  // "expected at most <max> (<limit_name>), got <v>".
  std::optional<int64_t> integer(const YAML::Node& node, const std::string& path, int64_t min, int64_t max,
                                 const char* limit_name = nullptr);
  std::optional<uint64_t> unsigned64(const YAML::Node& node, const std::string& path);
  // Number within [min, max] (min exclusive when min_exclusive).
  std::optional<double> number(const YAML::Node& node, const std::string& path, double min, double max,
                               bool min_exclusive = false);
  std::optional<std::string> choice(const YAML::Node& node, const std::string& path,
                                    const std::vector<std::string>& allowed);
  std::optional<Rational> rate(const YAML::Node& node, const std::string& path, double max_fps);

 private:
  Diagnostics& sink_;
  std::string file_;
  int index_ = 0;
};

// Reads a whole file as YAML: tab indentation and parse errors become diagnostics ("invalid YAML: ...",
// at yaml-cpp's position). Returns nullopt when the file could not be read as one YAML document.
std::optional<YAML::Node> load_yaml_file(const std::filesystem::path& path, Reader& reader);

}  // namespace clipgen::configs::detail
