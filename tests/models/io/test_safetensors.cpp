// The safetensors reader: the fixtures' files (F32/I64/U8/F16), save/load round trip, zero-copy views,
// dtype conversion, and hostile/malformed files generated here — each must give its clear error naming
// the file (and the tensor where one is involved), never a crash. Also run under ASan (docs/weights.md).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/fs.h"
#include "models/io/safetensors.h"
#include "tests/test_util.h"

using namespace clipgen;
using io::SafetensorsFile;

namespace {

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file image with the given header JSON text and `data_bytes` bytes of data.
std::string image(const std::string& header, size_t data_bytes) {
  return le64(header.size()) + header + std::string(data_bytes, '\x01');
}

void expect_load_error(const std::string& bytes, const std::vector<std::string>& substrings,
                       const std::string& name = "bad.safetensors") {
  auto dir = test::scratch_dir("safetensors_malformed");
  auto path = dir / name;
  {
    std::ofstream o(path, std::ios::binary);
    o.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  try {
    auto f = SafetensorsFile::open(path);
    ADD_FAILURE() << "opened without error";
  } catch (const ModelLoadError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(path.string()), std::string::npos) << what;
    for (const auto& s : substrings) EXPECT_NE(what.find(s), std::string::npos) << what << "\n  lacks: " << s;
  }
}

}  // namespace

TEST(Safetensors, ReadsTheFixtureFiles) {
  // unet2d/sd15: F32 weights; rng outputs; a fixture with I64 token ids; single_file F16.
  auto w = SafetensorsFile::open(test::fixture_dir("unet2d/sd15/diffusion_pytorch_model.safetensors"));
  const auto* ci = w->find("conv_in.weight");
  ASSERT_NE(ci, nullptr);
  EXPECT_EQ(ci->dtype, "F32");
  EXPECT_EQ(ci->shape, (std::vector<int64_t>{32, 4, 3, 3}));
  auto v = w->view("conv_in.weight");
  EXPECT_EQ(v.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::isfinite(v).all().item<bool>());

  auto tok = SafetensorsFile::open(test::fixture_dir("clip_tokenizer/outputs.safetensors"));
  bool saw_i64 = false;
  for (const auto& t : tok->tensors()) saw_i64 = saw_i64 || t.dtype == "I64";
  EXPECT_TRUE(saw_i64);

  auto sf = SafetensorsFile::open(test::fixture_dir("single_file/sd15/model.safetensors"));
  EXPECT_EQ(sf->tensors().size(), 532u);
  EXPECT_EQ(sf->metadata().at("format"), "pt");
  EXPECT_EQ(sf->view("first_stage_model.decoder.conv_in.weight").scalar_type(), torch::kHalf);
  // float16 → float32 is exact, on load.
  auto h = sf->view("first_stage_model.decoder.conv_in.weight");
  auto f = sf->load("first_stage_model.decoder.conv_in.weight", torch::kFloat);
  EXPECT_EQ(f.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(f.to(torch::kHalf), h));
}

TEST(Safetensors, ReadsU8) {
  // U8 appears in the pipeline fixtures (images); find one file that has it.
  bool found = false;
  for (const auto& e : std::filesystem::recursive_directory_iterator(test::fixture_dir("pipelines"))) {
    if (e.path().extension() != ".safetensors") continue;
    auto f = SafetensorsFile::open(e.path());
    for (const auto& t : f->tensors())
      if (t.dtype == "U8") {
        auto v = f->view(t.name);
        EXPECT_EQ(v.scalar_type(), torch::kByte);
        EXPECT_EQ(v.numel(), t.numel());
        found = true;
      }
    if (found) break;
  }
  EXPECT_TRUE(found);
}

