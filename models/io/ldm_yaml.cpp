#include "models/io/ldm_yaml.h"

#include <cctype>
#include <sstream>

namespace clipgen::io {
namespace {

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

std::string unquote(std::string v) {
  v = trim(v);
  if (v.size() >= 2 && ((v.front() == '"' && v.back() == '"') || (v.front() == '\'' && v.back() == '\'')))
    return v.substr(1, v.size() - 2);
  return v;
}

// Removes a trailing comment ("# ..." outside quotes).
std::string strip_comment(const std::string& line) {
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '#' && (i == 0 || std::isspace(static_cast<unsigned char>(line[i - 1])))) {
      return line.substr(0, i);
    }
  }
  return line;
}

// Splits "key: value" at the first ": " (or trailing ':') outside brackets/quotes. Returns false if none.
bool split_key(const std::string& s, std::string& key, std::string& value) {
  int depth = 0;
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote) {
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '"' || c == '\'') quote = c;
    else if (c == '[' || c == '{') ++depth;
    else if (c == ']' || c == '}') --depth;
    else if (c == ':' && depth == 0 && (i + 1 == s.size() || s[i + 1] == ' ')) {
      key = unquote(s.substr(0, i));
      value = trim(s.substr(i + 1));
      return !key.empty();
    }
  }
  return false;
}

// Splits the inside of a flow collection at top-level commas.
std::vector<std::string> split_flow(const std::string& inner) {
  std::vector<std::string> out;
  int depth = 0;
  std::string cur;
  for (char c : inner) {
    if (c == '[' || c == '{') ++depth;
    if (c == ']' || c == '}') --depth;
    if (c == ',' && depth == 0) {
      out.push_back(trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!trim(cur).empty()) out.push_back(trim(cur));
  return out;
}

bool ends_with_path(const std::string& path, const std::string& suffix) {
  if (path == suffix) return true;
  return path.size() > suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0 &&
         path[path.size() - suffix.size() - 1] == '.';
}

}  // namespace

LdmYaml LdmYaml::parse(const std::string& text) {
  LdmYaml y;
  std::vector<std::pair<int, std::string>> stack;  // (indent, path component)
  auto path_of = [&](const std::string& key) {
    std::string p;
    for (const auto& [ind, comp] : stack) p += comp + ".";
    return p + key;
  };
  auto add_value = [&](const std::string& path, const std::string& value) {
    if (value.size() >= 2 && value.front() == '{' && value.back() == '}') {
      for (const auto& item : split_flow(value.substr(1, value.size() - 2))) {
        std::string k, v;
        if (split_key(item, k, v)) y.entries_.emplace_back(path + "." + k, unquote(v));
      }
    } else {
      y.entries_.emplace_back(path, unquote(value));
    }
  };
  std::istringstream in(text);
  std::string raw;
  while (std::getline(in, raw)) {
    std::string line = strip_comment(raw);
    if (trim(line).empty() || trim(line) == "---") continue;
    int indent = 0;
    while (indent < static_cast<int>(line.size()) && line[indent] == ' ') ++indent;
    std::string body = trim(line);
    if (body.rfind("- ", 0) == 0 || body == "-") {
      // A sequence item. The sequence may sit at its parent key's indent, so only deeper levels and the
      // previous item of the same sequence end here.
      while (!stack.empty() && (stack.back().first > indent || (stack.back().first == indent && stack.back().second == "-")))
        stack.pop_back();
      stack.emplace_back(indent, "-");
      std::string rest = body == "-" ? "" : trim(body.substr(2));
      std::string k, v;
      if (!rest.empty() && split_key(rest, k, v)) {
        if (v.empty()) stack.emplace_back(indent + 2, k);
        else add_value(path_of(k), v);
      } else if (!rest.empty()) {
        std::string p = path_of("");
        y.entries_.emplace_back(p.substr(0, p.size() - 1), unquote(rest));
      }
      continue;
    }
    while (!stack.empty() && stack.back().first >= indent) stack.pop_back();
    std::string k, v;
    if (!split_key(body, k, v)) continue;  // outside the subset: skip
    if (v.empty() || v == "|" || v == ">") stack.emplace_back(indent, k);
    else add_value(path_of(k), v);
  }
  return y;
}

std::optional<std::string> LdmYaml::find(const std::string& suffix) const {
  for (const auto& [p, v] : entries_)
    if (ends_with_path(p, suffix)) return v;
  return std::nullopt;
}

std::optional<int64_t> LdmYaml::find_int(const std::string& suffix) const {
  auto v = find(suffix);
  if (!v) return std::nullopt;
  try {
    size_t used = 0;
    int64_t x = std::stoll(*v, &used);
    if (used == v->size()) return x;
  } catch (...) {
  }
  return std::nullopt;
}

std::optional<double> LdmYaml::find_double(const std::string& suffix) const {
  auto v = find(suffix);
  if (!v) return std::nullopt;
  try {
    size_t used = 0;
    double x = std::stod(*v, &used);
    if (used == v->size()) return x;
  } catch (...) {
  }
  return std::nullopt;
}

std::optional<bool> LdmYaml::find_bool(const std::string& suffix) const {
  auto v = find(suffix);
  if (!v) return std::nullopt;
  std::string s;
  for (char c : *v) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "true" || s == "yes") return true;
  if (s == "false" || s == "no") return false;
  return std::nullopt;
}

std::optional<std::vector<int64_t>> LdmYaml::find_int_list(const std::string& suffix) const {
  auto v = find(suffix);
  if (!v) return std::nullopt;
  std::string s = trim(*v);
  std::vector<std::string> items;
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') items = split_flow(s.substr(1, s.size() - 2));
  else items.push_back(s);
  std::vector<int64_t> out;
  for (const auto& it : items) {
    try {
      size_t used = 0;
      out.push_back(std::stoll(it, &used));
      if (used != it.size()) return std::nullopt;
    } catch (...) {
      return std::nullopt;
    }
  }
  return out;
}

}  // namespace clipgen::io
