// CLIPTokenizer reproduces transformers 4.37.2's slow CLIPTokenizer (no ftfy) on every fixture prompt,
// for both padding conventions (fixtures/clip_tokenizer), and the Unicode helpers match Python 3.11.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "models/io/safetensors.h"
#include "models/tokenizer/clip_tokenizer.h"
#include "models/tokenizer/unicode.h"
#include "tests/test_util.h"

using namespace clipgen;
using json = nlohmann::json;

namespace {

json load_prompts() {
  std::ifstream f(test::fixture_dir("clip_tokenizer") / "prompts.json");
  return json::parse(f);
}

const CLIPTokenizer& tok(const std::string& which) {
  static CLIPTokenizer sd1 = CLIPTokenizer::from_folder(test::fixture_dir("clip_tokenizer/tokenizer_sd1"));
  static CLIPTokenizer sd2 = CLIPTokenizer::from_folder(test::fixture_dir("clip_tokenizer/tokenizer_sd2"));
  return which == "sd1" ? sd1 : sd2;
}

std::u32string U(std::initializer_list<char32_t> cps) { return std::u32string(cps); }

}  // namespace

TEST(CLIPTokenizer, SpecialIds) {
  EXPECT_EQ(tok("sd1").bos_id(), 49406);
  EXPECT_EQ(tok("sd1").eos_id(), 49407);
  EXPECT_EQ(tok("sd1").pad_id(), 49407);
  EXPECT_EQ(tok("sd2").pad_id(), 0);
  EXPECT_EQ(tok("sd2").eos_id(), 49407);
  EXPECT_EQ(tok("sd1").model_max_length(), 77);
  EXPECT_EQ(tok("sd1").vocab_size(), 49408u);
}

TEST(CLIPTokenizer, ReadmeExamples) {
  EXPECT_EQ(tok("sd1").encode("a photo of a cat"), (std::vector<int64_t>{49406, 320, 1125, 539, 320, 2368, 49407}));
  EXPECT_EQ(tok("sd1").encode("wow! amazing!"), (std::vector<int64_t>{49406, 2781, 256, 1370, 256, 49407}));
  EXPECT_EQ(tok("sd2").encode("wow! amazing!"), (std::vector<int64_t>{49406, 2781, 0, 1370, 0, 49407}));
}

// Every prompt of prompts.json, both tokenizers: unpadded ids, padded ids, masks and BPE strings.
TEST(CLIPTokenizer, AllFixturePromptsExact) {
  json prompts = load_prompts()["prompts"];
  ASSERT_EQ(prompts.size(), 40u);
  for (const auto& p : prompts) {
    const std::string text = p["prompt"].get<std::string>();
    SCOPED_TRACE("prompt " + std::to_string(p["index"].get<int>()) + ": " + text);
    for (std::string v : {"sd1", "sd2"}) {
      const auto& t = tok(v);
      EXPECT_EQ(t.encode(text), p["ids_unpadded_" + v].get<std::vector<int64_t>>()) << v;
      CLIPTokens padded = t.encode_padded(text, 77);
      EXPECT_EQ(padded.input_ids, p["input_ids_" + v].get<std::vector<int64_t>>()) << v;
      EXPECT_EQ(padded.attention_mask, p["attention_mask_" + v].get<std::vector<int64_t>>()) << v;
      EXPECT_EQ(padded.truncated, p["truncated"].get<bool>()) << v;
    }
    // `tokens` = convert_ids_to_tokens(ids_unpadded_sd1): BOS, the BPE strings, EOS.
    std::vector<std::string> expect = p["tokens"].get<std::vector<std::string>>();
    std::vector<std::string> got{"<|startoftext|>"};
    for (auto& s : tok("sd1").tokenize(text)) got.push_back(s);
    got.push_back("<|endoftext|>");
    EXPECT_EQ(got, expect);
  }
}

TEST(CLIPTokenizer, BatchMatchesOutputsSafetensors) {
  json prompts = load_prompts()["prompts"];
  std::vector<std::string> texts;
  for (const auto& p : prompts) texts.push_back(p["prompt"].get<std::string>());
  auto ref = io::load_safetensors(test::fixture_dir("clip_tokenizer") / "outputs.safetensors");
  for (std::string v : {"sd1", "sd2"}) {
    CLIPTokenBatch b = tok(v).encode_batch(texts, 77);
    EXPECT_TRUE(torch::equal(b.input_ids, ref.at("input_ids_" + v))) << v;
    EXPECT_TRUE(torch::equal(b.attention_mask, ref.at("attention_mask_" + v))) << v;
  }
}