TEST(Safetensors, RoundTripAllDtypesAndZeroCopy) {
  auto dir = test::scratch_dir("safetensors_roundtrip");
  io::TensorMap t;
  t["a.f32"] = torch::randn({3, 5});
  t["b.f16"] = torch::randn({7}).to(torch::kHalf);
  t["c.bf16"] = torch::randn({2, 2}).to(torch::kBFloat16);
  t["d.i64"] = torch::arange(77, torch::kLong).view({1, 77});
  t["e.u8"] = torch::randint(0, 255, {4, 3}, torch::kByte);
  t["f.scalar"] = torch::scalar_tensor(2.5, torch::kFloat);
  t["g.empty"] = torch::zeros({0, 4});
  t["h.noncontig"] = torch::randn({4, 6}).t();
  io::save_safetensors(dir / "x.safetensors", t, {{"format", "pt"}});
  auto f = SafetensorsFile::open(dir / "x.safetensors");
  EXPECT_EQ(f->metadata().at("format"), "pt");
  for (const auto& [k, v] : t) {
    auto got = f->load(k);
    EXPECT_EQ(got.scalar_type(), v.scalar_type()) << k;
    EXPECT_EQ(got.sizes(), v.sizes()) << k;
    EXPECT_TRUE(torch::equal(got, v.contiguous())) << k;
  }
  // Views alias the mapping; writes to them never reach the file (private mapping).
  auto v1 = f->view("a.f32");
  auto v2 = f->view("a.f32");
  EXPECT_EQ(v1.data_ptr(), v2.data_ptr());
  v1.fill_(0);
  EXPECT_TRUE(torch::equal(SafetensorsFile::open(dir / "x.safetensors")->view("a.f32"), t["a.f32"]));
  // Same dtype on CPU → the view itself; conversion → a fresh tensor.
  EXPECT_EQ(f->load("b.f16", torch::kHalf).data_ptr(), f->view("b.f16").data_ptr());
  EXPECT_TRUE(torch::equal(f->load("b.f16", torch::kFloat), t["b.f16"].to(torch::kFloat)));
  // load_all converts floating tensors only.
  auto all = f->load_all(torch::kFloat);
  EXPECT_EQ(all.at("d.i64").scalar_type(), torch::kLong);
  EXPECT_EQ(all.at("c.bf16").scalar_type(), torch::kFloat);
  // The tensors keep the file mapped after the SafetensorsFile handle is gone.
  auto keep = SafetensorsFile::open(dir / "x.safetensors")->view("d.i64");
  EXPECT_EQ(keep[0][76].item<int64_t>(), 76);
}

TEST(SafetensorsMalformed, Truncated) {
  expect_load_error(std::string("\x10\x00\x00", 3), {"truncated file"});
  // A valid file cut in the data section.
  io::TensorMap t{{"w", torch::ones({64})}};
  auto dir = test::scratch_dir("safetensors_truncated_src");
  io::save_safetensors(dir / "ok.safetensors", t);
  auto bytes = read_file(dir / "ok.safetensors");
  expect_load_error(bytes.substr(0, bytes.size() - 10), {"tensor 'w'", "run past the end of the data section", "truncated"});
}

TEST(SafetensorsMalformed, HeaderLengthPastEof) {
  expect_load_error(le64(1000) + "{}", {"header length 1000 runs past the end of the file"});
  expect_load_error(le64(~0ull) + "{}", {"runs past the end of the file"});
}

TEST(SafetensorsMalformed, HeaderOverTheCap) {
  std::string h = "{" + std::string(64, ' ') + "}";
  auto dir = test::scratch_dir("safetensors_cap");
  auto p = dir / "cap.safetensors";
  std::ofstream(p, std::ios::binary) << image(h, 0);
  io::SafetensorsLimits lim;
  lim.max_header_bytes = 16;
  try {
    SafetensorsFile::open(p, lim);
    ADD_FAILURE();
  } catch (const ModelLoadError& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds the limit"), std::string::npos) << e.what();
  }
}

TEST(SafetensorsMalformed, OverlappingOffsets) {
  expect_load_error(image(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", 24),
                    {"tensor 'b'", "overlaps tensor 'a'"});
}

TEST(SafetensorsMalformed, WrongByteCount) {
  expect_load_error(image(R"({"w":{"dtype":"F16","shape":[3,4],"data_offsets":[0,20]}})", 24),
                    {"tensor 'w'", "byte length 20 does not match dtype F16", "(24 bytes)"});
  // dtype × shape overflowing 64 bits is caught, not wrapped around.
  expect_load_error(image(R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})", 0),
                    {"tensor 'w'", "more elements than a tensor can hold"});
  expect_load_error(image(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})", 0),
                    {"tensor 'w'", "more elements"});
}

