#include "models/io/single_file.h"

#include <algorithm>
#include <cctype>
#include <set>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "core/error.h"
#include "core/fs.h"
#include "models/io/ldm_yaml.h"

namespace clipgen::io {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kUnetPrefix = "model.diffusion_model.";
constexpr const char* kVaePrefix = "first_stage_model.";
constexpr const char* kSd1TextPrefix = "cond_stage_model.transformer.";
constexpr const char* kSd2TextPrefix = "cond_stage_model.model.";
constexpr const char* kXlText1Prefix = "conditioner.embedders.0.transformer.";
constexpr const char* kXlText2Prefix = "conditioner.embedders.1.model.";

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

std::vector<std::string> split_dots(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    auto d = s.find('.', start);
    out.push_back(s.substr(start, d == std::string::npos ? std::string::npos : d - start));
    if (d == std::string::npos) break;
    start = d + 1;
  }
  return out;
}

std::string join_from(const std::vector<std::string>& parts, size_t from) {
  std::string r;
  for (size_t i = from; i < parts.size(); ++i) r += (i > from ? "." : "") + parts[i];
  return r;
}

// A block index: decimal digits only ("1" but not "01x"); std::nullopt otherwise.
std::optional<int64_t> index_of(const std::string& s) {
  if (s.empty() || s.size() > 6) return std::nullopt;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  if (s.size() > 1 && s[0] == '0') return std::nullopt;
  return std::stoll(s);
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

bool is_param_leaf(const std::string& s) { return s == "weight" || s == "bias"; }

// Published configurations (diffusers 0.27.2 / transformers 4.37.2 config.json of the reference models).
json unet_template() {
  return json::parse(R"({"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.27.2", "act_fn": "silu",
    "addition_embed_type": null, "addition_embed_type_num_heads": 64, "addition_time_embed_dim": null,
    "attention_head_dim": 8, "attention_type": "default", "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": false, "class_embed_type": null, "class_embeddings_concat": false, "conv_in_kernel": 3,
    "conv_out_kernel": 3, "cross_attention_dim": 768, "cross_attention_norm": null,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "dropout": 0.0, "dual_cross_attention": false, "encoder_hid_dim": null,
    "encoder_hid_dim_type": null, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
    "mid_block_only_cross_attention": null, "mid_block_scale_factor": 1, "mid_block_type": "UNetMidBlock2DCrossAttn",
    "norm_eps": 1e-05, "norm_num_groups": 32, "num_attention_heads": null, "num_class_embeds": null,
    "only_cross_attention": false, "out_channels": 4, "projection_class_embeddings_input_dim": null,
    "resnet_out_scale_factor": 1.0, "resnet_skip_time_act": false, "resnet_time_scale_shift": "default",
    "reverse_transformer_layers_per_block": null, "sample_size": 64, "time_cond_proj_dim": null,
    "time_embedding_act_fn": null, "time_embedding_dim": null, "time_embedding_type": "positional",
    "timestep_post_act": null, "transformer_layers_per_block": 1,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "upcast_attention": false, "use_linear_projection": false})");
}

json vae_template() {
  return json::parse(R"({"_class_name": "AutoencoderKL", "_diffusers_version": "0.27.2", "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D",
    "DownEncoderBlock2D", "DownEncoderBlock2D"], "force_upcast": true, "in_channels": 3, "latent_channels": 4,
    "latents_mean": null, "latents_std": null, "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3,
    "sample_size": 512, "scaling_factor": 0.18215, "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D",
    "UpDecoderBlock2D", "UpDecoderBlock2D"]})");
}

json clip_template() {
  return json::parse(R"({"architectures": ["CLIPTextModel"], "attention_dropout": 0.0, "bos_token_id": 0,
    "dropout": 0.0, "eos_token_id": 2, "hidden_act": "quick_gelu", "hidden_size": 768, "initializer_factor": 1.0,
    "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-05, "max_position_embeddings": 77,
    "model_type": "clip_text_model", "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 1,
    "projection_dim": 768, "transformers_version": "4.37.2", "vocab_size": 49408})");
}

json scheduler_template(SingleFileFamily f) {
  switch (f) {
    case SingleFileFamily::SD1:
      return json::parse(R"({"_class_name": "PNDMScheduler", "_diffusers_version": "0.27.2", "beta_end": 0.012,
        "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000, "prediction_type": "epsilon",
        "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1, "timestep_spacing": "leading",
        "trained_betas": null})");
    case SingleFileFamily::SD2:
      return json::parse(R"({"_class_name": "DDIMScheduler", "_diffusers_version": "0.27.2", "beta_end": 0.012,
        "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": false, "clip_sample_range": 1.0,
        "dynamic_thresholding_ratio": 0.995, "num_train_timesteps": 1000, "prediction_type": "v_prediction",
        "rescale_betas_zero_snr": false, "sample_max_value": 1.0, "set_alpha_to_one": false, "steps_offset": 1,
        "thresholding": false, "timestep_spacing": "leading", "trained_betas": null})");
    case SingleFileFamily::SDXL:
      return json::parse(R"({"_class_name": "EulerDiscreteScheduler", "_diffusers_version": "0.27.2", "beta_end": 0.012,
        "beta_schedule": "scaled_linear", "beta_start": 0.00085, "interpolation_type": "linear",
        "num_train_timesteps": 1000, "prediction_type": "epsilon", "rescale_betas_zero_snr": false, "sigma_max": null,
        "sigma_min": null, "steps_offset": 1, "timestep_spacing": "leading", "timestep_type": "discrete",
        "trained_betas": null, "use_karras_sigmas": false})");
  }
  return {};
}

// Top-level keys that published files carry and no diffusers component holds.
bool is_known_unused_key(const std::string& k) {
  static const std::set<std::string> exact = {
      "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
      "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
      "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
      "logvar", "denoiser.sigmas", "model_ema.decay", "model_ema.num_updates"};
  return exact.count(k) > 0 || starts_with(k, "model_ema.") || starts_with(k, "first_stage_model.loss.");
}

struct Builder {
  const KeyShapes& all;
  SingleFilePlan& plan;
  const std::string& file;
  std::string vae_prefix = kVaePrefix;  // "" for a standalone VAE file (keys without 'first_stage_model.')

  [[noreturn]] void fail(const std::string& key, const std::string& msg) const { throw ModelLoadError(file, key, msg); }

