// stages::AudioBedReader: decoding (WAV, FLAC), resampling to the encoder's format, channel
// up-mix, and silence padding after the bed ends. Reference beds are made by the ffmpeg CLI's sine
// source (amplitude 1/8).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "core/error.h"
#include "tests/stages/media_test_util.h"
#include "stages/audio.h"
#include "tests/test_util.h"

extern "C" {
#include <libavutil/channel_layout.h>
}

namespace fs = std::filesystem;
using namespace clipgen;

namespace {

// Reads `total` samples in blocks of `block`, returns channel `ch` as floats (planar float format).
std::vector<float> read_all(stages::AudioBedReader& r, int total, int block, int ch) {
  std::vector<float> out;
  while (static_cast<int>(out.size()) < total) {
    int n = std::min(block, total - static_cast<int>(out.size()));
    auto f = r.read(n);
    EXPECT_EQ(f->nb_samples, n);
    const float* p = reinterpret_cast<const float*>(f->extended_data[ch]);
    out.insert(out.end(), p, p + n);
  }
  return out;
}

int zero_crossings(const std::vector<float>& s, size_t begin, size_t end) {
  int n = 0;
  for (size_t i = begin + 1; i < end; ++i) n += (s[i - 1] < 0) != (s[i] < 0);
  return n;
}

double rms(const std::vector<float>& s, size_t begin, size_t end) {
  double acc = 0;
  for (size_t i = begin; i < end; ++i) acc += double(s[i]) * s[i];
  return std::sqrt(acc / double(end - begin));
}

TEST(AudioBed, ResamplesUpmixesAndPadsWithSilence) {
  auto dir = clipgen::test::scratch_dir("audio_wav");
  auto wav = dir / "sine.wav";
  clipgen::test::run_command("ffmpeg -v error -y -f lavfi -i sine=frequency=1000:sample_rate=44100:duration=0.5 -ac 1 " +
                             clipgen::test::quote(wav));
  AVChannelLayout stereo = AV_CHANNEL_LAYOUT_STEREO;
  stages::AudioBedReader r(wav, AV_SAMPLE_FMT_FLTP, stereo, 48000);
  const int total = 48000;  // 1 s requested from a 0.5 s bed
  auto left = read_all(r, total, 1024, 0);
  auto r2 = stages::AudioBedReader(wav, AV_SAMPLE_FMT_FLTP, stereo, 48000);
  auto right = read_all(r2, total, 1000, 1);
  EXPECT_EQ(r.samples_delivered(), total);
  EXPECT_TRUE(r.bed_ended());
  // 0.5 s at 48 kHz of real audio (the resampler may add/remove a few samples at the edges).
  EXPECT_NEAR(static_cast<double>(r.bed_samples_delivered()), 24000.0, 64.0);
  // 1 kHz: 2 zero crossings per period -> 800 in 0.4 s.
  EXPECT_NEAR(zero_crossings(left, 2400, 21600), 800, 4);
  // Sine of amplitude 1/8 (RMS 0.0884); mono goes to both stereo channels as a centre channel at
  // -3 dB (libswresample's default centre mix level, as the ffmpeg CLI does): RMS 0.0625.
  EXPECT_NEAR(rms(left, 2400, 21600), 0.125 / 2.0, 0.003);
  EXPECT_NEAR(rms(right, 2400, 21600), 0.125 / 2.0, 0.003);
  // Padding is exact digital silence.
  for (size_t i = 24200; i < left.size(); ++i) ASSERT_EQ(left[i], 0.0f) << i;
  for (size_t i = 24200; i < right.size(); ++i) ASSERT_EQ(right[i], 0.0f) << i;
}

TEST(AudioBed, ReadsOtherCodecsAndInterleavedFormats) {
  auto dir = clipgen::test::scratch_dir("audio_flac");
  auto flac = dir / "sine.flac";
  clipgen::test::run_command(
      "ffmpeg -v error -y -f lavfi -i sine=frequency=500:sample_rate=22050:duration=1 -ac 2 -c:a flac " +
      clipgen::test::quote(flac));
  AVChannelLayout stereo = AV_CHANNEL_LAYOUT_STEREO;
  stages::AudioBedReader r(flac, AV_SAMPLE_FMT_S32, stereo, 48000);  // what pcm_s24le takes
  auto f = r.read(24000);
  ASSERT_EQ(f->nb_samples, 24000);
  const int32_t* p = reinterpret_cast<const int32_t*>(f->data[0]);  // interleaved L R L R ...
  int crossings = 0;
  double peak = 0;
  for (int i = 2400 + 1; i < 21600; ++i) {
    crossings += (p[2 * (i - 1)] < 0) != (p[2 * i] < 0);
    peak = std::max(peak, std::abs(double(p[2 * i])) / 2147483648.0);
    ASSERT_EQ(p[2 * i], p[2 * i + 1]);  // both channels carry the same sine
  }
  EXPECT_NEAR(crossings, 400, 4);  // 500 Hz over 0.4 s
  EXPECT_NEAR(peak, 0.125 / std::sqrt(2.0), 0.003);  // the CLI wrote the mono sine to 2 channels at -3 dB
}

TEST(AudioBed, UnreadableFilesAreErrorsNamingTheFile) {
  auto dir = clipgen::test::scratch_dir("audio_bad");
  AVChannelLayout stereo = AV_CHANNEL_LAYOUT_STEREO;
  try {
    stages::AudioBedReader r(dir / "nope.wav", AV_SAMPLE_FMT_FLTP, stereo, 48000);
    FAIL();
  } catch (const EncodeError& e) {
    EXPECT_NE(std::string(e.what()).find("nope.wav"), std::string::npos);
  }
  std::ofstream(dir / "junk.wav") << "this is not audio";
  EXPECT_THROW(stages::AudioBedReader(dir / "junk.wav", AV_SAMPLE_FMT_FLTP, stereo, 48000), EncodeError);
  // A video-only file has no audio stream.
  auto png = dir / "still.png";
  clipgen::test::run_command("ffmpeg -v error -y -f lavfi -i color=c=red:s=16x16 -frames:v 1 " + clipgen::test::quote(png));
  EXPECT_THROW(stages::AudioBedReader(png, AV_SAMPLE_FMT_FLTP, stereo, 48000), EncodeError);
}

}  // namespace