TEST(SafetensorsMalformed, UnknownDtype) {
  expect_load_error(image(R"({"w":{"dtype":"F8_E9","shape":[1],"data_offsets":[0,1]}})", 1),
                    {"tensor 'w'", "unknown dtype 'F8_E9'"});
}

TEST(SafetensorsMalformed, BadJson) {
  expect_load_error(image(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})", 4), {"header is not valid JSON"});
  expect_load_error(image("not json at all", 4), {"does not start with a JSON object"});
  expect_load_error(image(R"({"w":[1,2]})", 0), {"tensor 'w'", "header entry is not an object"});
  expect_load_error(image(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4), {"tensor 'w'", "non-negative"});
  expect_load_error(image(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4), {"tensor 'w'", "data_offsets"});
  expect_load_error(image(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4), {"tensor 'w'", "shape"});
  expect_load_error(image(R"({"__metadata__":{"a":1}})", 0), {"__metadata__", "not a string"});
  expect_load_error(image(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4),
                    {"tensor 'w'", "duplicate key"});
}

TEST(SafetensorsMalformed, TooDeepJson) {
  std::string deep = "{\"w\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  expect_load_error(image(deep, 0), {"nests deeper than"});
}

TEST(SafetensorsMalformed, OffsetsPastData) {
  expect_load_error(image(R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[100,104]}})", 8),
                    {"tensor 'w'", "data_offsets [100, 104) run past the end of the data section (8 bytes)"});
  expect_load_error(image(R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[8,4]}})", 8), {"tensor 'w'", "begin 8 > end 4"});
}

TEST(SafetensorsMalformed, PickleFilesAreRefusedWithConversionAdvice) {
  for (const char* name : {"model.bin", "model.ckpt", "model.pt"})
    expect_load_error(std::string("\x80\x02}q\x00.", 6), {"pickle", "never unpickles", "save_file"}, name);
  // Pickle or torch zip content under a .safetensors name is recognised too.
  expect_load_error(std::string("\x80\x04\x95\x00\x00\x00\x00\x00", 8), {"Python pickle", "save_file"});
  expect_load_error(std::string("PK\x03\x04\x00\x00\x00\x00\x00\x00", 10), {"zip checkpoint", "save_file"});
}

TEST(SafetensorsMalformed, EmptyAndNotAFile) {
  expect_load_error("", {"truncated file: 0 bytes"});
  auto dir = test::scratch_dir("safetensors_dir");
  try {
    SafetensorsFile::open(dir);
    ADD_FAILURE();
  } catch (const ModelLoadError& e) {
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos);
  }
}

TEST(Safetensors, UnalignedDataIsCopiedNotMisread) {
  // Header of odd length and an F32 tensor at offset 1: legal, unaligned.
  std::string h = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  float vals[2] = {1.5f, -2.0f};
  std::string bytes = le64(h.size()) + h + std::string(1, '\x07') + std::string(reinterpret_cast<char*>(vals), 8);
  auto f = SafetensorsFile::from_bytes(bytes, "mem.safetensors");
  auto b = f->view("b");
  EXPECT_FLOAT_EQ(b[0].item<float>(), 1.5f);
  EXPECT_FLOAT_EQ(b[1].item<float>(), -2.0f);
  EXPECT_EQ(f->view("a")[0].item<uint8_t>(), 7);
}

TEST(Safetensors, HeaderLengthStartingLikeAPickleIsNotMistakenForOne) {
  // Header length 640 = bytes 80 02 00 ..., the same first bytes as a protocol-2 pickle.
  std::string h = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  h += std::string(640 - h.size(), ' ');
  float one = 1.0f;
  auto f = SafetensorsFile::from_bytes(le64(640) + h + std::string(reinterpret_cast<char*>(&one), 4), "x.safetensors");
  EXPECT_FLOAT_EQ(f->view("w")[0].item<float>(), 1.0f);
}