  const std::vector<int64_t>* shape(const std::string& full_key) const {
    auto it = all.find(full_key);
    return it == all.end() ? nullptr : &it->second;
  }
  const std::vector<int64_t>& need(const std::string& full_key, size_t rank) const {
    const auto* s = shape(full_key);
    if (!s) fail(full_key, "required tensor is missing: the file is incomplete or not in the expected layout");
    if (s->size() != rank) fail(full_key, "expected rank " + std::to_string(rank) + ", found shape " + shape_str(*s));
    return *s;
  }
  void add(const std::string& comp, const std::string& name, const std::string& full_key, SourceTransform t) {
    const auto& s = all.at(full_key);
    std::vector<int64_t> out = s;
    switch (t) {
      case SourceTransform::None: break;
      case SourceTransform::Conv1x1ToLinear:
        if (s.size() == 4) {
          if (s[2] != 1 || s[3] != 1) fail(full_key, "expected a 1×1 convolution weight, found " + shape_str(s));
          out = {s[0], s[1]};
        } else if (s.size() != 2) {
          fail(full_key, "expected [C, C, 1, 1] or [C, C], found " + shape_str(s));
        }
        break;
      case SourceTransform::SplitQ: case SourceTransform::SplitK: case SourceTransform::SplitV:
        if (s.empty() || s[0] % 3 != 0) fail(full_key, "fused q/k/v projection " + shape_str(s) + " is not divisible by 3");
        if (s.size() == 2 && s[0] != 3 * s[1])
          fail(full_key, "in_proj_weight " + shape_str(s) + " is not [3h, h]");
        out[0] = s[0] / 3;
        break;
      case SourceTransform::Transpose:
        if (s.size() != 2) fail(full_key, "expected a matrix, found " + shape_str(s));
        out = {s[1], s[0]};
        break;
    }
    if (!plan.sources[comp].emplace(name, TensorSource{full_key, t}).second)
      fail(full_key, "maps to '" + name + "', which another tensor of the file also maps to");
    plan.shapes[comp][name] = out;
  }
};

// Keys of `all` under `prefix`, prefix stripped.
std::vector<std::string> keys_under(const KeyShapes& all, const std::string& prefix) {
  std::vector<std::string> out;
  for (auto it = all.lower_bound(prefix); it != all.end() && starts_with(it->first, prefix); ++it)
    out.push_back(it->first.substr(prefix.size()));
  return out;
}

// ----------------------------------------------------------------------------------------------- UNet

struct UnetArch {
  int64_t in_channels = 0, out_channels = 0, model_channels = 0;
  int layers = 0, levels = 0;
  std::vector<int64_t> channels;
  std::vector<bool> attention;
  std::vector<int> depth;
  int mid_depth = 0;
  bool mid_attention = false;
  int64_t context_dim = 0;
  bool linear_proj = false;
  std::optional<int64_t> adm_in_channels;
};

const char* kResTail[][2] = {{"in_layers.0", "norm1"},     {"in_layers.2", "conv1"},  {"emb_layers.1", "time_emb_proj"},
                             {"out_layers.0", "norm2"},    {"out_layers.3", "conv2"}, {"skip_connection", "conv_shortcut"}};

std::optional<std::string> unet_res_tail(const std::string& rest) {
  for (const auto& [from, to] : kResTail) {
    std::string f = std::string(from) + ".";
    if (starts_with(rest, f) && is_param_leaf(rest.substr(f.size()))) return std::string(to) + "." + rest.substr(f.size());
  }
  return std::nullopt;
}

bool unet_attention_tail_ok(const std::string& rest) {
  static const std::set<std::string> top = {"norm.weight", "norm.bias", "proj_in.weight", "proj_in.bias",
                                            "proj_out.weight", "proj_out.bias"};
  static const std::set<std::string> inner = {
      "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias", "norm3.weight", "norm3.bias",
      "attn1.to_q.weight", "attn1.to_k.weight", "attn1.to_v.weight", "attn1.to_out.0.weight", "attn1.to_out.0.bias",
      "attn2.to_q.weight", "attn2.to_k.weight", "attn2.to_v.weight", "attn2.to_out.0.weight", "attn2.to_out.0.bias",
      "ff.net.0.proj.weight", "ff.net.0.proj.bias", "ff.net.2.weight", "ff.net.2.bias"};
  if (top.count(rest)) return true;
  auto p = split_dots(rest);
  return p.size() > 2 && p[0] == "transformer_blocks" && index_of(p[1]) && inner.count(join_from(p, 2));
}

UnetArch infer_unet(const Builder& b) {
  const std::string P = kUnetPrefix;
  UnetArch a;
  const auto& conv_in = b.need(P + "input_blocks.0.0.weight", 4);
  a.model_channels = conv_in[0];
  a.in_channels = conv_in[1];
  a.out_channels = b.need(P + "out.2.weight", 4)[0];
  std::vector<int64_t> downs;
  int64_t max_input = 0;
  for (const auto& k : keys_under(b.all, P + "input_blocks.")) {
    auto p = split_dots(k);
    auto i = index_of(p[0]);
    if (!i) b.fail(P + "input_blocks." + k, "block index is not a number");
    max_input = std::max(max_input, *i);
    if (p.size() == 4 && p[1] == "0" && p[2] == "op" && p[3] == "weight") downs.push_back(*i);
  }
  std::sort(downs.begin(), downs.end());
  if (downs.empty()) {
    a.levels = 1;
    a.layers = static_cast<int>(max_input);
  } else {
    a.layers = static_cast<int>(downs[0] - 1);
    a.levels = static_cast<int>(downs.size()) + 1;
    for (size_t d = 0; d < downs.size(); ++d)
      if (downs[d] != static_cast<int64_t>((a.layers + 1) * (d + 1)))
        b.fail(P + "input_blocks." + std::to_string(downs[d]) + ".0.op.weight",
               "downsamplers are not evenly spaced: the UNet structure is inconsistent");
  }
  if (a.layers < 1) b.fail(P + "input_blocks.1.0.in_layers.0.weight", "the UNet has no ResBlocks");
  const int64_t expect_max = static_cast<int64_t>(a.layers + 1) * (a.levels - 1) + a.layers;
  if (max_input != expect_max)
    b.fail(P + "input_blocks." + std::to_string(max_input),
           "input block count does not fit " + std::to_string(a.levels) + " levels of " + std::to_string(a.layers) +
               " ResBlocks (truncated or inconsistent file)");
  for (int lv = 0; lv < a.levels; ++lv) {
    const std::string blk = P + "input_blocks." + std::to_string((a.layers + 1) * lv + 1);
    a.channels.push_back(b.need(blk + ".0.out_layers.3.weight", 4)[0]);
    std::set<int64_t> blocks;
    bool any = false;
    for (const auto& k : keys_under(b.all, blk + ".1.")) {
      any = true;
      auto p = split_dots(k);
      if (p.size() > 2 && p[0] == "transformer_blocks")
        if (auto d = index_of(p[1])) blocks.insert(*d);
    }
    a.attention.push_back(any);
    a.depth.push_back(any ? static_cast<int>(blocks.size()) : 1);
    if (any && !a.context_dim) {
      a.context_dim = b.need(blk + ".1.transformer_blocks.0.attn2.to_k.weight", 2)[1];
      const auto* pin = b.shape(blk + ".1.proj_in.weight");
      if (!pin) b.fail(blk + ".1.proj_in.weight", "required tensor is missing");
      a.linear_proj = pin->size() == 2;
    }
  }
  std::set<int64_t> mid_blocks;
  for (const auto& k : keys_under(b.all, P + "middle_block.1.")) {
    a.mid_attention = true;
    auto p = split_dots(k);
    if (p.size() > 2 && p[0] == "transformer_blocks")
      if (auto d = index_of(p[1])) mid_blocks.insert(*d);
  }
  a.mid_depth = static_cast<int>(mid_blocks.size());
  if (a.mid_attention && !a.context_dim) {
    a.context_dim = b.need(P + "middle_block.1.transformer_blocks.0.attn2.to_k.weight", 2)[1];
    const auto* pin = b.shape(P + "middle_block.1.proj_in.weight");
    if (!pin) b.fail(P + "middle_block.1.proj_in.weight", "required tensor is missing");
    a.linear_proj = pin->size() == 2;
  }
  if (const auto* s = b.shape(P + "label_emb.0.0.weight")) a.adm_in_channels = (*s).at(1);
  return a;
}

