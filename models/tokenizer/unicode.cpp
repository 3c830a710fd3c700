#include "models/tokenizer/unicode.h"

#include <algorithm>

#include "models/tokenizer/unicode_tables.h"

namespace clipgen::unicode {
namespace t = tables;

std::u32string utf8_to_u32(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char b = p[i];
    if (b < 0x80) {
      out.push_back(b);
      ++i;
      continue;
    }
    int len = 0;
    char32_t cp = 0, min = 0;
    if ((b & 0xE0) == 0xC0) len = 2, cp = b & 0x1F, min = 0x80;
    else if ((b & 0xF0) == 0xE0) len = 3, cp = b & 0x0F, min = 0x800;
    else if ((b & 0xF8) == 0xF0) len = 4, cp = b & 0x07, min = 0x10000;
    bool ok = len > 0 && i + len <= n;
    for (int k = 1; ok && k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) ok = false;
      else cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (ok && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) ok = false;
    if (!ok) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string u32_to_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

static uint8_t run_value(const t::Run* runs, size_t n, char32_t cp) {
  // Last run whose start <= cp (runs[0].start == 0).
  const t::Run* it = std::upper_bound(runs, runs + n, static_cast<uint32_t>(cp),
                                      [](uint32_t v, const t::Run& r) { return v < r.start; });
  return (it - 1)->value;
}

static uint8_t char_class(char32_t cp) {
  if (cp >= 0x110000) return t::kControl;
  return run_value(t::kClassRuns, t::kClassRunsSize, cp);
}

bool is_letter(char32_t cp) { return char_class(cp) == t::kLetter; }
bool is_number(char32_t cp) { return char_class(cp) == t::kNumber; }
bool is_other(char32_t cp) { return char_class(cp) == t::kControl; }
bool is_space_separator(char32_t cp) { return char_class(cp) == t::kSpaceSeparator; }

bool is_python_space(char32_t cp) {
  // Bidi classes WS/B/S or category Zs (CPython's _PyUnicode_IsWhitespace).
  if ((cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F) || cp == 0x85) return true;
  if (cp == 0x2028 || cp == 0x2029) return true;
  return cp < 0x110000 && is_space_separator(cp);
}

int combining_class(char32_t cp) {
  if (cp >= 0x110000) return 0;
  return run_value(t::kCccRuns, t::kCccRunsSize, cp);
}

// --- NFC -------------------------------------------------------------------------------------------
namespace {
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

const t::Decomp* find_decomp(char32_t cp) {
  const t::Decomp* end = t::kDecomp + t::kDecompSize;
  const t::Decomp* it = std::lower_bound(t::kDecomp, end, static_cast<uint32_t>(cp),
                                         [](const t::Decomp& d, uint32_t v) { return d.cp < v; });
  return (it != end && it->cp == cp) ? it : nullptr;
}

void decompose(char32_t cp, std::u32string& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    int s = static_cast<int>(cp - kSBase);
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  const t::Decomp* d = find_decomp(cp);
  if (!d) {
    out.push_back(cp);
    return;
  }
  decompose(d->first, out);
  if (d->second) decompose(d->second, out);
}

char32_t compose_pair(char32_t a, char32_t b) {
  // Hangul LV and LV+T.
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const t::Compose* end = t::kCompose + t::kComposeSize;
  const t::Compose* it = std::lower_bound(t::kCompose, end, std::make_pair(a, b), [](const t::Compose& c, const auto& v) {
    return c.first < v.first || (c.first == v.first && c.second < v.second);
  });
  return (it != end && it->first == a && it->second == b) ? it->composite : 0;
}
}  // namespace

std::u32string nfc(std::u32string_view s) {
  // 1. Full canonical decomposition.
  std::u32string d;
  d.reserve(s.size());
  for (char32_t c : s) decompose(c, d);
  // 2. Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < d.size();) {
    if (combining_class(d[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < d.size() && combining_class(d[j]) != 0) ++j;
    std::stable_sort(d.begin() + i, d.begin() + j,
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  // 3. Canonical composition: each character combines with the last starter unless blocked.
  std::u32string out;
  out.reserve(d.size());
  long starter = -1;  // index in `out` of the last starter
  int last_ccc = -1;  // ccc of the last character appended after that starter (-1: none)
  for (char32_t c : d) {
    int ccc = combining_class(c);
    if (starter >= 0 && (last_ccc == -1 || (last_ccc != 0 && last_ccc < ccc))) {
      // Not blocked: last_ccc == -1 means c directly follows the starter.
      if (char32_t comp = compose_pair(out[starter], c)) {
        out[starter] = comp;
        continue;
      }
    }
    out.push_back(c);
    if (ccc == 0) {
      starter = static_cast<long>(out.size()) - 1;
      last_ccc = -1;
    } else {
      last_ccc = ccc;
    }
  }
  return out;
}

// --- lower() ---------------------------------------------------------------------------------------
static uint8_t sigma_class(char32_t cp) {
  if (cp >= 0x110000) return t::kSigmaNone;
  return run_value(t::kSigmaRuns, t::kSigmaRunsSize, cp);
}

std::u32string lower(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  const t::Lower* end = t::kLower + t::kLowerSize;
  for (size_t i = 0; i < s.size(); ++i) {
    char32_t c = s[i];
    if (c == 0x03A3) {
      // CPython's handle_capital_sigma: final when preceded by a cased letter (skipping case-ignorable
      // characters) and not followed by one.
      long j = static_cast<long>(i) - 1;
      while (j >= 0 && sigma_class(s[j]) == t::kCaseIgnorable) --j;
      bool final_sigma = j >= 0 && sigma_class(s[j]) == t::kCased;
      if (final_sigma) {
        size_t k = i + 1;
        while (k < s.size() && sigma_class(s[k]) == t::kCaseIgnorable) ++k;
        final_sigma = k == s.size() || sigma_class(s[k]) != t::kCased;
      }
      out.push_back(final_sigma ? 0x03C2 : 0x03C3);
      continue;
    }
    const t::Lower* it = std::lower_bound(t::kLower, end, static_cast<uint32_t>(c),
                                          [](const t::Lower& l, uint32_t v) { return l.cp < v; });
    if (it != end && it->cp == c) {
      for (uint32_t l : it->lower)
        if (l) out.push_back(l);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace clipgen::unicode
