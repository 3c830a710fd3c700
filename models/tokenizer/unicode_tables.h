// Generated Unicode 14.0.0 tables for the CLIP tokenizer (see gen_unicode_tables.py). Internal header:
// use models/tokenizer/unicode.h.
#pragma once
#include <cstddef>
#include <cstdint>

namespace clipgen::unicode::tables {

struct Run {  // values apply from `start` up to the next run's start
  uint32_t start;
  uint8_t value;
};
struct Decomp {  // canonical decomposition of cp: first [, second] (second = 0 when a singleton)
  uint32_t cp, first, second;
};
struct Compose {  // primary composite of (first, second)
  uint32_t first, second, composite;
};
struct Lower {  // str.lower() of cp, 1..3 code points (0-terminated)
  uint32_t cp;
  uint32_t lower[3];
};

// kClassRuns values
enum : uint8_t { kOther = 0, kLetter = 1, kNumber = 2, kControl = 3, kSpaceSeparator = 4 };
// kSigmaRuns values
enum : uint8_t { kSigmaNone = 0, kCaseIgnorable = 1, kCased = 2 };

extern const Run kClassRuns[];
extern const size_t kClassRunsSize;
extern const Run kCccRuns[];
extern const size_t kCccRunsSize;
extern const Decomp kDecomp[];
extern const size_t kDecompSize;
extern const Compose kCompose[];
extern const size_t kComposeSize;
extern const Lower kLower[];
extern const size_t kLowerSize;
extern const Run kSigmaRuns[];
extern const size_t kSigmaRunsSize;

}  // namespace clipgen::unicode::tables