void map_unet(Builder& b, const UnetArch& a) {
  const std::string P = kUnetPrefix;
  const int L = a.layers;
  for (const auto& k : keys_under(b.all, P)) {
    const std::string full = P + k;
    auto p = split_dots(k);
    auto bad = [&](const std::string& why) { b.fail(full, "unexpected UNet tensor (" + why + ")"); };
    std::string name;
    auto res = [&](const std::string& rest, const std::string& base) {
      auto t = unet_res_tail(rest);
      if (!t) bad("not a ResBlock parameter");
      name = base + *t;
    };
    auto attn = [&](const std::string& rest, const std::string& base) {
      if (!unet_attention_tail_ok(rest)) bad("not a transformer parameter");
      name = base + rest;
    };
    const std::string head = p[0];
    if ((head == "time_embed" || head == "out") && p.size() == 3 && is_param_leaf(p[2])) {
      static const std::map<std::string, std::string> m = {{"time_embed.0", "time_embedding.linear_1"},
                                                           {"time_embed.2", "time_embedding.linear_2"},
                                                           {"out.0", "conv_norm_out"}, {"out.2", "conv_out"}};
      auto it = m.find(p[0] + "." + p[1]);
      if (it == m.end()) bad("unknown layer");
      name = it->second + "." + p[2];
    } else if (head == "label_emb" && p.size() == 4 && p[1] == "0" && is_param_leaf(p[3])) {
      if (p[2] == "0") name = "add_embedding.linear_1." + p[3];
      else if (p[2] == "2") name = "add_embedding.linear_2." + p[3];
      else bad("unknown layer");
    } else if (head == "input_blocks" && p.size() >= 4) {
      auto i = index_of(p[1]);
      auto s = index_of(p[2]);
      if (!i || !s) bad("block index is not a number");
      const std::string rest = join_from(p, 3);
      if (*i == 0) {
        if (*s != 0 || !is_param_leaf(rest)) bad("unknown layer in input_blocks.0");
        name = "conv_in." + rest;
      } else {
        const int64_t lv = (*i - 1) / (L + 1), j = (*i - 1) % (L + 1);
        const std::string blk = "down_blocks." + std::to_string(lv) + ".";
        if (lv >= a.levels) bad("block beyond the last level");
        if (j < L && *s == 0) res(rest, blk + "resnets." + std::to_string(j) + ".");
        else if (j < L && *s == 1 && a.attention[lv]) attn(rest, blk + "attentions." + std::to_string(j) + ".");
        else if (j == L && *s == 0 && lv < a.levels - 1 && (rest == "op.weight" || rest == "op.bias"))
          name = blk + "downsamplers.0.conv." + rest.substr(3);
        else bad("no such layer in this block");
      }
    } else if (head == "middle_block" && p.size() >= 4) {
      auto s = index_of(p[1]);
      const std::string rest = join_from(p, 2);
      if (s == 0) res(rest, "mid_block.resnets.0.");
      else if (s == 1) attn(rest, "mid_block.attentions.0.");
      else if (s == 2) res(rest, "mid_block.resnets.1.");
      else bad("no such layer in the middle block");
    } else if (head == "output_blocks" && p.size() >= 4) {
      auto i = index_of(p[1]);
      auto s = index_of(p[2]);
      if (!i || !s) bad("block index is not a number");
      const std::string rest = join_from(p, 3);
      const int64_t ub = *i / (L + 1), j = *i % (L + 1);
      const int64_t level = a.levels - 1 - ub;  // the down level this up block mirrors
      if (ub >= a.levels) bad("block beyond the last level");
      const std::string blk = "up_blocks." + std::to_string(ub) + ".";
      const bool is_up_conv = (rest == "conv.weight" || rest == "conv.bias");
      const bool has_attn = a.attention[level];
      if (*s == 0) res(rest, blk + "resnets." + std::to_string(j) + ".");
      else if (*s == 1 && !is_up_conv && has_attn) attn(rest, blk + "attentions." + std::to_string(j) + ".");
      // The upsampler sits in the last block of an up level (not the last level): at .1 without attention, .2 with.
      else if (is_up_conv && j == L && ub < a.levels - 1 && *s == (has_attn ? 2 : 1))
        name = blk + "upsamplers.0." + rest;
      else bad("no such layer in this block");
    } else {
      bad("unknown block");
    }
    b.add("unet", name, full, SourceTransform::None);
  }
}

// ------------------------------------------------------------------------------------------------ VAE

struct VaeArch {
  int64_t in_channels = 0, out_channels = 0, ch = 0, latent = 0;
  int levels = 0, layers = 0;
  std::vector<int64_t> channels;
};

std::optional<std::string> vae_res_tail(const std::string& rest) {
  static const std::map<std::string, std::string> m = {{"norm1", "norm1"}, {"conv1", "conv1"}, {"norm2", "norm2"},
                                                       {"conv2", "conv2"}, {"nin_shortcut", "conv_shortcut"}};
  auto p = split_dots(rest);
  if (p.size() != 2 || !is_param_leaf(p[1])) return std::nullopt;
  auto it = m.find(p[0]);
  if (it == m.end()) return std::nullopt;
  return it->second + "." + p[1];
}

