#include "models/tokenizer/clip_tokenizer.h"

#include <algorithm>
#include <climits>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "models/io/diffusers_folder.h"
#include "models/tokenizer/unicode.h"

namespace clipgen {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// transformers reads at most 49152 - 256 - 2 merges (the original CLIP BPE vocabulary size).
constexpr size_t kMaxMerges = 49152 - 256 - 2;

// A special-token entry is a string or an AddedToken dict {"content": ...}.
std::string token_content(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return "";
}

// BERT BasicTokenizer._is_chinese_char: CJK Unified Ideographs blocks and compatibility ideographs.
bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// Case-insensitive match of one code point against an ASCII lower-case letter, as the `regex` module's
// IGNORECASE (simple case folding) does: 's' also matches U+017F LATIN SMALL LETTER LONG S.
bool ci_eq(char32_t c, char ascii) {
  if (c == static_cast<char32_t>(ascii)) return true;
  if (ascii >= 'a' && ascii <= 'z' && c == static_cast<char32_t>(ascii - 'a' + 'A')) return true;
  return ascii == 's' && c == 0x17F;
}

bool match_ci(const std::u32string& s, size_t i, std::string_view lit) {
  if (i + lit.size() > s.size()) return false;
  for (size_t k = 0; k < lit.size(); ++k)
    if (!ci_eq(s[i + k], lit[k])) return false;
  return true;
}

// The CLIP pattern, applied as re.findall would: at each position the first alternative that matches
// wins; positions where none matches (whitespace) are skipped.
std::vector<std::u32string> clip_regex_split(const std::u32string& s) {
  static constexpr std::string_view kLiterals[] = {"<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re",
                                                   "'ve", "'m", "'ll", "'d"};
  std::vector<std::u32string> out;
  size_t i = 0;
  while (i < s.size()) {
    bool matched = false;
    for (auto lit : kLiterals) {
      if (match_ci(s, i, lit)) {
        out.emplace_back(s.substr(i, lit.size()));
        i += lit.size();
        matched = true;
        break;
      }
    }
    if (matched) continue;
    char32_t c = s[i];
    if (unicode::is_letter(c)) {
      size_t j = i;
      while (j < s.size() && unicode::is_letter(s[j])) ++j;
      out.emplace_back(s.substr(i, j - i));
      i = j;
    } else if (unicode::is_number(c)) {
      out.emplace_back(1, c);
      ++i;
    } else if (!unicode::is_python_space(c)) {
      size_t j = i;
      while (j < s.size() && !unicode::is_python_space(s[j]) && !unicode::is_letter(s[j]) && !unicode::is_number(s[j])) ++j;
      out.emplace_back(s.substr(i, j - i));
      i = j;
    } else {
      ++i;
    }
  }
  return out;
}

// Splits on Python whitespace (str.split()).
std::vector<std::u32string> split_whitespace(const std::u32string& s) {
  std::vector<std::u32string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && unicode::is_python_space(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !unicode::is_python_space(s[j])) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// BasicTokenizer(strip_accents=False, do_split_on_punc=False).tokenize(text), joined with spaces, lower-cased.
std::u32string basic_clean(std::string_view text_utf8) {
  std::u32string in = unicode::utf8_to_u32(text_utf8);
  // _clean_text: drop NUL, U+FFFD and category C (except \t \n \r); whitespace → space.
  std::u32string cleaned;
  cleaned.reserve(in.size());
  for (char32_t c : in) {
    bool tab_nl_cr = c == U'\t' || c == U'\n' || c == U'\r';
    if (c == 0 || c == 0xFFFD || (!tab_nl_cr && unicode::is_other(c))) continue;
    if (c == U' ' || tab_nl_cr || unicode::is_space_separator(c)) {
      cleaned.push_back(U' ');
    } else if (is_cjk(c)) {  // _tokenize_chinese_chars
      cleaned.push_back(U' ');
      cleaned.push_back(c);
      cleaned.push_back(U' ');
    } else {
      cleaned.push_back(c);
    }
  }
  std::u32string normalized = unicode::nfc(cleaned);
  std::u32string joined;
  for (const auto& tok : split_whitespace(normalized)) {
    if (!joined.empty()) joined.push_back(U' ');
    joined += unicode::lower(tok);
  }
  // CLIPTokenizer._tokenize lower-cases the joined text once more.
  return unicode::lower(joined);
}

std::string read_text_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw ModelLoadError(p.string(), "", "cannot open tokenizer file");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

CLIPTokenizer CLIPTokenizer::from_folder(const fs::path& dir) {
  CLIPTokenizer t;
  const fs::path vocab_path = dir / "vocab.json", merges_path = dir / "merges.txt";
  if (!fs::exists(vocab_path))
    throw ModelLoadError(vocab_path.string(), "", "missing: a CLIP tokenizer folder needs vocab.json and merges.txt");
  if (!fs::exists(merges_path))
    throw ModelLoadError(merges_path.string(), "", "missing: a CLIP tokenizer folder needs vocab.json and merges.txt");

  json vocab = io::read_json(vocab_path);
  if (!vocab.is_object()) throw ModelLoadError(vocab_path.string(), "", "expected a JSON object {token: id}");
  t.vocab_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer())
      throw ModelLoadError(vocab_path.string(), it.key(), "vocabulary id is not an integer");
    int64_t id = it.value().get<int64_t>();
    t.vocab_[it.key()] = id;
    t.decoder_[id] = it.key();
  }

