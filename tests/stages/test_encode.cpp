// stages::Encoder against the real ffprobe/ffmpeg: for each delivery preset, a short synthetic clip is
// encoded and its codec, profile, pixel format, raster, frame rate, frame count, duration, colour tags,
// faststart layout, audio stream and metadata are read back with ffprobe; a flat colour patch is
// decoded with an explicit BT.709 matrix and must round-trip within 3/255.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>

#include "configs/preset.h"
#include "core/error.h"
#include "core/fs.h"
#include "tests/stages/media_test_util.h"
#include "stages/encode.h"
#include "tests/test_util.h"

extern "C" {
#include <libavutil/log.h>
}

namespace fs = std::filesystem;
using namespace clipgen;
using clipgen::test::ffprobe;
using clipgen::test::run_command;
using nlohmann::json;

namespace {

struct Case {
  configs::Preset preset;
  int frames;
  bool audio;
  std::string codec_name, profile;  // as ffprobe names them
};

// ffprobe's codec and profile names for a preset's encoder settings.
std::string probe_codec(const std::string& encoder) {
  if (encoder == "libx264") return "h264";
  if (encoder == "libx265") return "hevc";
  if (encoder == "prores_ks") return "prores";
  if (encoder == "libvpx-vp9") return "vp9";
  if (encoder == "libsvtav1") return "av1";
  return "?" + encoder;
}
std::string probe_profile(const std::string& encoder, const std::string& profile) {
  static const std::map<std::string, std::string> names = {
      {"libx264/high", "High"},     {"libx264/main", "Main"},         {"libx264/baseline", "Constrained Baseline"},
      {"libx264/high10", "High 10"}, {"libx264/high422", "High 4:2:2"}, {"libx265/main", "Main"},
      {"libx265/main10", "Main 10"}, {"prores_ks/hq", "HQ"},           {"prores_ks/standard", "Standard"},
      {"prores_ks/lt", "LT"},       {"prores_ks/proxy", "Proxy"},     {"prores_ks/4444", "4444"},
      {"prores_ks/4444xq", "4444XQ"}, {"libvpx-vp9/0", "Profile 0"},   {"libsvtav1/main", "Main"}};
  auto it = names.find(encoder + "/" + profile);
  return it == names.end() ? "?" + encoder + "/" + profile : it->second;
}

Case case_for(const configs::Preset& p) {
  // Few frames: these tests check settings, not quality; the big rasters and ProRes get 4.
  const bool heavy = static_cast<int64_t>(p.width) * p.height > 4'000'000 || p.video.codec == "prores_ks";
  return {p, heavy ? 4 : 10, p.audio.enabled, probe_codec(p.video.codec), probe_profile(p.video.codec, p.video.profile)};
}

std::string registry_error;

// Every shipped preset (configs/presets/*.yaml, through the real loader), plus presets built in code
// for the codecs no shipped preset uses yet (HEVC/mkv, VP9+Opus/webm, AV1 in mp4 and mkv).
std::vector<Case> cases() {
  using namespace clipgen::test;
  std::vector<Case> out;
  try {
    auto reg = configs::PresetRegistry::load();
    for (const auto& name : reg.names()) out.push_back(case_for(reg.get(name)));
  } catch (const std::exception& e) {
    registry_error = e.what();
  }
  for (auto p : {preset_hevc_mkv(), preset_vp9_webm(), preset_av1("mp4"), preset_av1("mkv")}) {
    p.name = "extra-" + p.name;
    out.push_back(case_for(p));
  }
  return out;
}

std::string case_name(const testing::TestParamInfo<Case>& info) {
  std::string n = info.param.preset.name;
  for (auto& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

// A 1 s 440 Hz mono 44.1 kHz WAV: resampling, up-mixing and trimming are all exercised.
fs::path make_audio_bed(const fs::path& dir) {
  auto wav = dir / "bed.wav";
  if (!fs::exists(wav))
    run_command("ffmpeg -v error -y -f lavfi -i sine=frequency=440:sample_rate=44100:duration=1 -ac 1 " +
                clipgen::test::quote(wav));
  return wav;
}

// Top-level box types of an ISO-BMFF (mp4/mov) file, in order.
std::vector<std::string> top_level_boxes(const fs::path& file) {
  std::ifstream f(file, std::ios::binary);
  std::vector<std::string> types;
  const auto end = fs::file_size(file);
  uint64_t pos = 0;
  while (pos + 8 <= end) {
    f.seekg(static_cast<std::streamoff>(pos));
    unsigned char h[16];
    f.read(reinterpret_cast<char*>(h), 8);
    uint64_t size = (uint64_t{h[0]} << 24) | (h[1] << 16) | (h[2] << 8) | h[3];
    types.emplace_back(reinterpret_cast<char*>(h + 4), 4);
    if (size == 1) {
      f.read(reinterpret_cast<char*>(h + 8), 8);
      size = 0;
      for (int i = 8; i < 16; ++i) size = (size << 8) | h[i];
    } else if (size == 0) {
      size = end - pos;
    }
    if (size < 8) break;
    pos += size;
  }
  return types;
}

// The time a stream spans. mp4/mov: its duration. Matroska/WebM: the DURATION tag is the end time,
// and with Opus audio the muxer shifts every stream by the Opus pre-skip (~7 ms) so that no
// timestamp is negative: subtract the start time.
double duration_of(const json& stream) {
  if (stream.contains("duration")) return std::stod(stream["duration"].get<std::string>());
  const double start = stream.contains("start_time") ? std::stod(stream["start_time"].get<std::string>()) : 0.0;
  const json tags = stream.value("tags", json::object());
  for (const auto& [k, v] : tags.items()) {
    if (k == "DURATION" || k == "duration") {
      int hh, mm;
      double ss;
      if (std::sscanf(v.get<std::string>().c_str(), "%d:%d:%lf", &hh, &mm, &ss) == 3)
        return hh * 3600 + mm * 60 + ss - start;
    }
  }
  return -1;
}

std::string tag(const json& probe, const std::string& key) {
  const json tags = probe["format"].value("tags", json::object());
  for (const auto& [k, v] : tags.items()) {
    std::string lk = k;
    for (auto& c : lk) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lk == key) return v.get<std::string>();
  }
  return "<missing>";
}

stages::EncodeMetadata metadata_for(const std::string& shot_id) {
  return {"0.1.0-test", shot_id, 1234567890123ULL,
          R"({"id":")" + shot_id + R"(","seed":1234567890123,"prompt":"a \"quoted\" prompt, ünïcode"})"};
}

// libav's per-encode statistics (x264 summaries etc.) would bury the test output.
const int quiet_libav = [] {
  av_log_set_level(AV_LOG_ERROR);
  return 0;
}();

class EncodePreset : public testing::TestWithParam<Case> {};

TEST_P(EncodePreset, FfprobeSeesThePresetSettings) {
  const Case& c = GetParam();
  const auto& p = c.preset;
  auto dir = clipgen::test::scratch_dir("encode_" + case_name({c, 0}));
  auto out = dir / ("clip." + p.container);
  std::optional<fs::path> bed;
  if (c.audio) bed = make_audio_bed(dir);
  SCOPED_TRACE(p.name + " " + std::to_string(p.width) + "x" + std::to_string(p.height) + " " + p.video.codec);
  {
    stages::Encoder enc(p, out, metadata_for("shot-" + p.name), bed);
    for (int i = 0; i < c.frames; ++i) enc.write(clipgen::test::synthetic_frame(p.width, p.height, i));
    EXPECT_FALSE(fs::exists(out)) << "the final name must not exist before finish()";
    EXPECT_TRUE(fs::exists(enc.temp_path()));
    EXPECT_EQ(enc.finish(), out);
    EXPECT_FALSE(fs::exists(enc.temp_path()));
  }
  ASSERT_TRUE(fs::exists(out));

  const json probe = ffprobe(out);
  const json* v = clipgen::test::stream_of(probe, "video");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ((*v)["codec_name"], c.codec_name);
  EXPECT_EQ((*v)["profile"], c.profile);
  EXPECT_EQ((*v)["pix_fmt"], p.video.pix_fmt);
  EXPECT_EQ((*v)["width"], p.width);
  EXPECT_EQ((*v)["height"], p.height);
  const std::string rate = std::to_string(p.fps.num) + "/" + std::to_string(p.fps.den);
  EXPECT_EQ((*v)["r_frame_rate"], rate);
  EXPECT_EQ((*v)["avg_frame_rate"], rate);
  EXPECT_EQ((*v)["nb_read_frames"], std::to_string(c.frames));
  EXPECT_EQ((*v)["color_space"], "bt709");
  EXPECT_EQ((*v)["color_transfer"], "bt709");
  EXPECT_EQ((*v)["color_primaries"], "bt709");
  EXPECT_EQ((*v)["color_range"], "tv");
  if (c.codec_name == "hevc" && (p.container == "mp4" || p.container == "mov")) EXPECT_EQ((*v)["codec_tag_string"], "hvc1");
  const double expected = static_cast<double>(c.frames) * p.fps.den / p.fps.num;
  // mp4/mov keep the exact CFR timestamps; Matroska/WebM store milliseconds.
  const double tol = (p.container == "mp4" || p.container == "mov") ? 1e-4 : 1.5e-3;
  EXPECT_NEAR(duration_of(*v), expected, tol) << "video stream duration";

  if (p.container == "mp4" || p.container == "mov") {
    auto boxes = top_level_boxes(out);
    auto moov = std::find(boxes.begin(), boxes.end(), "moov");
    auto mdat = std::find(boxes.begin(), boxes.end(), "mdat");
    ASSERT_NE(moov, boxes.end());
    ASSERT_NE(mdat, boxes.end());
    EXPECT_LT(moov - boxes.begin(), mdat - boxes.begin()) << "faststart: moov must precede mdat";
  }

  const json* a = clipgen::test::stream_of(probe, "audio");
  if (c.audio) {
    ASSERT_NE(a, nullptr) << "audio bed given, no audio stream";
    const std::string acodec = p.audio.codec == "libopus" ? "opus" : p.audio.codec;
    EXPECT_EQ((*a)["codec_name"], acodec);
    EXPECT_EQ((*a)["sample_rate"], std::to_string(p.audio.sample_rate));
    EXPECT_EQ((*a)["channels"], p.audio.channels);
    // Trimmed to the clip: within one audio frame (AAC/Opus frame granularity).
    EXPECT_NEAR(duration_of(*a), expected, 1024.0 / p.audio.sample_rate + 1e-3) << "audio stream duration";
  } else {
    EXPECT_EQ(a, nullptr);
  }

  EXPECT_EQ(tag(probe, "clipgen_version"), "0.1.0-test");
  EXPECT_EQ(tag(probe, "clipgen_shot_id"), "shot-" + p.name);
  EXPECT_EQ(tag(probe, "clipgen_seed"), "1234567890123");
  const std::string shot = tag(probe, "clipgen_shot");
  ASSERT_NE(shot, "<missing>");
  EXPECT_EQ(json::parse(shot), json::parse(metadata_for("shot-" + p.name).shot_json));

  // Colour round trip: the flat patch (top-left quarter), decoded with the BT.709 matrix, tv range.
  for (int index : {0, c.frames - 1}) {
    auto rgb = clipgen::test::decode_rgb(out, index, p.width, p.height, "tv");
    const int x0 = p.width / 4 - 8, y0 = p.height / 4 - 8;
    double sum[3] = {0, 0, 0};
    for (int y = y0; y < y0 + 16; ++y)
      for (int x = x0; x < x0 + 16; ++x)
        for (int ch = 0; ch < 3; ++ch) sum[ch] += rgb[(static_cast<size_t>(y) * p.width + x) * 3 + ch];
    for (int ch = 0; ch < 3; ++ch)
      EXPECT_NEAR(sum[ch] / 256.0, clipgen::test::kPatch[ch], 3.0) << "frame " << index << " channel " << ch;
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, EncodePreset, testing::ValuesIn(cases()), case_name);

TEST(Encoder, EveryShippedPresetIsCovered) {
  EXPECT_EQ(registry_error, "") << "configs::PresetRegistry::load() failed";
  EXPECT_GE(configs::PresetRegistry::load().names().size(), 10u);
}

TEST(Encoder, H264ClosedGopKeyframesAndBFrames) {
  auto p = clipgen::test::preset_vertical_short();
  p.width = 320, p.height = 568;  // small raster, same codec settings
  auto dir = clipgen::test::scratch_dir("encode_gop");
  auto out = dir / "gop.mp4";
  stages::Encoder enc(p, out, metadata_for("gop"));
  for (int i = 0; i < 40; ++i) enc.write(clipgen::test::synthetic_frame(p.width, p.height, i));
  enc.finish();
  auto frames = json::parse(run_command("ffprobe -v error -select_streams v -show_entries frame=key_frame,pict_type,pts "
                                        "-of json " + clipgen::test::quote(out)))["frames"];
  ASSERT_EQ(frames.size(), 40u);
  std::vector<int> keys;
  int b = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    if (frames[i]["key_frame"] == 1) keys.push_back(static_cast<int>(i));
    if (frames[i]["pict_type"] == "B") ++b;
    // CFR: frame i at i/30 s exactly (mp4 time base 1/15360: 512 ticks per frame).
    EXPECT_EQ(frames[i]["pts"].get<int64_t>() - frames[0]["pts"].get<int64_t>(), static_cast<int64_t>(i) * 512);
  }
  EXPECT_EQ(keys, (std::vector<int>{0, 15, 30})) << "IDR every 15 frames (closed GOP of fps/2)";
  EXPECT_GT(b, 0) << "2 B-frames configured, none found";
  // x264 writes its settings into the stream: check the GOP/B-frame settings it received.
  std::ifstream f(out, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), {});
  EXPECT_NE(bytes.find("keyint=15"), std::string::npos);
  EXPECT_NE(bytes.find("bframes=2"), std::string::npos);
  EXPECT_NE(bytes.find("open_gop=0"), std::string::npos);
  EXPECT_NE(bytes.find("crf=18.0"), std::string::npos);
}