VaeArch infer_vae(const Builder& b) {
  const std::string P = b.vae_prefix;
  VaeArch a;
  const auto& ci = b.need(P + "encoder.conv_in.weight", 4);
  a.ch = ci[0];
  a.in_channels = ci[1];
  a.out_channels = b.need(P + "decoder.conv_out.weight", 4)[0];
  a.latent = b.need(P + "decoder.conv_in.weight", 4)[1];
  std::set<int64_t> levels, blocks0;
  for (const auto& k : keys_under(b.all, P + "encoder.down.")) {
    auto p = split_dots(k);
    auto i = index_of(p[0]);
    if (!i) b.fail(P + "encoder.down." + k, "level index is not a number");
    levels.insert(*i);
    if (*i == 0 && p.size() > 2 && p[1] == "block")
      if (auto j = index_of(p[2])) blocks0.insert(*j);
  }
  a.levels = static_cast<int>(levels.size());
  a.layers = static_cast<int>(blocks0.size());
  if (a.levels == 0 || a.layers == 0 || *levels.rbegin() != a.levels - 1)
    b.fail(P + "encoder.down.0.block.0.conv1.weight", "the VAE encoder levels are missing or not numbered 0..N-1");
  for (int i = 0; i < a.levels; ++i)
    a.channels.push_back(b.need(P + "encoder.down." + std::to_string(i) + ".block.0.conv2.weight", 4)[0]);
  return a;
}

void map_vae(Builder& b, const VaeArch& a, std::vector<std::string>& ignored) {
  const std::string P = b.vae_prefix;
  const int N = a.levels;
  for (const auto& k : keys_under(b.all, P)) {
    const std::string full = P + k;
    if (starts_with(k, "loss.")) {  // training loss (discriminator, LPIPS): not part of the model
      ignored.push_back(full);
      continue;
    }
    auto p = split_dots(k);
    auto bad = [&](const std::string& why) { b.fail(full, "unexpected VAE tensor (" + why + ")"); };
    std::string name;
    SourceTransform t = SourceTransform::None;
    if ((p[0] == "quant_conv" || p[0] == "post_quant_conv") && p.size() == 2 && is_param_leaf(p[1])) {
      name = k;
    } else if ((p[0] == "encoder" || p[0] == "decoder") && p.size() >= 3) {
      const std::string coder = p[0] + ".";
      if ((p[1] == "conv_in" || p[1] == "conv_out") && p.size() == 3 && is_param_leaf(p[2])) {
        name = k;
      } else if (p[1] == "norm_out" && p.size() == 3 && is_param_leaf(p[2])) {
        name = coder + "conv_norm_out." + p[2];
      } else if (p[1] == "mid" && p.size() >= 4) {
        const std::string rest = join_from(p, 3);
        if (p[2] == "block_1" || p[2] == "block_2") {
          auto tail = vae_res_tail(rest);
          if (!tail) bad("not a ResBlock parameter");
          name = coder + "mid_block.resnets." + (p[2] == "block_1" ? "0." : "1.") + *tail;
        } else if (p[2] == "attn_1" && p.size() == 5 && is_param_leaf(p[4])) {
          static const std::map<std::string, std::string> m = {
              {"norm", "group_norm"}, {"q", "to_q"}, {"k", "to_k"}, {"v", "to_v"}, {"proj_out", "to_out.0"}};
          auto it = m.find(p[3]);
          if (it == m.end()) bad("not an attention parameter");
          name = coder + "mid_block.attentions.0." + it->second + "." + p[4];
          if (p[3] != "norm" && p[4] == "weight") t = SourceTransform::Conv1x1ToLinear;
        } else {
          bad("no such layer in the mid block");
        }
      } else if ((p[1] == "down" && p[0] == "encoder") || (p[1] == "up" && p[0] == "decoder")) {
        auto i = index_of(p[2]);
        if (!i || *i >= N) bad("level index outside 0.." + std::to_string(N - 1));
        const bool enc = p[0] == "encoder";
        const int64_t lv = enc ? *i : N - 1 - *i;  // decoder.up is stored in reverse order
        const std::string blk = coder + (enc ? "down_blocks." : "up_blocks.") + std::to_string(lv) + ".";
        if (p.size() >= 6 && p[3] == "block") {
          auto j = index_of(p[4]);
          auto tail = vae_res_tail(join_from(p, 5));
          if (!j || !tail || *j >= a.layers + (enc ? 0 : 1)) bad("no such ResBlock");
          name = blk + "resnets." + std::to_string(*j) + "." + *tail;
        } else if (p.size() == 6 && p[3] == (enc ? "downsample" : "upsample") && p[4] == "conv" && is_param_leaf(p[5])) {
          if (lv >= N - 1) bad("the last level has no resampler");
          name = blk + (enc ? "downsamplers" : "upsamplers") + ".0.conv." + p[5];
        } else {
          bad("no such layer in this level");
        }
      } else {
        bad("unknown block");
      }
    } else {
      bad("unknown layer");
    }
    b.add("vae", name, full, t);
  }
}

// -------------------------------------------------------------------------------------- text encoders

struct TextArch {
  int64_t hidden = 0, vocab = 0, positions = 0, intermediate = 0;
  int file_layers = 0;
  std::optional<int64_t> projection;  // OpenCLIP text_projection width
};

int count_layers(const KeyShapes& all, const std::string& prefix) {
  std::set<int64_t> n;
  for (const auto& k : keys_under(all, prefix)) {
    auto p = split_dots(k);
    if (auto i = index_of(p[0])) n.insert(*i);
  }
  if (!n.empty() && *n.rbegin() != static_cast<int64_t>(n.size()) - 1) return -1;
  return static_cast<int>(n.size());
}

// CLIP-L with transformers names (SD 1.x cond_stage_model.transformer., SDXL conditioner.embedders.0.transformer.).
TextArch infer_clip(const Builder& b, const std::string& prefix, const std::string& tm) {
  TextArch a;
  const auto& tok = b.need(prefix + tm + "embeddings.token_embedding.weight", 2);
  a.vocab = tok[0];
  a.hidden = tok[1];
  a.positions = b.need(prefix + tm + "embeddings.position_embedding.weight", 2)[0];
  a.file_layers = count_layers(b.all, prefix + tm + "encoder.layers.");
  if (a.file_layers <= 0) b.fail(prefix + tm + "encoder.layers.0.mlp.fc1.weight", "text encoder layers missing or not numbered 0..N-1");
  a.intermediate = b.need(prefix + tm + "encoder.layers.0.mlp.fc1.weight", 2)[0];
  return a;
}

void map_clip(Builder& b, const std::string& comp, const std::string& prefix, const std::string& tm, int keep,
              std::vector<std::string>& ignored) {
  static const std::set<std::string> layer_params = {
      "self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight", "self_attn.k_proj.bias",
      "self_attn.v_proj.weight", "self_attn.v_proj.bias", "self_attn.out_proj.weight", "self_attn.out_proj.bias",
      "layer_norm1.weight", "layer_norm1.bias", "layer_norm2.weight", "layer_norm2.bias",
      "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"};
  static const std::set<std::string> other = {"embeddings.token_embedding.weight", "embeddings.position_embedding.weight",
                                              "final_layer_norm.weight", "final_layer_norm.bias"};
  for (const auto& k0 : keys_under(b.all, prefix)) {
    const std::string full = prefix + k0;
    if (!starts_with(k0, tm)) b.fail(full, "unexpected text encoder tensor (expected '" + prefix + tm + "*')");
    const std::string k = k0.substr(tm.size());
    if (k == "embeddings.position_ids") {
      ignored.push_back(full);
      continue;
    }
    auto p = split_dots(k);
    if (p.size() > 3 && p[0] == "encoder" && p[1] == "layers" && index_of(p[2]) && layer_params.count(join_from(p, 3))) {
      if (*index_of(p[2]) >= keep) {
        ignored.push_back(full);
        continue;
      }
    } else if (!other.count(k)) {
      b.fail(full, "unexpected text encoder tensor (not a CLIPTextModel parameter)");
    }
    b.add(comp, "text_model." + k, full, SourceTransform::None);
  }
}

