// Default output stages: stages::PostProcessor and stages::Encoder behind the graph's interfaces.
#include <algorithm>

#include "core/version.h"
#include "pipeline/graph.h"
#include "pipeline/render.h"
#include "stages/encode.h"
#include "stages/post.h"

namespace clipgen::pipeline {
namespace {

class PostAdapter final : public FrameProcessor {
public:
  explicit PostAdapter(const ShotRun& run)
      : post_(run.plan().width, run.plan().height, run.plan().fps, run.shot().preset, run.shot().post) {}
  std::vector<stages::Frame> push(std::vector<stages::Frame>&& frames) override {
    std::vector<stages::Frame> out;
    for (auto& f : frames) {
      auto o = post_.push(f);
      out.insert(out.end(), std::make_move_iterator(o.begin()), std::make_move_iterator(o.end()));
      f = stages::Frame();  // free the generated frame as soon as it is consumed
    }
    return out;
  }
  std::vector<stages::Frame> flush() override { return post_.flush(); }

private:
  stages::PostProcessor post_;
};

class EncoderAdapter final : public ClipWriter {
public:
  explicit EncoderAdapter(const ShotRun& run)
      : target_(run.shot().frames),
        enc_(run.shot().preset, run.shot().output,
             stages::EncodeMetadata{version_string(), run.shot().id, run.shot().seed, run.shot().to_json()},
             run.shot().audio) {}
  void write(stages::Frame&& f) override {
    if (enc_.frames_written() >= target_) return;
    enc_.write(f);
    last_ = std::move(f);  // kept (not copied) in case the last frame must be repeated
  }
  void finish() override {
    while (enc_.frames_written() < target_ && last_.width > 0) enc_.write(last_);
    enc_.finish();
  }
  int64_t frames_written() const override { return enc_.frames_written(); }

private:
  int64_t target_;
  stages::Encoder enc_;
  stages::Frame last_;
};

}  // namespace

OutputStages default_output_stages() {
  OutputStages o;
  o.post = [](const ShotRun& run) { return std::make_unique<PostAdapter>(run); };
  o.encoder = [](const ShotRun& run) { return std::make_unique<EncoderAdapter>(run); };
  return o;
}

}  // namespace clipgen::pipeline
