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
    case ModelRef::Kind::Procedural:
      return "procedural";
    case ModelRef::Kind::None:
      return "none";
    case ModelRef::Kind::DiffusersFolder:
      return "diffusers_folder";
    case ModelRef::Kind::SingleFile:
      return "single_file";
  }
  return "builtin";
}

// Only the settings that are set, nested as in the shot file (settings.unet.heads, ...).
Json settings_json(const ModelSettings& s) {
  Json j = Json::object();
  auto put = [&](const char* group, const char* key, const auto& v) {
    if (!v) return;
    if (group)
      j[group][key] = *v;
    else
      j[key] = *v;
  };
  put(nullptr, "prediction_type", s.prediction_type);
  put("unet", "heads", s.unet_heads);
  put("unet", "head_channels", s.unet_head_channels);
  put("unet", "norm_groups", s.unet_norm_groups);
  put("unet", "upcast_attention", s.unet_upcast_attention);
  put("unet", "addition_time_embed_dim", s.unet_addition_time_embed_dim);
  put("unet", "sample_size", s.unet_sample_size);
  put("vae", "scaling_factor", s.vae_scaling_factor);
  put("vae", "norm_groups", s.vae_norm_groups);
  put("vae", "sample_size", s.vae_sample_size);
  put("text_encoder", "heads", s.text_encoder_heads);
  put("text_encoder", "activation", s.text_encoder_activation);
  put("text_encoder", "layers", s.text_encoder_layers);
  put("text_encoder_2", "heads", s.text_encoder_2_heads);
  put("text_encoder_2", "activation", s.text_encoder_2_activation);
  return j;
}

// Plain references keep exactly their earlier form (kind, spec, path), so their shot hashes do not change.
Json model_json(const ModelRef& m) {
  Json j;
  j["kind"] = kind_name(m.kind);
  j["spec"] = m.spec;
  if (!m.path.empty()) j["path"] = m.path.string();
  if (!m.original_config.empty())
    j["original_config"] = m.original_config.string();
  else if (m.ignore_original_config)
    j["original_config"] = "none";
  if (!m.settings.empty()) j["settings"] = settings_json(m.settings);
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

std::string ModelRef::to_json() const { return model_json(*this).dump(); }

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
  j["negative_prompt"] = negative_prompt ? Json(*negative_prompt) : Json(nullptr);
  Json kfs = Json::array();
  for (const auto& k : keyframes) {
    Json kj{
        {"frame", k.frame}, {"at_seconds", k.at_seconds}, {"prompt", k.prompt}, {"negative_prompt", k.negative_prompt ? Json(*k.negative_prompt) : Json(nullptr)}};
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
                     {"generation_fps", motion.generation_fps},
                     {"steps", motion.steps}};
  j["post"] = Json{{"fit", post.fit}, {"retime", post.retime}};
  j["models"] = Json{{"keyframe", model_json(keyframe_model)}, {"temporal", model_json(temporal_model)}};
  if (vae_model) j["models"]["vae"] = model_json(*vae_model);  // absent when unset: older shots hash as before
  if (gen_width > 0 && gen_height > 0)
    j["size"] = Json{{"width", gen_width}, {"height", gen_height}};
  else
    j["size"] = nullptr;
  if (precision != "auto") j["precision"] = precision;  // absent for auto: older shots hash as before
  j["output"] = output.string();
  j["audio"] = audio ? Json(audio->string()) : Json(nullptr);
  j["title"] = title;
  return j.dump();
}

}  // namespace clipgen::configs