// OpenCLIP (SD 2.x cond_stage_model.model., SDXL conditioner.embedders.1.model.).
TextArch infer_openclip(const Builder& b, const std::string& prefix) {
  TextArch a;
  const auto& tok = b.need(prefix + "token_embedding.weight", 2);
  a.vocab = tok[0];
  a.hidden = tok[1];
  a.positions = b.need(prefix + "positional_embedding", 2)[0];
  a.file_layers = count_layers(b.all, prefix + "transformer.resblocks.");
  if (a.file_layers <= 0) b.fail(prefix + "transformer.resblocks.0.mlp.c_fc.weight", "text encoder layers missing or not numbered 0..N-1");
  a.intermediate = b.need(prefix + "transformer.resblocks.0.mlp.c_fc.weight", 2)[0];
  if (const auto* s = b.shape(prefix + "text_projection")) {
    if (s->size() != 2 || (*s)[0] != a.hidden) b.fail(prefix + "text_projection", "expected [hidden, projection], found " + shape_str(*s));
    a.projection = (*s)[1];
  }
  return a;
}

void map_openclip(Builder& b, const std::string& comp, const std::string& prefix, int keep, bool with_projection,
                  std::vector<std::string>& ignored) {
  static const std::map<std::string, std::string> layer = {
      {"ln_1", "layer_norm1"}, {"ln_2", "layer_norm2"}, {"attn.out_proj", "self_attn.out_proj"},
      {"mlp.c_fc", "mlp.fc1"}, {"mlp.c_proj", "mlp.fc2"}};
  const std::string T = "text_model.";
  for (const auto& k : keys_under(b.all, prefix)) {
    const std::string full = prefix + k;
    auto p = split_dots(k);
    if (k == "token_embedding.weight") {
      b.add(comp, T + "embeddings.token_embedding.weight", full, SourceTransform::None);
    } else if (k == "positional_embedding") {
      b.add(comp, T + "embeddings.position_embedding.weight", full, SourceTransform::None);
    } else if (k == "ln_final.weight" || k == "ln_final.bias") {
      b.add(comp, T + "final_layer_norm." + p[1], full, SourceTransform::None);
    } else if (k == "text_projection") {
      if (with_projection) b.add(comp, "text_projection.weight", full, SourceTransform::Transpose);
      else ignored.push_back(full);  // SD 2.x: CLIPTextModel has no projection
    } else if (k == "logit_scale" || k == "attn_mask") {
      ignored.push_back(full);
    } else if (p.size() >= 5 && p[0] == "transformer" && p[1] == "resblocks" && index_of(p[2])) {
      const int64_t n = *index_of(p[2]);
      const std::string rest = join_from(p, 3);
      const std::string leaf = p.back();
      const std::string mod = join_from(std::vector<std::string>(p.begin() + 3, p.end() - 1), 0);
      const std::string base = T + "encoder.layers." + std::to_string(n) + ".";
      bool known = false;
      if (rest == "attn.in_proj_weight" || rest == "attn.in_proj_bias") known = true;
      else if (is_param_leaf(leaf) && layer.count(mod)) known = true;
      if (!known) b.fail(full, "unexpected OpenCLIP tensor (not a text transformer parameter)");
      if (n >= keep) {
        ignored.push_back(full);
        continue;
      }
      if (rest == "attn.in_proj_weight" || rest == "attn.in_proj_bias") {
        const std::string lf = rest == "attn.in_proj_weight" ? "weight" : "bias";
        b.add(comp, base + "self_attn.q_proj." + lf, full, SourceTransform::SplitQ);
        b.add(comp, base + "self_attn.k_proj." + lf, full, SourceTransform::SplitK);
        b.add(comp, base + "self_attn.v_proj." + lf, full, SourceTransform::SplitV);
      } else {
        b.add(comp, base + layer.at(mod) + "." + leaf, full, SourceTransform::None);
      }
    } else {
      b.fail(full, "unexpected OpenCLIP tensor (not a text transformer parameter)");
    }
  }
}

json clip_config(const TextArch& a, int layers, int heads, const std::string& act, bool with_projection,
                 std::optional<int64_t> projection_dim) {
  json c = clip_template();
  c["architectures"] = {with_projection ? "CLIPTextModelWithProjection" : "CLIPTextModel"};
  c["hidden_size"] = a.hidden;
  c["vocab_size"] = a.vocab;
  c["max_position_embeddings"] = a.positions;
  c["intermediate_size"] = a.intermediate;
  c["num_hidden_layers"] = layers;
  c["num_attention_heads"] = heads;
  c["hidden_act"] = act;
  c["projection_dim"] = projection_dim.value_or(a.hidden);
  return c;
}

// ------------------------------------------------------------------------------------ family detection

bool has_prefix(const KeyShapes& all, const std::string& prefix) {
  auto it = all.lower_bound(prefix);
  return it != all.end() && starts_with(it->first, prefix);
}

