// CLIPTokenizer: the byte-level BPE tokenizer of CLIP text encoders, reading a diffusers `tokenizer/`
// folder (vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json).
//
// Behaviour is that of transformers 4.37.2's slow CLIPTokenizer without ftfy (what diffusers uses when
// the Rust `tokenizers` and `ftfy` are absent; the reference fixtures were made this way):
//   1. added/special tokens are split out of the raw text first (<|startoftext|>, <|endoftext|>, and the
//      pad token "!" of SD2.x / SDXL tokenizer_2, so a literal "!" becomes id 0 there);
//   2. each remaining segment gets BERT's BasicTokenizer cleanup: NUL, U+FFFD and every category-C code
//      point (control, format such as U+200B, unassigned, private use) removed, whitespace → " ", spaces
//      around CJK ideographs, NFC, lower-casing (Python str.lower), accents kept, whitespace split;
//   3. the CLIP regex `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
//      (case-insensitive) splits the text; each piece is byte-encoded (GPT-2 byte→unicode table) and BPE'd
//      with "</w>" on its last symbol;
//   4. BOS + ids + EOS; with truncation, ids are cut so that EOS stays at index max_length-1; padding to
//      max_length with the pad id (49407 for SD1.x, 0 for SD2.x/SDXL tokenizer_2) and attention mask 0.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <ATen/core/Tensor.h>

namespace clipgen {

// tokenizer(text, padding="max_length", max_length=N, truncation=True) for one prompt.
struct CLIPTokens {
  std::vector<int64_t> input_ids;       // exactly max_length entries
  std::vector<int64_t> attention_mask;  // 1 for BOS..EOS, 0 for padding
  bool truncated = false;               // the prompt had more than max_length-2 tokens
};

// The same for a batch, as LibTorch tensors.
struct CLIPTokenBatch {
  at::Tensor input_ids;       // int64 [N, max_length]
  at::Tensor attention_mask;  // int64 [N, max_length]
  std::vector<bool> truncated;
};

class CLIPTokenizer {
public:
  // Reads a tokenizer folder. Throws ModelLoadError naming the file on missing/malformed files.
  static CLIPTokenizer from_folder(const std::filesystem::path& dir);

  // BPE token strings without BOS/EOS (transformers `tokenizer.tokenize(text)`).
  std::vector<std::string> tokenize(std::string_view text_utf8) const;
  // BOS + ids + EOS, no truncation, no padding (`tokenizer(text).input_ids`).
  std::vector<int64_t> encode(std::string_view text_utf8) const;
  // `tokenizer(text, padding="max_length", max_length=max_length, truncation=True)`; max_length 0 = model_max_length().
  CLIPTokens encode_padded(std::string_view text_utf8, int64_t max_length = 0) const;
  CLIPTokenBatch encode_batch(const std::vector<std::string>& texts, int64_t max_length = 0) const;

  int64_t token_to_id(const std::string& token) const;  // added tokens first, then vocab, else unk id
  std::string id_to_token(int64_t id) const;             // throws Error for an unknown id

  int64_t bos_id() const { return bos_id_; }
  int64_t eos_id() const { return eos_id_; }
  int64_t pad_id() const { return pad_id_; }
  int64_t unk_id() const { return unk_id_; }
  int64_t model_max_length() const { return model_max_length_; }
  size_t vocab_size() const { return vocab_.size(); }

private:
  CLIPTokenizer() = default;
  void tokenize_segment(std::string_view segment, std::vector<std::string>& out) const;
  void bpe(const std::string& piece, std::vector<std::string>& out) const;

  std::unordered_map<std::string, int64_t> vocab_;
  std::unordered_map<int64_t, std::string> decoder_;
  std::unordered_map<std::string, int> merge_ranks_;  // "a b" → rank
  std::vector<std::pair<std::string, int64_t>> added_;  // added tokens (content, id), split out first
  std::string byte_encoder_[256];                       // byte → UTF-8 of its printable stand-in
  std::string bos_, eos_, pad_, unk_;
  int64_t bos_id_ = 0, eos_id_ = 0, pad_id_ = 0, unk_id_ = 0, model_max_length_ = 77;
};

}  // namespace clipgen
