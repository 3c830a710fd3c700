#include "scenes/caption.h"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace clipgen::scenes {

namespace {

std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    // Apostrophes and hyphens belong to a word only inside it ("sun-lit"), never alone ("--").
    while (!cur.empty() && (cur.back() == '-' || cur.back() == '\'')) cur.pop_back();
    const size_t start = cur.find_first_not_of("-'");
    if (start != std::string::npos) out.push_back(cur.substr(start));
    cur.clear();
  };
  for (char ch : text) {
    const auto u = static_cast<unsigned char>(ch);
    if (std::isalnum(u) || ch == '\'' || ch == '-')
      cur += static_cast<char>(std::tolower(u));
    else
      flush();
  }
  flush();
  return out;
}

// Phrases a prompt may use beyond the caption phrases (longest are tried first).
struct PhraseRule {
  std::vector<std::string> words;
  int kind;   // 0 sky, 1 ground, 2 extra
  int value;  // Sky/Ground value, or extra index (0 sun, 1 moon, 2 clouds)
};

const std::vector<PhraseRule>& rules() {
  static const std::vector<PhraseRule> r = [] {
    std::vector<PhraseRule> v;
    auto add = [&](const std::string& phrase, int kind, int value) {
      v.push_back({words_of(phrase), kind, value});
    };
    for (int s = 0; s < kSkies; ++s)
      for (const auto& p : phrases(static_cast<Sky>(s))) add(p, 0, s);
    for (int g = 0; g < kGrounds; ++g)
      for (const auto& p : phrases(static_cast<Ground>(g))) add(p, 1, g);
    add("blue sky", 0, 0);
    add("clear sky", 0, 0);
    add("clear", 0, 0);
    add("daytime", 0, 0);
    add("sunset", 0, 1);
    add("dusk", 0, 1);
    add("night", 0, 2);
    add("overcast", 0, 3);
    add("cloudy sky", 0, 3);
    add("cloudy", 0, 3);
    add("grass", 1, 0);
    add("meadow", 1, 0);
    add("field", 1, 0);
    add("sand", 1, 1);
    add("desert", 1, 1);
    add("beach", 1, 1);
    add("snow", 1, 2);
    add("sea", 1, 3);
    add("ocean", 1, 3);
    add("water", 1, 3);
    add("the sun", 2, 0);
    add("sun", 2, 0);
    add("the moon", 2, 1);
    add("moon", 2, 1);
    add("clouds", 2, 2);
    std::stable_sort(v.begin(), v.end(), [](const PhraseRule& a, const PhraseRule& b) { return a.words.size() > b.words.size(); });
    return v;
  }();
  return r;
}

bool is_connector(const std::string& w) {
  static const char* stop[] = {"a", "an", "the", "on", "under", "over", "above", "in", "at", "with", "and",
                               "of", "day", "sky", "flying", "floating", "lying", "sitting", "one"};
  return std::any_of(std::begin(stop), std::end(stop), [&](const char* s) { return w == s; });
}

std::string join_extras(const Scene& s) {
  std::vector<std::string> e;
  if (s.sun) e.emplace_back("the sun");
  if (s.moon) e.emplace_back("the moon");
  if (s.clouds) e.emplace_back("clouds");
  if (e.empty()) return "";
  std::string out = " with " + e[0];
  for (size_t i = 1; i < e.size(); ++i) out += (i + 1 == e.size() ? " and " : ", ") + e[i];
  return out;
}

}  // namespace

const std::vector<std::string>& phrases(Sky s) {
  static const std::vector<std::vector<std::string>> p = {
      {"on a clear day", "under a blue sky"}, {"at sunset"}, {"at night"}, {"on an overcast day", "under a cloudy sky"}};
  return p[static_cast<size_t>(s)];
}