SingleFileFamily detect_family(const KeyShapes& all, const std::string& file) {
  auto unsupported = [&](const std::string& looks) -> SingleFileFamily {
    throw ModelLoadError(file, "", "unsupported checkpoint: it looks like " + looks +
                                       "; clipgen reads single files of SD 1.x, SD 2.x and SDXL base");
  };
  auto has = [&](const std::string& p) { return has_prefix(all, p); };
  auto any_contains = [&](const std::string& s) {
    for (const auto& [k, v] : all)
      if (k.find(s) != std::string::npos) return true;
    return false;
  };
  if (has("lora_unet_") || has("lora_te") || any_contains(".lora_down.") || any_contains("lora_A."))
    return unsupported("a LoRA adapter, not a full model");
  if (any_contains(".joint_blocks.")) return unsupported("Stable Diffusion 3 (MMDiT)");
  if (has("double_blocks.") || any_contains("diffusion_model.double_blocks.")) return unsupported("FLUX");
  if (any_contains(".time_stack.") || any_contains(".time_mixer.")) return unsupported("Stable Video Diffusion (temporal UNet)");
  if (has("conditioner.embedders.1.model.")) {
    if (has("conditioner.embedders.1.model.visual.")) return unsupported("an image-conditioned SDXL variant");
    return SingleFileFamily::SDXL;
  }
  if (has("conditioner.embedders.0.model.")) return unsupported("the SDXL refiner (OpenCLIP bigG only, no CLIP-L)");
  if (has("conditioner.embedders.0.open_clip.") || has("conditioner.embedders.0.")) {
    return unsupported("an SGM model with image conditioning (e.g. Stable Video Diffusion)");
  }
  if (has("embedder.model.") || has("noise_augmentor.")) return unsupported("Stable Diffusion 2.x unCLIP");
  if (has(kSd2TextPrefix)) {
    if (has("model.diffusion_model.label_emb.")) return unsupported("Stable Diffusion 2.x unCLIP (class-embedding UNet)");
    return SingleFileFamily::SD2;
  }
  if (has(kSd1TextPrefix)) return SingleFileFamily::SD1;
  if (has(kUnetPrefix)) {
    // No text encoder in the file: the UNet tells (context width, SDXL's label embedding).
    int64_t ctx = 0;
    for (const auto& [k, s] : all)
      if (starts_with(k, kUnetPrefix) && ends_with(k, ".attn2.to_k.weight") && s.size() == 2) {
        ctx = s[1];
        break;
      }
    if (has("model.diffusion_model.label_emb.")) {
      if (ctx == 2048) return SingleFileFamily::SDXL;
      if (ctx == 1280) return unsupported("the SDXL refiner (context width 1280)");
      return unsupported("a UNet with a class/ADM embedding and context width " + std::to_string(ctx));
    }
    if (ctx == 1024) return SingleFileFamily::SD2;
    if (ctx == 768 || ctx == 0) return SingleFileFamily::SD1;
    return unsupported("an SD-style UNet with context width " + std::to_string(ctx) + " (SD 1.x: 768, SD 2.x: 1024)");
  }
  if (has(kVaePrefix)) return SingleFileFamily::SD1;  // VAE-only file: the family does not matter to the VAE
  if (has("down_blocks.") || has("text_model.") || has("encoder.down_blocks."))
    return unsupported("one diffusers/transformers component file (load it as a component folder/file)");
  throw ModelLoadError(file, "", "not a Stable Diffusion single-file checkpoint: no 'model.diffusion_model.', "
                                 "'first_stage_model.', 'cond_stage_model.' or 'conditioner.embedders.' tensors");
}

// A standalone VAE file as published (sd-vae-ft-mse-original, sdxl_vae): the LDM AutoencoderKL's own
// keys (encoder.down.*, decoder.up.*, quant_conv.*, ...) without the 'first_stage_model.' prefix and with
// no other component. diffusers' VAE conversion takes such a file with an empty VAE prefix.
bool is_bare_ldm_vae(const KeyShapes& all) {
  if (!has_prefix(all, "encoder.down.") || !has_prefix(all, "decoder.up.")) return false;
  for (const char* p : {kUnetPrefix, kVaePrefix, "cond_stage_model.", "conditioner.embedders."})
    if (has_prefix(all, p)) return false;
  return true;
}

std::string list_str(const std::vector<int64_t>& v) { return shape_str(v); }

}  // namespace

const char* family_name(SingleFileFamily f) {
  switch (f) {
    case SingleFileFamily::SD1: return "SD 1.x";
    case SingleFileFamily::SD2: return "SD 2.x";
    case SingleFileFamily::SDXL: return "SDXL base";
  }
  return "?";
}