TEST(Encoder, AudioBedShorterThanTheClipIsPaddedWithSilence) {
  // PCM in mov: sample-exact, so the padded track must be exactly the clip's 30 / 24 = 1.25 s.
  auto p = clipgen::test::preset_prores();
  p.width = 128, p.height = 72;
  auto dir = clipgen::test::scratch_dir("encode_pad");
  auto out = dir / "pad.mov";
  stages::Encoder enc(p, out, metadata_for("pad"), make_audio_bed(dir));  // 1 s bed
  for (int i = 0; i < 30; ++i) enc.write(clipgen::test::synthetic_frame(p.width, p.height, i));
  enc.finish();
  auto probe = ffprobe(out);
  const json* a = clipgen::test::stream_of(probe, "audio");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ((*a)["codec_name"], "pcm_s24le");
  EXPECT_EQ((*a)["nb_read_frames"].get<std::string>().empty(), false);
  EXPECT_NEAR(duration_of(*a), 1.25, 1e-6);
  // Decoded by ffmpeg: the sine for the first second, digital silence after it.
  auto pcm = run_command("ffmpeg -v error -i " + clipgen::test::quote(out) + " -map 0:a -f s32le -");
  ASSERT_EQ(pcm.size(), 60000u * 2 * 4);
  const int32_t* s = reinterpret_cast<const int32_t*>(pcm.data());
  double loud = 0;
  for (size_t i = 2 * 4800; i < 2 * 43200; ++i) loud = std::max(loud, std::abs(static_cast<double>(s[i])));
  EXPECT_GT(loud / 2147483648.0, 0.05);  // the 440 Hz sine (amplitude 1/8, -3 dB on each channel)
  for (size_t i = 2 * 48200; i < 2 * 60000; ++i) ASSERT_EQ(s[i], 0) << "sample " << i / 2;
}

