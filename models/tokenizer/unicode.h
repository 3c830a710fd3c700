// The few Unicode operations the CLIP tokenizer needs, with Python 3.11 semantics (Unicode 14.0.0):
// UTF-8 ↔ UTF-32, general-category classes, NFC, and str.lower() (full mappings + Final_Sigma).
// Tables are generated from Python's unicodedata (gen_unicode_tables.py); no ICU dependency.
#pragma once
#include <string>
#include <string_view>

namespace clipgen::unicode {

// Decodes UTF-8. Malformed sequences (bad lead/continuation bytes, overlongs, surrogates, > U+10FFFF)
// decode to U+FFFD, one per offending byte.
std::u32string utf8_to_u32(std::string_view s);
std::string u32_to_utf8(std::u32string_view s);
void append_utf8(std::string& out, char32_t cp);

bool is_letter(char32_t cp);            // \p{L}: Lu Ll Lt Lm Lo
bool is_number(char32_t cp);            // \p{N}: Nd Nl No
bool is_other(char32_t cp);             // category C*: Cc Cf Cn Co Cs
bool is_space_separator(char32_t cp);   // category Zs
bool is_python_space(char32_t cp);      // Python's str.isspace() / str.split() whitespace
int combining_class(char32_t cp);       // canonical combining class (0 for starters)

// unicodedata.normalize("NFC", s)
std::u32string nfc(std::u32string_view s);
// str.lower(): full lowercase mappings (İ → i̇) and the Final_Sigma rule (Σ → ς at the end of a word).
std::u32string lower(std::u32string_view s);

}  // namespace clipgen::unicode