SingleFilePlan plan_single_file(const KeyShapes& keys, const std::string& file, const SingleFileOverrides& ov,
                                const std::string& yaml_text) {
  SingleFilePlan plan;
  plan.file = file;
  plan.bare_vae = is_bare_ldm_vae(keys);
  // A standalone VAE has no family; the VAE's published SD 1.x settings apply unless overridden.
  const auto fam = plan.bare_vae ? SingleFileFamily::SD1 : detect_family(keys, file);
  plan.family = fam;
  const LdmYaml yaml = LdmYaml::parse(yaml_text);
  const bool have_yaml = !yaml_text.empty();
  Builder b{keys, plan, file};
  if (plan.bare_vae) b.vae_prefix = "";
  const std::string kind = plan.bare_vae ? std::string("a standalone VAE file")
                                         : "an " + std::string(family_name(fam)) + " checkpoint";

  // Component prefixes of this family.
  std::vector<std::pair<std::string, std::string>> comps = {{"unet", kUnetPrefix}, {"vae", kVaePrefix}};
  if (plan.bare_vae) comps = {{"vae", ""}};
  else if (fam == SingleFileFamily::SD1) comps.emplace_back("text_encoder", kSd1TextPrefix);
  if (fam == SingleFileFamily::SD2) comps.emplace_back("text_encoder", kSd2TextPrefix);
  if (fam == SingleFileFamily::SDXL) {
    comps.emplace_back("text_encoder", kXlText1Prefix);
    comps.emplace_back("text_encoder_2", kXlText2Prefix);
  }
  std::map<std::string, std::string> prefix_of;
  for (const auto& [c, p] : comps) {
    prefix_of[c] = p;
    if (has_prefix(keys, p)) plan.present_components.push_back(c);
  }
  std::vector<std::string> want = ov.components;
  if (want.empty())
    for (const auto& [c, p] : comps) want.push_back(c);
  for (const auto& c : want) {
    if (!prefix_of.count(c))
      throw ModelLoadError(file, "", "component '" + c + "' does not exist in " + kind);
    if (!has_prefix(keys, prefix_of[c])) {
      std::string held;
      for (const auto& h : plan.present_components) held += (held.empty() ? "" : ", ") + h;
      throw ModelLoadError(file, "", "the file holds no " + c + " (no '" + prefix_of[c] + "*' tensors); it holds only: " +
                                         (held.empty() ? "nothing usable" : held) +
                                         ". Name it as that component only, or use a full checkpoint");
    }
  }
  auto wanted = [&](const std::string& c) { return std::find(want.begin(), want.end(), c) != want.end(); };

  // Keys outside every component of the family.
  for (const auto& [k, s] : keys) {
    bool in_comp = false;
    for (const auto& [c, p] : comps)
      if (starts_with(k, p)) {
        in_comp = true;
        if (!wanted(c)) plan.not_requested.push_back(k);
      }
    if (in_comp) continue;
    if (is_known_unused_key(k)) {
      plan.ignored.push_back(k);
      continue;
    }
    if (fam == SingleFileFamily::SD1 && starts_with(k, "cond_stage_model.")) {
      b.fail(k, "unexpected text encoder tensor for an SD 1.x file (expected 'cond_stage_model.transformer.*')");
    }
    if (ends_with(k, ".weight") || ends_with(k, ".bias") || !s.empty())
      b.fail(k, "unexpected tensor: not part of an " + std::string(family_name(fam)) + " checkpoint's components");
    plan.ignored.push_back(k);
  }

  std::string summary = plan.bare_vae ? std::string("standalone VAE file (LDM layout)")
                                      : std::string(family_name(fam)) + " single-file checkpoint";
  // ------------------------------------------------------------------------------------------ UNet
  std::optional<int64_t> te2_projection;
  if (has_prefix(keys, kXlText2Prefix))
    if (const auto* s = b.shape(std::string(kXlText2Prefix) + "text_projection"); s && s->size() == 2) te2_projection = (*s)[1];
  std::string prediction = fam == SingleFileFamily::SD2 ? "v_prediction" : "epsilon";
  if (have_yaml) {
    if (auto p = yaml.find("parameterization")) prediction = (*p == "v") ? "v_prediction" : "epsilon";
    else {
      prediction = "epsilon";
      for (const auto& [k, v] : yaml.entries())
        if (v.find("VScaling") != std::string::npos) prediction = "v_prediction";
    }
  }
  if (ov.prediction_type) prediction = *ov.prediction_type;
  if (prediction != "epsilon" && prediction != "v_prediction" && prediction != "sample")
    throw UnsupportedError("prediction_type '" + prediction + "' (expected epsilon, v_prediction or sample)");

  if (wanted("unet")) {
    auto a = infer_unet(b);
    map_unet(b, a);
    json c = unet_template();
    c["in_channels"] = a.in_channels;
    c["out_channels"] = a.out_channels;
    c["layers_per_block"] = a.layers;
    c["block_out_channels"] = a.channels;
    if (a.channels.empty() || a.channels[0] != a.model_channels)
      b.fail(std::string(kUnetPrefix) + "input_blocks.0.0.weight", "conv_in width differs from the first level's width");
    json down = json::array(), up = json::array();
    for (int lv = 0; lv < a.levels; ++lv) down.push_back(a.attention[lv] ? "CrossAttnDownBlock2D" : "DownBlock2D");
    for (int lv = a.levels - 1; lv >= 0; --lv) up.push_back(a.attention[lv] ? "CrossAttnUpBlock2D" : "UpBlock2D");
    c["down_block_types"] = down;
    c["up_block_types"] = up;
    c["mid_block_type"] = a.mid_attention ? json("UNetMidBlock2DCrossAttn") : json("UNetMidBlock2D");
    bool same_depth = true;
    for (int d : a.depth) same_depth = same_depth && d == a.depth[0];
    if (a.mid_attention && a.mid_depth != a.depth.back())
      b.fail(std::string(kUnetPrefix) + "middle_block.1.transformer_blocks.0.norm1.weight",
             "mid-block transformer depth " + std::to_string(a.mid_depth) + " differs from the last level's " +
                 std::to_string(a.depth.back()) + " (not expressible in a diffusers config)");
    c["transformer_layers_per_block"] = same_depth ? json(a.depth[0]) : json(a.depth);
    if (a.context_dim) c["cross_attention_dim"] = a.context_dim;
    c["use_linear_projection"] = a.linear_proj;
    // Attention heads: explicit override, then the yaml, then the family's published setting.
    std::optional<int64_t> heads, head_ch;
    if (ov.unet_heads) heads = *ov.unet_heads;
    else if (ov.unet_head_channels) head_ch = *ov.unet_head_channels;
    else if (auto hc = yaml.find_int("num_head_channels"); hc && *hc > 0) head_ch = *hc;
    else if (auto nh = yaml.find_int("num_heads"); nh && *nh > 0) heads = *nh;
    else if (fam == SingleFileFamily::SD1) heads = 8;
    else head_ch = 64;
    if (heads) {
      c["attention_head_dim"] = *heads;
    } else {
      json per = json::array();
      for (size_t lv = 0; lv < a.channels.size(); ++lv) {
        if (*head_ch <= 0 || a.channels[lv] % *head_ch != 0)
          throw UnsupportedError(file + ": UNet width " + std::to_string(a.channels[lv]) +
                                 " is not a multiple of num_head_channels " + std::to_string(*head_ch));
        per.push_back(a.channels[lv] / *head_ch);
      }
      c["attention_head_dim"] = per;
    }
    c["norm_num_groups"] = ov.unet_norm_num_groups.value_or(32);
    c["upcast_attention"] = ov.unet_upcast_attention.value_or(fam == SingleFileFamily::SD2);
    int sample = fam == SingleFileFamily::SDXL ? 128 : (fam == SingleFileFamily::SD2 && prediction == "v_prediction") ? 96 : 64;
    c["sample_size"] = ov.unet_sample_size.value_or(sample);
    if (a.adm_in_channels) {
      if (fam != SingleFileFamily::SDXL)
        b.fail(std::string(kUnetPrefix) + "label_emb.0.0.weight", "a class/ADM embedding in an " + std::string(family_name(fam)) + " UNet");
      int64_t t = 256;
      if (ov.unet_addition_time_embed_dim) t = *ov.unet_addition_time_embed_dim;
      else if (auto od = yaml.find_int("outdim")) t = *od;
      else if (te2_projection && (*a.adm_in_channels - *te2_projection) > 0 && (*a.adm_in_channels - *te2_projection) % 6 == 0)
        t = (*a.adm_in_channels - *te2_projection) / 6;
      c["addition_embed_type"] = "text_time";
      c["addition_time_embed_dim"] = t;
      c["projection_class_embeddings_input_dim"] = *a.adm_in_channels;
    } else if (fam == SingleFileFamily::SDXL) {
      b.fail(std::string(kUnetPrefix) + "label_emb.0.0.weight", "an SDXL UNet needs its size/crop embedding (label_emb)");
    }
    plan.configs["unet"] = c;
    std::vector<int64_t> att;
    for (bool x : a.attention) att.push_back(x ? 1 : 0);
    summary += "; UNet: levels " + list_str(a.channels) + ", " + std::to_string(a.layers) + " ResBlocks/level, attention " +
               list_str(att) + ", depth " + list_str(std::vector<int64_t>(a.depth.begin(), a.depth.end())) + ", context " +
               std::to_string(a.context_dim) + (a.linear_proj ? ", linear proj" : ", conv proj") +
               (a.adm_in_channels ? ", adm " + std::to_string(*a.adm_in_channels) : "");
  }
  // ------------------------------------------------------------------------------------------- VAE
  if (wanted("vae")) {
    auto a = infer_vae(b);
    map_vae(b, a, plan.ignored);
    json c = vae_template();
    c["in_channels"] = a.in_channels;
    c["out_channels"] = a.out_channels;
    c["latent_channels"] = a.latent;
    c["layers_per_block"] = a.layers;
    c["block_out_channels"] = a.channels;
    c["down_block_types"] = json(std::vector<std::string>(a.levels, "DownEncoderBlock2D"));
    c["up_block_types"] = json(std::vector<std::string>(a.levels, "UpDecoderBlock2D"));
    c["norm_num_groups"] = ov.vae_norm_num_groups.value_or(32);
    double scale = fam == SingleFileFamily::SDXL ? 0.13025 : 0.18215;
    if (auto sf = yaml.find_double("model.params.scale_factor")) scale = *sf;
    c["scaling_factor"] = ov.vae_scaling_factor.value_or(scale);
    int sample = fam == SingleFileFamily::SDXL ? 1024 : (fam == SingleFileFamily::SD2 && prediction == "v_prediction") ? 768 : 512;
    c["sample_size"] = ov.vae_sample_size.value_or(sample);
    plan.configs["vae"] = c;
    summary += "; VAE: channels " + list_str(a.channels) + ", " + std::to_string(a.layers) + " ResBlocks/level, z " +
               std::to_string(a.latent);
  }
  // --------------------------------------------------------------------------------- text encoders
  if (wanted("text_encoder")) {
    if (fam == SingleFileFamily::SD2) {
      const std::string P = kSd2TextPrefix;
      auto a = infer_openclip(b, P);
      int keep = a.file_layers - 1;  // published SD 2.x: the penultimate layer's output
      if (auto layer = yaml.find("cond_stage_config.params.layer")) keep = *layer == "last" ? a.file_layers : a.file_layers - 1;
      if (ov.text_encoder_layers) keep = *ov.text_encoder_layers;
      if (keep < 1 || keep > a.file_layers)
        throw UnsupportedError(file + ": text_encoder_layers " + std::to_string(keep) + " outside 1.." + std::to_string(a.file_layers));
      map_openclip(b, "text_encoder", P, keep, false, plan.ignored);
      plan.configs["text_encoder"] = clip_config(a, keep, ov.text_encoder_heads.value_or(static_cast<int>(a.hidden / 64)),
                                                 ov.text_encoder_act.value_or("gelu"), false,
                                                 a.projection ? std::optional<int64_t>(512) : std::nullopt);
      summary += "; text encoder: OpenCLIP width " + std::to_string(a.hidden) + ", " + std::to_string(keep) + " of " +
                 std::to_string(a.file_layers) + " layers";
    } else {
      const std::string P = fam == SingleFileFamily::SD1 ? kSd1TextPrefix : kXlText1Prefix;
      // Files written by old transformers lack the "text_model." level.
      const std::string tm = has_prefix(keys, P + "text_model.") ? "text_model." : "";
      auto a = infer_clip(b, P, tm);
      int keep = ov.text_encoder_layers.value_or(a.file_layers);
      if (keep < 1 || keep > a.file_layers)
        throw UnsupportedError(file + ": text_encoder_layers " + std::to_string(keep) + " outside 1.." + std::to_string(a.file_layers));
      map_clip(b, "text_encoder", P, tm, keep, plan.ignored);
      plan.configs["text_encoder"] = clip_config(a, keep, ov.text_encoder_heads.value_or(12),
                                                 ov.text_encoder_act.value_or("quick_gelu"), false, std::nullopt);
      summary += "; text encoder: CLIP width " + std::to_string(a.hidden) + ", " + std::to_string(keep) + " layers";
    }
  }
  if (wanted("text_encoder_2")) {
    const std::string P = kXlText2Prefix;
    auto a = infer_openclip(b, P);
    if (!a.projection) b.fail(P + "text_projection", "required tensor is missing (SDXL's pooled text projection)");
    map_openclip(b, "text_encoder_2", P, a.file_layers, true, plan.ignored);
    plan.configs["text_encoder_2"] = clip_config(a, a.file_layers, ov.text_encoder_2_heads.value_or(static_cast<int>(a.hidden / 64)),
                                                 ov.text_encoder_2_act.value_or("gelu"), true, a.projection);
    summary += "; text encoder 2: OpenCLIP width " + std::to_string(a.hidden) + ", " + std::to_string(a.file_layers) +
               " layers, projection " + std::to_string(*a.projection);
  }
  json sched = scheduler_template(fam);
  sched["prediction_type"] = prediction;
  plan.configs["scheduler"] = sched;
  for (const auto& c : want) plan.components.push_back(c);
  size_t mapped = 0;
  for (const auto& [c, m] : plan.sources) {
    std::set<std::string> used;
    for (const auto& [n, s] : m) used.insert(s.file_key);
    mapped += used.size();
  }
  summary += "; prediction " + prediction + "; " + std::to_string(mapped) + " tensors mapped, " +
             std::to_string(plan.ignored.size()) + " ignored" +
             (plan.not_requested.empty() ? "" : ", " + std::to_string(plan.not_requested.size()) + " of other components");
  plan.summary = summary;
  return plan;
}