TEST(CLIPTokenizer, TruncationKeepsEosLast) {
  std::string longp;
  for (int i = 0; i < 100; ++i) longp += "cat ";
  CLIPTokens t = tok("sd2").encode_padded(longp, 77);
  ASSERT_EQ(t.input_ids.size(), 77u);
  EXPECT_TRUE(t.truncated);
  EXPECT_EQ(t.input_ids[0], 49406);
  EXPECT_EQ(t.input_ids[76], 49407);
  EXPECT_EQ(t.input_ids[75], tok("sd2").token_to_id("cat</w>"));
  EXPECT_EQ(std::count(t.attention_mask.begin(), t.attention_mask.end(), 1), 77);
  EXPECT_EQ(tok("sd2").encode(longp).size(), 102u);
}

TEST(CLIPTokenizer, MissingFilesAreModelLoadErrors) {
  auto dir = test::scratch_dir("clip_tokenizer_missing");
  EXPECT_THROW(CLIPTokenizer::from_folder(dir), ModelLoadError);
}

// Expected values are Python 3.11's unicodedata.normalize("NFC", ·) and str.lower().
TEST(Unicode, NfcMatchesPython) {
  EXPECT_EQ(unicode::nfc(U({0x65, 0x301})), U({0xE9}));
  EXPECT_EQ(unicode::nfc(U({0x1100, 0x1161, 0x11A8})), U({0xAC01}));
  EXPECT_EQ(unicode::nfc(U({0x61, 0x328, 0x301})), U({0x105, 0x301}));
  EXPECT_EQ(unicode::nfc(U({0x41, 0x30A, 0x323})), U({0x1EA0, 0x30A}));
  EXPECT_EQ(unicode::nfc(U({0xF900})), U({0x8C48}));
  EXPECT_EQ(unicode::nfc(U({0x212B})), U({0xC5}));
  EXPECT_EQ(unicode::nfc(U({0x958})), U({0x915, 0x93C}));
  EXPECT_EQ(unicode::nfc(U({0x344})), U({0x308, 0x301}));
  EXPECT_EQ(unicode::nfc(U({0x1D15E})), U({0x1D157, 0x1D165}));
}

TEST(Unicode, LowerMatchesPython) {
  EXPECT_EQ(unicode::lower(U({0x39F, 0x394, 0x39F, 0x3A3})), U({0x3BF, 0x3B4, 0x3BF, 0x3C2}));
  EXPECT_EQ(unicode::lower(U({0x3A3})), U({0x3C3}));
  EXPECT_EQ(unicode::lower(U({'A', 0x3A3, '.'})), U({'a', 0x3C2, '.'}));
  EXPECT_EQ(unicode::lower(U({'A', 0x3A3, 'b'})), U({'a', 0x3C3, 'b'}));
  EXPECT_EQ(unicode::lower(U({0x130})), U({'i', 0x307}));
  EXPECT_EQ(unicode::lower(U({0x1C5})), U({0x1C6}));
  EXPECT_EQ(unicode::lower(U({0x391, 0x3A3, '\'', 0x391})), U({0x3B1, 0x3C3, '\'', 0x3B1}));
}

TEST(Unicode, Utf8RoundTripAndMalformedInput) {
  std::string s = "caf\xC3\xA9 \xF0\x9F\x90\xB1";
  EXPECT_EQ(unicode::u32_to_utf8(unicode::utf8_to_u32(s)), s);
  EXPECT_EQ(unicode::utf8_to_u32("a\xFF" "b"), U({'a', 0xFFFD, 'b'}));
  EXPECT_EQ(unicode::utf8_to_u32("\xC0\xAF"), U({0xFFFD, 0xFFFD}));  // overlong
  EXPECT_EQ(unicode::utf8_to_u32("\xED\xA0\x80"), U({0xFFFD, 0xFFFD, 0xFFFD}));  // surrogate
}
