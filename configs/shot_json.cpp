// Shot::to_json — the fully resolved shot as compact JSON (container metadata, run reports).
#include <nlohmann/json.hpp>

#include "configs/shot.h"

namespace clipgen::configs {
namespace {

using Json = nlohmann::ordered_json;

std::string rate_text(Rational r) { return std::to_string(r.num) + "/" + std::to_string(r.den); }

const char* kind_name(ModelRef::Kind k) {
  switch (k) {
    case ModelRef::Kind::Builtin:
      return "builtin";
    case ModelRef::Kind::DiffusersFolder:
      return "diffusers_folder";
    case ModelRef::Kind::SingleFile:
      return "single_file";
  }
  return "builtin";
}

Json model_json(const ModelRef& m) {
  Json j;
  j["kind"] = kind_name(m.kind);
  j["spec"] = m.spec;
  if (!m.path.empty()) j["path"] = m.path.string();
  return j;
}

Json preset_json(const Preset& p) {
  Json j;
  j["name"] = p.name;
  j["width"] = p.width;
  j["height"] = p.height;
  j["fps"] = rate_text(p.fps);
  j["container"] = p.container;
  j["faststart"] = p.faststart;
  const auto& v = p.video;
  Json video{{"codec", v.codec}, {"profile", v.profile}, {"pix_fmt", v.pix_fmt}, {"rate_control", v.rate_control}};
  if (v.rate_control == "crf")
    video["crf"] = v.crf;
  else
    video["bitrate"] = v.bitrate;
  if (v.maxrate) video["maxrate"] = v.maxrate;
  if (v.bufsize) video["bufsize"] = v.bufsize;
  video["gop"] = v.gop;
  video["closed_gop"] = v.closed_gop;
  video["b_frames"] = v.b_frames;
  video["encoder_preset"] = v.encoder_preset;
  video["color"] = v.color;
  video["range"] = v.range;
  if (!v.options.empty()) video["options"] = v.options;
  j["video"] = std::move(video);
  const auto& a = p.audio;
  j["audio"] = Json{{"enabled", a.enabled},
                    {"codec", a.codec},
                    {"sample_rate", a.sample_rate},
                    {"channels", a.channels},
                    {"bitrate", a.bitrate}};
  j["max_duration"] = p.max_duration;
  return j;
}

}  // namespace

std::string Shot::to_json() const {
  Json j;
  j["schema"] = 1;
  j["id"] = id;
  j["source"] = source_file.string() + ":" + std::to_string(source_line);
  j["preset"] = preset_json(preset);
  j["fps"] = rate_text(fps);
  j["frames"] = frames;
  j["duration"] = duration;
  j["seed"] = seed;
  j["prompt"] = prompt;
  j["negative_prompt"] = negative_prompt;
  Json kfs = Json::array();
  for (const auto& k : keyframes) {
    Json kj{
        {"frame", k.frame}, {"at_seconds", k.at_seconds}, {"prompt", k.prompt}, {"negative_prompt", k.negative_prompt}};
    if (k.image) {
      kj["image"] = k.image->string();
      kj["strength"] = k.strength;
    }
    kfs.push_back(std::move(kj));
  }
  j["keyframes"] = std::move(kfs);
  j["sampler"] = Json{{"name", sampler.name},
                      {"steps", sampler.steps},
                      {"guidance", sampler.guidance},
                      {"sigma_schedule", sampler.sigma_schedule},
                      {"clip_skip", sampler.clip_skip}};
  j["motion"] = Json{{"motion_bucket_id", motion.motion_bucket_id},
                     {"fps", motion.fps_conditioning},
                     {"noise_aug_strength", motion.noise_aug_strength},
                     {"decode_chunk", motion.decode_chunk},
                     {"num_frames", motion.num_frames},
                     {"overlap", motion.overlap},
                     {"transition_frames", motion.transition_frames},
                     {"continuity", motion.continuity},
                     {"min_guidance", motion.min_guidance},
                     {"max_guidance", motion.max_guidance},
                     {"generation_fps", motion.generation_fps}};
  j["post"] = Json{{"fit", post.fit}, {"retime", post.retime}};
  j["models"] = Json{{"keyframe", model_json(keyframe_model)}, {"temporal", model_json(temporal_model)}};
  if (gen_width > 0 && gen_height > 0)
    j["size"] = Json{{"width", gen_width}, {"height", gen_height}};
  else
    j["size"] = nullptr;
  j["output"] = output.string();
  j["audio"] = audio ? Json(audio->string()) : Json(nullptr);
  j["title"] = title;
  return j.dump();
}

}  // namespace clipgen::configs