at::Tensor apply_source(const SafetensorsFile& file, const TensorSource& src) {
  auto v = file.view(src.file_key);
  switch (src.transform) {
    case SourceTransform::None: return v;
    case SourceTransform::Conv1x1ToLinear: return v.dim() == 4 ? v.reshape({v.size(0), v.size(1)}) : v;  // [C, C, 1, 1] → [C, C]
    case SourceTransform::SplitQ: return v.narrow(0, 0, v.size(0) / 3);
    case SourceTransform::SplitK: return v.narrow(0, v.size(0) / 3, v.size(0) / 3);
    case SourceTransform::SplitV: return v.narrow(0, 2 * (v.size(0) / 3), v.size(0) / 3);
    case SourceTransform::Transpose: return v.t();  // [h, p] → [p, h]
  }
  return v;
}

bool is_single_file_checkpoint(const SafetensorsFile& file) {
  for (const auto& t : file.tensors())
    for (const char* p : {kUnetPrefix, kVaePrefix, "cond_stage_model.", "conditioner.embedders."})
      if (starts_with(t.name, p)) return true;
  return false;
}

SingleFileCheckpoint load_single_file(const fs::path& path, const SingleFileOverrides& ov,
                                      std::optional<c10::ScalarType> dtype) {
  SingleFileCheckpoint ck;
  ck.file = SafetensorsFile::open(path);
  KeyShapes keys;
  for (const auto& t : ck.file->tensors()) keys.emplace(t.name, t.shape);
  std::string yaml_text;
  if (!ov.original_config.empty()) {
    if (!fs::exists(ov.original_config)) throw ModelLoadError(ov.original_config.string(), "", "original config not found");
    yaml_text = read_file(ov.original_config);
  } else if (ov.use_original_config) {
    for (auto cand : {path.parent_path() / "original_config.yaml", fs::path(path).replace_extension(".yaml")})
      if (fs::exists(cand)) {
        yaml_text = read_file(cand);
        break;
      }
  }
  ck.plan = plan_single_file(keys, path.string(), ov, yaml_text);
  ck.family = ck.plan.family;
  for (const auto& [comp, m] : ck.plan.sources) {
    auto& out = ck.components[comp];
    for (const auto& [name, src] : m) {
      auto t = apply_source(*ck.file, src);
      if (dtype && c10::isFloatingType(t.scalar_type()) && t.scalar_type() != *dtype) t = t.to(*dtype);
      out.emplace(name, std::move(t));
    }
  }
  spdlog::info("{}: {}", path.string(), ck.plan.summary);
  return ck;
}

}  // namespace clipgen::io
