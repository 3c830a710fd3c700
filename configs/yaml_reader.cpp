#include "configs/yaml_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <numeric>
#include <set>
#include <sstream>
#include <tuple>

#include "configs/suggest.h"
#include "core/error.h"

namespace clipgen::configs::detail {

std::string Diagnostic::located() const {
  std::string s = file;
  if (line > 0) {
    s += ":" + std::to_string(line);
    if (col > 0) s += ":" + std::to_string(col);
  }
  return s + ": " + message;
}

std::vector<Diagnostic> Diagnostics::sorted() const {
  std::vector<Diagnostic> v = items_;
  std::stable_sort(v.begin(), v.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.file_index, a.line, a.col) < std::tie(b.file_index, b.line, b.col);
  });
  std::vector<Diagnostic> out;
  std::set<std::string> seen;
  for (auto& d : v)
    if (seen.insert(d.located()).second) out.push_back(std::move(d));
  return out;
}

void Diagnostics::throw_all() const {
  const auto v = sorted();
  if (v.size() == 1) throw ConfigError(v[0].file, v[0].line, v[0].col, v[0].message);
  std::string joined;
  for (const auto& d : v) {
    if (!joined.empty()) joined += '\n';
    joined += d.located();
  }
  throw ConfigError(joined);
}

namespace {

bool looks_like_integer(const std::string& s) {
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i >= s.size()) return false;
  for (; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

std::optional<double> parse_double(const std::string& s) {
  // [+-] digits [. digits] [e[+-]digits]  or  [+-] . digits ...
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  size_t digits = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
  }
  if (digits == 0) return std::nullopt;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    size_t e = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++e;
    if (e == 0) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  const double v = std::strtod(s.c_str(), nullptr);
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

std::string range_words(double min, double max, bool integer, bool min_exclusive) {
  const double big = integer ? static_cast<double>(std::numeric_limits<int64_t>::max()) / 2 : 1e300;
  const char* noun = integer ? "integer" : "number";
  if (max >= big) {
    if (min == 0 && min_exclusive) return std::string("a positive ") + noun;
    if (integer && min == 1) return "a positive integer";
    if (min == 0) return std::string("a non-negative ") + noun;
    return std::string("a ") + noun + (min_exclusive ? " greater than " : " of at least ") + format_number(min);
  }
  if (min_exclusive)
    return std::string("a ") + noun + " greater than " + format_number(min) + " and at most " + format_number(max);
  return std::string(integer ? "an " : "a ") + noun + " from " + format_number(min) + " to " + format_number(max);
}

}  // namespace

std::string format_number(double v) {
  if (std::abs(v) < 1e15 && v == std::floor(v)) return std::to_string(static_cast<long long>(v));
  char buf[64];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  std::string s = node.Scalar();
  const bool quoted = !is_plain_scalar(node);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  if (!quoted && (looks_like_integer(s) || parse_double(s) || s == "true" || s == "false")) return s;
  for (auto& c : s)
    if (c == '\n') c = ' ';
  return "'" + s + "'";
}

std::string join_path(const std::string& prefix, const std::string& key) {
  if (prefix.empty()) return key;
  if (!key.empty() && key[0] == '[') return prefix + key;
  return prefix + "." + key;
}

std::optional<Rational> parse_rate(const std::string& text) {
  const auto slash = text.find('/');
  if (slash != std::string::npos) {
    const std::string a = text.substr(0, slash), b = text.substr(slash + 1);
    if (!looks_like_integer(a) || !looks_like_integer(b) || a[0] == '-' || b[0] == '-') return std::nullopt;
    long long n = 0, d = 0;
    if (std::from_chars(a.data() + (a[0] == '+'), a.data() + a.size(), n).ec != std::errc() ||
        std::from_chars(b.data() + (b[0] == '+'), b.data() + b.size(), d).ec != std::errc())
      return std::nullopt;
    if (n <= 0 || d <= 0 || n > 1000000 || d > 1000000) return std::nullopt;
    const long long g = std::gcd(n, d);
    return Rational{static_cast<int>(n / g), static_cast<int>(d / g)};
  }
  const auto v = parse_double(text);
  if (!v || *v <= 0 || *v > 1000000) return std::nullopt;
  if (*v == std::floor(*v)) return Rational{static_cast<int>(*v), 1};
  // NTSC-family rates written as decimals (23.976, 29.97, 47.952, 59.94, 119.88) mean N*1000/1001.
  for (int base : {24, 30, 48, 60, 120}) {
    const double ntsc = base * 1000.0 / 1001.0;
    if (std::abs(*v - ntsc) < 0.006) return Rational{base * 1000, 1001};
  }
  const long long n = std::llround(*v * 1000);
  const long long g = std::gcd(n, 1000LL);
  return Rational{static_cast<int>(n / g), static_cast<int>(1000 / g)};
}

Diagnostic Reader::located(const YAML::Mark& mark, const std::string& message) const {
  Diagnostic d;
  d.file_index = index_;
  d.file = file_;
  if (!mark.is_null()) d.line = mark.line + 1, d.col = mark.column + 1;
  d.message = message;
  return d;
}

void Reader::error(const YAML::Mark& mark, const std::string& path, const std::string& message) {
  sink_.add(located(mark, path.empty() ? message : path + ": " + message));
}

void Reader::expected(const YAML::Node& node, const std::string& path, const std::string& what,
                      const std::string& suffix) {
  error(node, path, "expected " + what + ", got " + describe(node) + suffix);
}

void Reader::check_keys(const YAML::Node& map, const std::string& path, const std::vector<std::string>& allowed) {
  if (!is_map(map)) return;
  std::vector<std::pair<std::string, YAML::Mark>> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node key = it->first;  // a copy: the iterator hands out a temporary pair
    if (!key.IsScalar()) {
      expected(key, path, "a key name (text)");
      continue;
    }
    const std::string& k = key.Scalar();
    const std::string kp = join_path(path, k);
    auto prev = std::find_if(seen.begin(), seen.end(), [&](const auto& p) { return p.first == k; });
    if (prev != seen.end()) {
      error(key.Mark(), kp,
            "expected each key once, got '" + k + "' again (first at line " + std::to_string(prev->second.line + 1) +
                ")");
      continue;
    }
    seen.emplace_back(k, key.Mark());
    if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
    const std::string hint = did_you_mean(k, allowed);
    if (!hint.empty()) {
      error(key.Mark(), kp, "unknown key" + hint);
    } else {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      error(key.Mark(), kp, "unknown key, expected one of: " + list);
    }
  }
}