const std::vector<std::string>& phrases(Ground g) {
  static const std::vector<std::vector<std::string>> p = {
      {"over grass", "on a meadow"}, {"over sand", "in the desert"}, {"over snow"}, {"over the sea", "above the ocean"}};
  return p[static_cast<size_t>(g)];
}

std::string caption(const Scene& s, uint64_t seed) {
  Rng r(mix_seed(seed, 0xCA9));
  const auto& sp = phrases(s.sky);
  const auto& gp = phrases(s.ground);
  const std::string sky = sp[static_cast<size_t>(r.below(static_cast<int>(sp.size())))];
  const std::string ground = gp[static_cast<size_t>(r.below(static_cast<int>(gp.size())))];
  const char* article = s.colour == Colour::Orange ? "an " : "a ";
  const std::string obj = article + std::string(name(s.colour)) + " " + name(s.object);
  const std::string extras = join_extras(s);
  switch (r.below(5)) {
    case 0: return obj + " " + ground + " " + sky + extras;
    case 1: return sky + ", " + obj + " " + ground + extras;
    case 2: return obj + " " + sky + " " + ground + extras;
    case 3: return ground + " " + sky + ", " + obj + extras;
    default: return obj + extras + " " + ground + " " + sky;
  }
}

PromptParse parse_prompt(const std::string& prompt) {
  PromptParse out;
  const auto words = words_of(prompt);
  std::vector<bool> used(words.size(), false);
  for (const auto& rule : rules()) {
    const size_t n = rule.words.size();
    for (size_t i = 0; i + n <= words.size(); ++i) {
      bool match = true;
      for (size_t k = 0; k < n && match; ++k) match = !used[i + k] && words[i + k] == rule.words[k];
      if (!match) continue;
      for (size_t k = 0; k < n; ++k) used[i + k] = true;
      if (rule.kind == 0 && !out.sky) out.sky = static_cast<Sky>(rule.value);
      if (rule.kind == 1 && !out.ground) out.ground = static_cast<Ground>(rule.value);
      if (rule.kind == 2) (rule.value == 0 ? out.sun : rule.value == 1 ? out.moon : out.clouds) = true;
    }
  }
  for (size_t i = 0; i < words.size(); ++i) {
    if (used[i]) continue;
    const std::string& w = words[i];
    bool known = false;
    for (int c = 0; c < kColours && !known; ++c)
      if (w == name(static_cast<Colour>(c))) {
        if (!out.colour) out.colour = static_cast<Colour>(c);
        known = true;
      }
    for (int o = 0; o < kObjects && !known; ++o) {
      const std::string n = name(static_cast<Object>(o));
      if (w == n || w == n + "s" || w == n + "es") {
        if (!out.object) out.object = static_cast<Object>(o);
        known = true;
      }
    }
    if (known || is_connector(w)) continue;
    if (std::find(out.unknown.begin(), out.unknown.end(), w) == out.unknown.end()) out.unknown.push_back(w);
  }
  return out;
}

Scene scene_for_prompt(const PromptParse& p, uint64_t seed) {
  Scene s = sample_scene(seed);
  if (p.sky) s.sky = *p.sky;
  if (p.ground) s.ground = *p.ground;
  if (p.object && *p.object != s.object) {
    // Re-place the object as sample_scene would for its kind.
    for (uint64_t k = 1; k < 64; ++k) {
      Scene t = sample_scene(mix_seed(seed, k));
      if (t.object == *p.object) {
        s.object = t.object;
        s.obj_x = t.obj_x;
        s.obj_y = t.obj_y * s.horizon / t.horizon;
        if (t.obj_y >= t.horizon) s.obj_y = s.horizon + (t.obj_y - t.horizon) * (1 - s.horizon) / (1 - t.horizon);
        break;
      }
    }
  }
  if (p.colour) s.colour = *p.colour;
  s.sun = p.sun;
  s.moon = p.moon && !p.sun;
  s.clouds = p.clouds;
  return s;
}

}  // namespace clipgen::scenes
