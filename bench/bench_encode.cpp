// Times stages::Encoder against the ffmpeg CLI with identical settings (vertical-short: 1080x1920,
// 30 fps, libx264 High, CRF 18, preset medium, closed GOP 15, 2 B-frames, BT.709 tv range, faststart).
// Both get the same RGB24 frames: ours from memory, ffmpeg's from a raw file written beforehand (only
// the ffmpeg run is timed). Prints both times and the ratio; never asserts.
//
// The runs alternate (ffmpeg, ours, ours synchronous) `repeats` times and the fastest of each is
// reported, so a load spike on a shared machine does not decide the ratio.
//
//   bench_encode [frames=120] [x264 preset=medium] [repeats=2]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include <unistd.h>

#include "configs/preset.h"
#include "stages/encode.h"
#include "stages/frame.h"

extern "C" {
#include <libavutil/log.h>
}

namespace fs = std::filesystem;
using namespace clipgen;
using Clock = std::chrono::steady_clock;

namespace {

stages::Frame make_frame(int w, int h, int i) {
  stages::Frame f(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = f.pixel(x, y);
      p[0] = static_cast<uint8_t>((x + 3 * i) & 255);
      p[1] = static_cast<uint8_t>((y / 2 + 2 * i) & 255);
      p[2] = static_cast<uint8_t>(((x ^ y) + i) & 255);
    }
  return f;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

int main(int argc, char** argv) {
  const int frames = argc > 1 ? std::atoi(argv[1]) : 120;
  const std::string x264_preset = argc > 2 ? argv[2] : "medium";
  const int repeats = argc > 3 ? std::max(1, std::atoi(argv[3])) : 2;
  av_log_set_level(AV_LOG_ERROR);
  configs::Preset p;
  p.name = "vertical-short";
  p.width = 1080, p.height = 1920, p.fps = {30, 1};
  p.video.codec = "libx264", p.video.profile = "high", p.video.pix_fmt = "yuv420p", p.video.crf = 18;
  p.video.gop = 15, p.video.closed_gop = true, p.video.b_frames = 2, p.video.encoder_preset = x264_preset;
  p.container = "mp4", p.faststart = true;

  auto dir = fs::temp_directory_path() / ("clipgen-bench-encode-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::vector<stages::Frame> input;
  input.reserve(frames);
  {
    std::ofstream raw(dir / "in.rgb", std::ios::binary);
    for (int i = 0; i < frames; ++i) {
      input.push_back(make_frame(p.width, p.height, i));
      raw.write(reinterpret_cast<const char*>(input.back().rgb.data()), static_cast<std::streamsize>(input.back().rgb.size()));
    }
  }
  std::printf("frames: %d  raster: %dx%d  codec: libx264 %s crf %d  hardware threads: %u\n", frames, p.width,
              p.height, x264_preset.c_str(), p.video.crf, std::thread::hardware_concurrency());

  auto ours = [&](int depth) {
    auto t0 = Clock::now();
    stages::Encoder enc(p, dir / ("ours" + std::to_string(depth) + ".mp4"), {"bench", "bench", 0, "{}"}, std::nullopt,
                        stages::EncoderOptions{depth});
    for (const auto& f : input) enc.write(f);
    enc.finish();
    return seconds_since(t0);
  };

  const std::string cmd =
      "ffmpeg -nostdin -v error -y -f rawvideo -pix_fmt rgb24 -s 1080x1920 -framerate 30 -i '" +
      (dir / "in.rgb").string() +
      "' -vf 'scale=out_color_matrix=bt709:out_range=tv:flags=bicubic+accurate_rnd,format=yuv420p' "
      "-c:v libx264 -preset " + x264_preset + " -profile:v high -crf 18 -g 15 -keyint_min 15 -bf 2 -flags +cgop "
      "-color_primaries bt709 -color_trc bt709 -colorspace bt709 -color_range tv -movflags +faststart '" +
      (dir / "ffmpeg.mp4").string() + "'";
  auto run_ffmpeg = [&] {
    auto t0 = Clock::now();
    int rc = std::system(cmd.c_str());
    if (rc != 0) std::printf("ffmpeg CLI failed (exit %d): %s\n", rc, cmd.c_str());
    return seconds_since(t0);
  };
  double t_ffmpeg = 1e30, t_threaded = 1e30, t_sync = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const double a = run_ffmpeg(), b = ours(4), c = ours(0);
    t_ffmpeg = std::min(t_ffmpeg, a);
    t_threaded = std::min(t_threaded, b);
    t_sync = std::min(t_sync, c);
    std::printf("run %d: ffmpeg %.2f s, ours %.2f s, ours synchronous %.2f s\n", r + 1, a, b, c);
    std::fflush(stdout);
  }
  std::printf("fastest of %d runs:\n", repeats);
  std::printf("ffmpeg CLI                      : %7.2f s  (%6.1f fps)\n", t_ffmpeg, frames / t_ffmpeg);
  std::printf("Encoder (conversion || encode)  : %7.2f s  (%6.1f fps)  ratio ffmpeg/ours = %.2f\n", t_threaded,
              frames / t_threaded, t_ffmpeg / t_threaded);
  std::printf("Encoder (synchronous, depth 0)  : %7.2f s  (%6.1f fps)  ratio ffmpeg/ours = %.2f\n", t_sync,
              frames / t_sync, t_ffmpeg / t_sync);
  std::printf("sizes: ffmpeg %ju bytes, ours %ju bytes\n", static_cast<uintmax_t>(fs::file_size(dir / "ffmpeg.mp4")),
              static_cast<uintmax_t>(fs::file_size(dir / "ours4.mp4")));
  fs::remove_all(dir);
  return 0;
}
