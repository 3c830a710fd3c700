#include "models/unet_spatio_temporal_condition.h"

#include <set>

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/io/config_json.h"
#include "models/io/diffusers_folder.h"
#include "models/io/load_component.h"
#include "models/io/state_dict.h"

namespace clipgen {

UNetSpatioTemporalConditionConfig UNetSpatioTemporalConditionConfig::from_json(const nlohmann::json& j,
                                                                               const std::string& source) {
  const io::ConfigJson cj(source, "UNetSpatioTemporalConditionModel");
  UNetSpatioTemporalConditionConfig c;
  if (!j.is_object()) throw UnsupportedError(source + ": UNetSpatioTemporalConditionModel config is not a JSON object");
  if (j.contains("_class_name") && j["_class_name"] != "UNetSpatioTemporalConditionModel")
    cj.unsupported("_class_name", j["_class_name"], "expected UNetSpatioTemporalConditionModel");
  std::vector<int64_t> layers{2}, cross{1024}, tlayers{1}, heads{5, 10, 20, 20};
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const auto& v = it.value();
    if (k.starts_with("_")) continue;
    if (k == "in_channels") c.in_channels = cj.positive_int(v, k);
    else if (k == "out_channels") c.out_channels = cj.positive_int(v, k);
    else if (k == "down_block_types" || k == "up_block_types") {
      if (!v.is_array() || v.empty()) cj.unsupported(k, v, "expected a list of block names");
      std::vector<std::string> names;
      for (const auto& e : v) {
        if (!e.is_string()) cj.unsupported(k, v, "expected a list of block names");
        names.push_back(e.get<std::string>());
      }
      (k == "down_block_types" ? c.down_block_types : c.up_block_types) = names;
    } else if (k == "block_out_channels") {
      c.block_out_channels = cj.int_or_list(v, k);
      if (!v.is_array()) cj.unsupported(k, v, "expected a list");
    } else if (k == "addition_time_embed_dim") c.addition_time_embed_dim = cj.positive_int(v, k);
    else if (k == "projection_class_embeddings_input_dim") c.projection_class_embeddings_input_dim = cj.positive_int(v, k);
    else if (k == "layers_per_block") layers = cj.int_or_list(v, k);
    else if (k == "cross_attention_dim") cross = cj.int_or_list(v, k);
    else if (k == "transformer_layers_per_block") {
      if (v.is_array())
        for (const auto& e : v)
          if (!e.is_number_integer()) cj.unsupported(k, v, "nested per-layer lists are not supported");
      tlayers = cj.int_or_list(v, k);
    } else if (k == "num_attention_heads") heads = cj.int_or_list(v, k);
    else if (k == "num_frames") c.num_frames = cj.positive_int(v, k);
    else if (k == "sample_size") {
      if (v.is_number_integer()) c.sample_size = v.get<int64_t>();
      else if (!v.is_null() && !v.is_array()) cj.unsupported(k, v);
    } else if (k == "dropout") {
      if (!v.is_number()) cj.unsupported(k, v);  // training only
    } else {
      cj.unsupported(k, v, "unknown key");
    }
  }
  const size_t n = c.block_out_channels.size();
  for (auto ch : c.block_out_channels)
    if (ch <= 0 || ch % 32 != 0)
      cj.unsupported("block_out_channels", nlohmann::json(c.block_out_channels),
                  "every entry must be a positive multiple of the 32 GroupNorm groups");
  if (c.down_block_types.size() != n)
    cj.unsupported("down_block_types", nlohmann::json(c.down_block_types), "must match block_out_channels");
  if (c.up_block_types.size() != n)
    cj.unsupported("up_block_types", nlohmann::json(c.up_block_types), "must match block_out_channels");
  for (const auto& t : c.down_block_types)
    if (t != "CrossAttnDownBlockSpatioTemporal" && t != "DownBlockSpatioTemporal")
      cj.unsupported("down_block_types", nlohmann::json(t));
  for (const auto& t : c.up_block_types)
    if (t != "CrossAttnUpBlockSpatioTemporal" && t != "UpBlockSpatioTemporal")
      cj.unsupported("up_block_types", nlohmann::json(t));
  auto per_block = [&](std::vector<int64_t> v, const char* key) {
    if (v.size() == 1) v.assign(n, v[0]);
    if (v.size() != n) cj.unsupported(key, nlohmann::json(v), "needs one entry per block");
    for (auto e : v)
      if (e <= 0) cj.unsupported(key, nlohmann::json(v), "entries must be positive");
    return v;
  };
  c.layers_per_block = per_block(layers, "layers_per_block");
  c.cross_attention_dim = per_block(cross, "cross_attention_dim");
  c.transformer_layers_per_block = per_block(tlayers, "transformer_layers_per_block");
  c.num_attention_heads = per_block(heads, "num_attention_heads");
  for (size_t i = 0; i < n; ++i)
    if (c.block_out_channels[i] % c.num_attention_heads[i] != 0)
      cj.unsupported("num_attention_heads", nlohmann::json(c.num_attention_heads),
                  "must divide block_out_channels[" + std::to_string(i) + "]");
  if (c.projection_class_embeddings_input_dim % c.addition_time_embed_dim != 0)
    cj.unsupported("projection_class_embeddings_input_dim", c.projection_class_embeddings_input_dim,
                "must be a multiple of addition_time_embed_dim");
  return c;
}