  // merges.txt: the first line is a "#version" header (transformers skips it unconditionally).
  std::string merges = read_text_file(merges_path);
  {
    // transformers: merges_handle.read().strip().split("\n")[1 : 49152 - 256 - 2 + 1]
    size_t b = merges.find_first_not_of(" \t\n\r\f\v");
    size_t e = merges.find_last_not_of(" \t\n\r\f\v");
    merges = b == std::string::npos ? std::string() : merges.substr(b, e - b + 1);
    size_t pos = merges.find('\n');
    int rank = 0;
    while (pos != std::string::npos && static_cast<size_t>(rank) < kMaxMerges) {
      size_t next = merges.find('\n', pos + 1);
      std::string line = merges.substr(pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1);
      // Python's tuple(merge.split()) splits on any whitespace; a well-formed line is "a b".
      std::istringstream ls(line);
      std::string a, b2, extra;
      ls >> a >> b2;
      if (a.empty() || b2.empty() || (ls >> extra))
        throw ModelLoadError(merges_path.string(), "", "malformed merge on line " + std::to_string(rank + 2) + ": '" + line + "'");
      t.merge_ranks_.emplace(a + " " + b2, rank);
      ++rank;
      pos = next;
    }
  }

  // GPT-2 bytes_to_unicode: printable Latin-1 bytes stand for themselves, the rest map to 256+n.
  {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      t.byte_encoder_[b] = unicode::u32_to_utf8(std::u32string(1, cp));
    }
  }

  // Special tokens. With added_tokens_decoder in tokenizer_config.json (transformers >= 4.34 files) the
  // config's own values count; older folders let special_tokens_map.json override them.
  json cfg = fs::exists(dir / "tokenizer_config.json") ? io::read_json(dir / "tokenizer_config.json") : json::object();
  json smap = fs::exists(dir / "special_tokens_map.json") ? io::read_json(dir / "special_tokens_map.json") : json::object();
  bool legacy = !cfg.contains("added_tokens_decoder");
  auto special = [&](const char* key, const std::string& def) {
    std::string v;
    if (cfg.contains(key)) v = token_content(cfg[key]);
    if ((legacy || v.empty()) && smap.contains(key)) {
      std::string s = token_content(smap[key]);
      if (!s.empty()) v = s;
    }
    return v.empty() ? def : v;
  };
  t.bos_ = special("bos_token", "<|startoftext|>");
  t.eos_ = special("eos_token", "<|endoftext|>");
  t.unk_ = special("unk_token", "<|endoftext|>");
  t.pad_ = special("pad_token", "<|endoftext|>");
  if (cfg.contains("model_max_length") && cfg["model_max_length"].is_number_integer()) {
    int64_t m = cfg["model_max_length"].get<int64_t>();
    if (m > 2 && m < 100000) t.model_max_length_ = m;  // "very large" means unset in transformers
  }

  if (!legacy) {
    const json& dec = cfg["added_tokens_decoder"];
    for (auto it = dec.begin(); it != dec.end(); ++it) {
      std::string content = token_content(it.value());
      if (content.empty()) continue;
      t.added_.emplace_back(content, std::stoll(it.key()));
    }
  }
  for (const auto& s : {t.bos_, t.eos_, t.unk_, t.pad_}) {
    bool known = std::any_of(t.added_.begin(), t.added_.end(), [&](const auto& a) { return a.first == s; });
    if (known) continue;
    auto v = t.vocab_.find(s);
    if (v == t.vocab_.end())
      throw ModelLoadError((dir / "tokenizer_config.json").string(), s, "special token is neither in vocab.json nor an added token");
    t.added_.emplace_back(s, v->second);
  }
  for (const auto& [content, id] : t.added_) t.decoder_[id] = content;
  // Longest first, so that at one position the longest added token wins.
  std::stable_sort(t.added_.begin(), t.added_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  t.bos_id_ = t.token_to_id(t.bos_);
  t.eos_id_ = t.token_to_id(t.eos_);
  t.unk_id_ = t.token_to_id(t.unk_);
  t.pad_id_ = t.token_to_id(t.pad_);
  return t;
}

int64_t CLIPTokenizer::token_to_id(const std::string& token) const {
  for (const auto& [content, id] : added_)
    if (content == token) return id;
  auto it = vocab_.find(token);
  if (it != vocab_.end()) return it->second;
  auto u = vocab_.find(unk_);
  return u != vocab_.end() ? u->second : unk_id_;
}