bool Reader::require_map(const YAML::Node& node, const std::string& path, const std::string& what) {
  if (is_map(node)) return true;
  expected(node, path, "a mapping (" + what + ")");
  return false;
}

std::optional<std::string> Reader::text(const YAML::Node& node, const std::string& path, bool allow_empty) {
  if (!is_scalar(node)) {
    expected(node, path, "text");
    return std::nullopt;
  }
  if (!allow_empty && node.Scalar().empty()) {
    expected(node, path, "non-empty text");
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<bool> Reader::boolean(const YAML::Node& node, const std::string& path) {
  if (is_plain_scalar(node)) {
    std::string s = node.Scalar();
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    if (s == "true") return true;
    if (s == "false") return false;
  }
  expected(node, path, "true or false");
  return std::nullopt;
}

std::optional<int64_t> Reader::integer(const YAML::Node& node, const std::string& path, int64_t min, int64_t max,
                                       const char* limit_name) {
  const std::string words = range_words(static_cast<double>(min), static_cast<double>(max), true, false);
  if (!is_plain_scalar(node) || !looks_like_integer(node.Scalar())) {
    expected(node, path, words);
    return std::nullopt;
  }
  const std::string& s = node.Scalar();
  int64_t v = 0;
  const char* b = s.data() + (s[0] == '+' ? 1 : 0);
  if (std::from_chars(b, s.data() + s.size(), v).ec != std::errc()) {
    expected(node, path, words, " (out of range)");
    return std::nullopt;
  }
  if (v > max && limit_name) {
    error(node, path, "expected at most " + std::to_string(max) + " (" + limit_name + "), got " + s);
    return std::nullopt;
  }
  if (v < min || v > max) {
    expected(node, path, words);
    return std::nullopt;
  }
  return v;
}

std::optional<uint64_t> Reader::unsigned64(const YAML::Node& node, const std::string& path) {
  const char* words = "an integer from 0 to 18446744073709551615";
  if (!is_plain_scalar(node) || !looks_like_integer(node.Scalar()) || node.Scalar()[0] == '-') {
    expected(node, path, words);
    return std::nullopt;
  }
  const std::string& s = node.Scalar();
  uint64_t v = 0;
  const char* b = s.data() + (s[0] == '+' ? 1 : 0);
  if (std::from_chars(b, s.data() + s.size(), v).ec != std::errc()) {
    expected(node, path, words);
    return std::nullopt;
  }
  return v;
}

std::optional<double> Reader::number(const YAML::Node& node, const std::string& path, double min, double max,
                                     bool min_exclusive) {
  const std::string words = range_words(min, max, false, min_exclusive);
  std::optional<double> v;
  if (is_plain_scalar(node)) v = parse_double(node.Scalar());
  if (!v || (min_exclusive ? *v <= min : *v < min) || *v > max) {
    expected(node, path, words);
    return std::nullopt;
  }
  return v;
}

std::optional<std::string> Reader::choice(const YAML::Node& node, const std::string& path,
                                          const std::vector<std::string>& allowed) {
  std::string list;
  for (size_t i = 0; i < allowed.size(); ++i)
    list += (i == 0 ? "" : (i + 1 == allowed.size() ? " or " : ", ")) + allowed[i];
  if (!is_scalar(node)) {
    expected(node, path, list);
    return std::nullopt;
  }
  const std::string& s = node.Scalar();
  if (std::find(allowed.begin(), allowed.end(), s) != allowed.end()) return s;
  expected(node, path, list, did_you_mean(s, allowed));
  return std::nullopt;
}

std::optional<Rational> Reader::rate(const YAML::Node& node, const std::string& path, double max_fps) {
  const std::string words = "a frame rate (30, 29.97 or 30000/1001) up to " + format_number(max_fps);
  std::optional<Rational> r;
  if (is_scalar(node)) r = parse_rate(node.Scalar());
  if (r && !is_plain_scalar(node) && node.Scalar().find('/') == std::string::npos) r.reset();
  if (!r || r->value() > max_fps) {
    expected(node, path, words);
    return std::nullopt;
  }
  return r;
}

std::optional<YAML::Node> load_yaml_file(const std::filesystem::path& path, Reader& reader) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    reader.error(YAML::Mark::null_mark(), "",
                 "expected a readable YAML file, got " +
                     std::string(std::filesystem::exists(path) ? "a file that cannot be read" : "no such file"));
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string content = ss.str();

  // Tabs in indentation: YAML forbids them, and yaml-cpp's reaction ranges from silence to a misleading
  // message, so each is reported at its own position and the file is not parsed further.
  bool tabs = false;
  int line = 0;
  for (size_t start = 0; start < content.size(); ++line) {
    size_t end = content.find('\n', start);
    if (end == std::string::npos) end = content.size();
    for (size_t i = start; i < end && (content[i] == ' ' || content[i] == '\t'); ++i) {
      if (content[i] == '\t') {
        YAML::Mark m;
        m.line = line;
        m.column = static_cast<int>(i - start);
        reader.error(m, "", "expected spaces for indentation, got a tab character (YAML does not allow tabs)");
        tabs = true;
        break;
      }
    }
    start = end + 1;
  }
  if (tabs) return std::nullopt;

  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(content);
    if (docs.empty()) return YAML::Node(YAML::NodeType::Null);
    if (docs.size() > 1) {
      reader.error(YAML::Mark::null_mark(), "",
                   "expected one YAML document, got " + std::to_string(docs.size()) + " (separated by '---')");
      return std::nullopt;
    }
    return docs[0];
  } catch (const YAML::Exception& e) {
    reader.error(e.mark, "", "invalid YAML: " + e.msg);
    return std::nullopt;
  }
}

}  // namespace clipgen::configs::detail