UNetSpatioTemporalConditionModelImpl::UNetSpatioTemporalConditionModelImpl(const UNetSpatioTemporalConditionConfig& cfg)
    : cfg_(cfg) {
  const auto& ch = cfg.block_out_channels;
  const size_t n = ch.size();
  const int64_t temb = 4 * ch[0];
  conv_in = register_module("conv_in", blocks::Conv2d(blocks::Conv2dOptions{cfg.in_channels, ch[0], 3, 1, 1}));
  time_proj = register_module("time_proj", blocks::Timesteps(blocks::TimestepsOptions{ch[0], true, 0.0}));
  blocks::TimestepEmbeddingOptions te;
  te.in_channels = ch[0];
  te.time_embed_dim = temb;
  time_embedding = register_module("time_embedding", blocks::TimestepEmbedding(te));
  add_time_proj = register_module(
      "add_time_proj", blocks::Timesteps(blocks::TimestepsOptions{cfg.addition_time_embed_dim, true, 0.0}));
  te.in_channels = cfg.projection_class_embeddings_input_dim;
  add_embedding = register_module("add_embedding", blocks::TimestepEmbedding(te));

  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  int64_t out = ch[0];
  for (size_t i = 0; i < n; ++i) {
    blocks::SpatioTemporalBlockOptions o;
    o.in_channels = out;
    out = ch[i];
    o.out_channels = out;
    o.temb_channels = temb;
    o.num_layers = cfg.layers_per_block[i];
    o.transformer_layers = cfg.transformer_layers_per_block[i];
    o.num_attention_heads = cfg.num_attention_heads[i];
    o.cross_attention_dim = cfg.cross_attention_dim[i];
    o.add_downsample = i + 1 < n;
    if (cfg.down_block_types[i] == "CrossAttnDownBlockSpatioTemporal") {
      auto b = blocks::CrossAttnDownBlockSpatioTemporal(o);
      down_.push_back(b.ptr());
      down_blocks->push_back(b);
    } else {
      auto b = blocks::DownBlockSpatioTemporal(o);
      down_.push_back(b.ptr());
      down_blocks->push_back(b);
    }
  }

  blocks::SpatioTemporalBlockOptions m;
  m.in_channels = m.out_channels = ch.back();
  m.temb_channels = temb;
  m.num_layers = 1;
  m.transformer_layers = cfg.transformer_layers_per_block.back();
  m.num_attention_heads = cfg.num_attention_heads.back();
  m.cross_attention_dim = cfg.cross_attention_dim.back();
  mid_block = register_module("mid_block", blocks::UNetMidBlockSpatioTemporal(m));

  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  out = ch.back();
  for (size_t i = 0; i < n; ++i) {
    const size_t r = n - 1 - i;  // reversed index
    blocks::SpatioTemporalBlockOptions o;
    o.prev_output_channel = out;
    out = ch[r];
    o.out_channels = out;
    o.in_channels = ch[r == 0 ? 0 : r - 1];  // reversed_block_out_channels[min(i + 1, n − 1)]
    o.temb_channels = temb;
    o.num_layers = cfg.layers_per_block[r] + 1;
    o.transformer_layers = cfg.transformer_layers_per_block[r];
    o.num_attention_heads = cfg.num_attention_heads[r];
    o.cross_attention_dim = cfg.cross_attention_dim[r];
    o.add_upsample = i + 1 < n;
    if (cfg.up_block_types[i] == "CrossAttnUpBlockSpatioTemporal") {
      auto b = blocks::CrossAttnUpBlockSpatioTemporal(o);
      up_.push_back(b.ptr());
      up_blocks->push_back(b);
    } else {
      auto b = blocks::UpBlockSpatioTemporal(o);
      up_.push_back(b.ptr());
      up_blocks->push_back(b);
    }
  }
  conv_norm_out = register_module("conv_norm_out",
                                  torch::nn::GroupNorm(torch::nn::GroupNormOptions(32, ch[0]).eps(1e-5)));
  conv_out = register_module("conv_out", blocks::Conv2d(blocks::Conv2dOptions{ch[0], cfg.out_channels, 3, 1, 1}));
}