TEST(Encoder, FullRangeIsConvertedAndTagged) {
  auto p = clipgen::test::preset_hd();
  p.width = 320, p.height = 180, p.video.range = "pc";
  auto dir = clipgen::test::scratch_dir("encode_pc");
  auto out = dir / "pc.mp4";
  stages::Encoder enc(p, out, metadata_for("pc"));
  for (int i = 0; i < 3; ++i) enc.write(clipgen::test::synthetic_frame(p.width, p.height, i));
  enc.finish();
  auto probe = ffprobe(out);
  EXPECT_EQ((*clipgen::test::stream_of(probe, "video"))["color_range"], "pc");
  auto rgb = clipgen::test::decode_rgb(out, 0, p.width, p.height, "pc");
  const auto* px = &rgb[(static_cast<size_t>(p.height / 4) * p.width + p.width / 4) * 3];
  for (int ch = 0; ch < 3; ++ch) EXPECT_NEAR(px[ch], clipgen::test::kPatch[ch], 3.0) << ch;
  // Decoding it as limited range would be visibly wrong: the range really is full.
  auto wrong = clipgen::test::decode_rgb(out, 0, p.width, p.height, "tv");
  const auto* pw = &wrong[(static_cast<size_t>(p.height / 4) * p.width + p.width / 4) * 3];
  EXPECT_GT(std::abs(pw[0] - clipgen::test::kPatch[0]), 10);
}