std::string CLIPTokenizer::id_to_token(int64_t id) const {
  auto it = decoder_.find(id);
  if (it == decoder_.end()) throw Error("CLIPTokenizer: unknown token id " + std::to_string(id));
  return it->second;
}

void CLIPTokenizer::bpe(const std::string& piece, std::vector<std::string>& out) const {
  // The reference's BPE cache is seeded with the two special tokens: they come back whole.
  if (piece == "<|startoftext|>" || piece == "<|endoftext|>") {
    out.push_back(piece);
    return;
  }
  // Symbols are the piece's code points (each a byte stand-in); "</w>" marks the end of the word.
  std::vector<std::string> word;
  for (char32_t c : unicode::utf8_to_u32(piece)) word.push_back(unicode::u32_to_utf8(std::u32string(1, c)));
  if (word.empty()) return;
  word.back() += "</w>";
  while (word.size() > 1) {
    int best = INT_MAX;
    size_t best_i = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = merge_ranks_.find(word[i] + " " + word[i + 1]);
      if (it != merge_ranks_.end() && it->second < best) best = it->second, best_i = i;
    }
    if (best == INT_MAX) break;
    const std::string first = word[best_i], second = word[best_i + 1];
    // Merge every non-overlapping occurrence, left to right.
    std::vector<std::string> merged;
    merged.reserve(word.size());
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        merged.push_back(first + second);
        i += 2;
      } else {
        merged.push_back(word[i]);
        ++i;
      }
    }
    word = std::move(merged);
  }
  for (auto& w : word) out.push_back(std::move(w));
}

void CLIPTokenizer::tokenize_segment(std::string_view segment, std::vector<std::string>& out) const {
  std::u32string text = basic_clean(segment);
  for (const auto& piece : clip_regex_split(text)) {
    std::string utf8 = unicode::u32_to_utf8(piece);
    std::string encoded;
    for (unsigned char b : utf8) encoded += byte_encoder_[b];
    bpe(encoded, out);
  }
}

std::vector<std::string> CLIPTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> out;
  // Added tokens are split out of the raw text first (earliest position, longest token).
  size_t seg_start = 0, i = 0;
  while (i < text.size()) {
    const std::string* hit = nullptr;
    for (const auto& [content, id] : added_) {
      if (text.compare(i, content.size(), content) == 0) {
        hit = &content;
        break;
      }
    }
    if (!hit) {
      ++i;
      continue;
    }
    if (i > seg_start) tokenize_segment(text.substr(seg_start, i - seg_start), out);
    out.push_back(*hit);
    i += hit->size();
    seg_start = i;
  }
  if (seg_start < text.size()) tokenize_segment(text.substr(seg_start), out);
  return out;
}

std::vector<int64_t> CLIPTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids{bos_id_};
  for (const auto& tok : tokenize(text)) ids.push_back(token_to_id(tok));
  ids.push_back(eos_id_);
  return ids;
}

CLIPTokens CLIPTokenizer::encode_padded(std::string_view text, int64_t max_length) const {
  if (max_length <= 0) max_length = model_max_length_;
  if (max_length < 2) throw UsageError("CLIPTokenizer: max_length must be at least 2 (got " + std::to_string(max_length) + ")");
  std::vector<int64_t> ids = encode(text);
  CLIPTokens r;
  // Truncate the content so that BOS + content + EOS fits: EOS ends up at index max_length-1.
  if (static_cast<int64_t>(ids.size()) > max_length) {
    r.truncated = true;
    ids.resize(max_length - 1);
    ids.push_back(eos_id_);
  }
  r.attention_mask.assign(ids.size(), 1);
  r.input_ids = std::move(ids);
  r.input_ids.resize(max_length, pad_id_);
  r.attention_mask.resize(max_length, 0);
  return r;
}

CLIPTokenBatch CLIPTokenizer::encode_batch(const std::vector<std::string>& texts, int64_t max_length) const {
  if (max_length <= 0) max_length = model_max_length_;
  const auto n = static_cast<int64_t>(texts.size());
  CLIPTokenBatch b;
  b.input_ids = torch::empty({n, max_length}, torch::kInt64);
  b.attention_mask = torch::empty({n, max_length}, torch::kInt64);
  auto ids = b.input_ids.accessor<int64_t, 2>();
  auto mask = b.attention_mask.accessor<int64_t, 2>();
  for (int64_t i = 0; i < n; ++i) {
    CLIPTokens t = encode_padded(texts[i], max_length);
    for (int64_t j = 0; j < max_length; ++j) {
      ids[i][j] = t.input_ids[j];
      mask[i][j] = t.attention_mask[j];
    }
    b.truncated.push_back(t.truncated);
  }
  return b;
}

}  // namespace clipgen