at::Tensor UNetSpatioTemporalConditionModelImpl::forward(const at::Tensor& sample, const at::Tensor& timestep,
                                                         const at::Tensor& encoder_hidden_states,
                                                         const at::Tensor& added_time_ids,
                                                         const UNetSpatioTemporalTrace& trace) {
  auto note = [&](const char* name, const at::Tensor& v) {
    if (trace) trace(name, v);
  };
  TORCH_CHECK(sample.dim() == 5 && sample.size(2) == cfg_.in_channels,
              "UNetSpatioTemporalConditionModel: sample must be [B, F, ", cfg_.in_channels, ", H, W], got ",
              sample.sizes());
  const int64_t B = sample.size(0), F = sample.size(1), H = sample.size(3), W = sample.size(4);
  const int64_t mult = int64_t{1} << (cfg_.block_out_channels.size() - 1);
  if (H % mult != 0 || W % mult != 0)
    throw UnsupportedError("UNetSpatioTemporalConditionModel: latent size " + std::to_string(H) + "x" +
                           std::to_string(W) + " must be divisible by " + std::to_string(mult) +
                           " (the up blocks upsample by exactly 2)");
  TORCH_CHECK(encoder_hidden_states.dim() == 3 && encoder_hidden_states.size(0) == B,
              "UNetSpatioTemporalConditionModel: encoder_hidden_states must be [B, L, D], got ",
              encoder_hidden_states.sizes());
  TORCH_CHECK(added_time_ids.dim() == 2 && added_time_ids.size(0) == B &&
                  added_time_ids.size(1) * cfg_.addition_time_embed_dim == cfg_.projection_class_embeddings_input_dim,
              "UNetSpatioTemporalConditionModel: added_time_ids must be [B, ",
              cfg_.projection_class_embeddings_input_dim / cfg_.addition_time_embed_dim, "], got ",
              added_time_ids.sizes());

  // 1. Time embedding: t broadcast to the batch.
  auto t = timestep.dim() == 0 ? timestep.reshape({1}) : timestep;
  TORCH_CHECK(t.dim() == 1 && (t.size(0) == 1 || t.size(0) == B),
              "UNetSpatioTemporalConditionModel: timestep must be 0-d, [1] or [B], got ", timestep.sizes());
  t = t.to(sample.device()).expand({B});
  auto t_emb = time_proj(t).to(sample.scalar_type());  // [B, C0]
  note("time_proj", t_emb);
  auto emb = time_embedding(t_emb);                     // [B, 4·C0]
  note("time_embedding", emb);
  auto time_embeds = add_time_proj(added_time_ids.flatten());  // [B·N, addition_time_embed_dim]
  note("add_time_proj", time_embeds);
  auto aug = add_embedding(time_embeds.reshape({B, -1}).to(emb.scalar_type()));  // [B, 4·C0]
  note("add_embedding", aug);
  emb = emb + aug;

  // 2. Frames into the batch: row b·F + f.
  auto x = sample.flatten(0, 1);                                         // [B·F, Cin, H, W]
  emb = emb.repeat_interleave(F, 0);                                     // [B·F, 4·C0]
  auto context = encoder_hidden_states.repeat_interleave(F, 0);          // [B·F, L, D]
  auto indicator = torch::zeros({B, F}, sample.options());               // image_only_indicator: all video

  x = conv_in(x);
  note("conv_in", x);
  blocks::SkipList skips{x};
  for (size_t i = 0; i < down_.size(); ++i) {
    x = down_[i]->forward(x, emb, context, indicator, skips);
    if (trace) trace("down_blocks." + std::to_string(i), x);
  }
  x = mid_block(x, emb, context, indicator);
  note("mid_block", x);
  for (size_t i = 0; i < up_.size(); ++i) {
    x = up_[i]->forward(x, skips, emb, context, indicator);
    if (trace) trace("up_blocks." + std::to_string(i), x);
  }
  x = conv_norm_out(x);
  note("conv_norm_out", x);
  x = conv_out(at::silu(x));
  note("conv_out", x);
  return x.reshape({B, F, x.size(1), H, W});  // [B, F, out, H, W]
}

at::Tensor UNetSpatioTemporalConditionModelImpl::forward(const at::Tensor& sample, double timestep,
                                                         const at::Tensor& encoder_hidden_states,
                                                         const at::Tensor& added_time_ids) {
  return forward(sample, torch::tensor(timestep, torch::kFloat), encoder_hidden_states, added_time_ids);
}

UNetSpatioTemporalConditionModel load_unet_spatio_temporal_condition(const std::filesystem::path& folder) {
  return io::load_component<UNetSpatioTemporalConditionModel, UNetSpatioTemporalConditionConfig>(folder);
}

}  // namespace clipgen