TEST(Encoder, ExceptionMidEncodeLeavesNoFile) {
  auto p = clipgen::test::preset_vertical_short();
  p.width = 320, p.height = 568;
  auto dir = clipgen::test::scratch_dir("encode_abort");
  auto out = dir / "abort.mp4";
  fs::path temp;
  try {
    stages::Encoder enc(p, out, metadata_for("abort"), make_audio_bed(dir));
    temp = enc.temp_path();
    for (int i = 0; i < 5; ++i) enc.write(clipgen::test::synthetic_frame(p.width, p.height, i));
    EXPECT_TRUE(fs::exists(temp));
    enc.write(clipgen::test::synthetic_frame(p.width + 2, p.height, 5));  // wrong raster: throws
    FAIL() << "write() accepted a frame of the wrong size";
  } catch (const EncodeError& e) {
    EXPECT_NE(std::string(e.what()).find("322x568"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(temp.empty());
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_EQ(temp.parent_path(), out.parent_path()) << "temporary file must be in the output folder";

  // Any exception unwinding past the encoder (e.g. cancellation) removes the partial file too.
  try {
    stages::Encoder enc(p, out, metadata_for("abort"));
    temp = enc.temp_path();
    enc.write(clipgen::test::synthetic_frame(p.width, p.height, 0));
    throw CancelledError();
  } catch (const CancelledError&) {
  }
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_TRUE(fs::is_empty(dir / "") || (fs::exists(dir / "bed.wav") && std::distance(fs::directory_iterator(dir), {}) == 1));
}

TEST(Encoder, BadSettingsAreErrorsNamingTheSetting) {
  auto dir = clipgen::test::scratch_dir("encode_bad");
  auto p = clipgen::test::preset_hd();
  p.width = 64, p.height = 64;
  p.video.options = {{"no-such-option", "1"}};
  try {
    stages::Encoder enc(p, dir / "x.mp4", metadata_for("bad"));
    FAIL();
  } catch (const EncodeError& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-option"), std::string::npos) << e.what();
  }
  p.video.options.clear();
  p.video.profile = "ultra";
  EXPECT_THROW(stages::Encoder(p, dir / "x.mp4", metadata_for("bad")), EncodeError);
  p.video.profile = "high";
  p.container = "avi";
  EXPECT_THROW(stages::Encoder(p, dir / "x.avi", metadata_for("bad")), EncodeError);
  p.container = "mp4";
  try {
    stages::Encoder enc(p, dir / "x.mp4", metadata_for("bad"), dir / "missing.wav");
    FAIL();
  } catch (const EncodeError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.wav"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(dir)) << "failed constructors leave no files";
}

TEST(Encoder, SynchronousModeWritesTheSameStream) {
  // queue_depth 0 (no encoder thread) must give a bit-identical video stream with x264 (deterministic
  // with a fixed thread count).
  auto p = clipgen::test::preset_hd();
  p.width = 320, p.height = 180;
  p.video.options = {{"threads", "1"}};
  auto dir = clipgen::test::scratch_dir("encode_sync");
  for (int depth : {0, 4}) {
    stages::Encoder enc(p, dir / ("d" + std::to_string(depth) + ".mp4"), metadata_for("sync"), std::nullopt,
                        stages::EncoderOptions{depth});
    for (int i = 0; i < 12; ++i) enc.write(clipgen::test::synthetic_frame(p.width, p.height, i));
    enc.finish();
  }
  auto md5 = [&](const std::string& f) {
    return run_command("ffmpeg -v error -i " + clipgen::test::quote(dir / f) + " -map 0:v -c copy -f md5 -");
  };
  EXPECT_EQ(md5("d0.mp4"), md5("d4.mp4"));
}

}  // namespace
