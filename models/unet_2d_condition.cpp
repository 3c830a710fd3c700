#include "models/unet_2d_condition.h"

#include <set>

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/io/config_json.h"
#include "models/io/diffusers_folder.h"
#include "models/io/load_component.h"
#include "models/io/state_dict.h"

namespace clipgen {

namespace {

bool is_null_or(const nlohmann::json& v, const nlohmann::json& ok) { return v.is_null() || v == ok; }

}  // namespace

UNet2DConditionConfig UNet2DConditionConfig::from_json(const nlohmann::json& j, const std::string& source) {
  const io::ConfigJson cj(source, "UNet2DConditionModel");
  UNet2DConditionConfig c;
  if (!j.is_object()) throw UnsupportedError(source + ": UNet config is not a JSON object");
  std::optional<std::vector<int64_t>> heads, head_dim;
  // Keys whose value only matters for training or for Python-side behaviour clipgen does not need.
  static const std::set<std::string> ignored = {"sample_size", "dropout", "addition_embed_type_num_heads"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const auto& v = it.value();
    if (k.starts_with("_") || ignored.count(k)) continue;
    try {
    if (k == "in_channels") c.in_channels = v.get<int64_t>();
    else if (k == "out_channels") c.out_channels = v.get<int64_t>();
    else if (k == "center_input_sample") {
      if (!v.is_null()) c.center_input_sample = v.get<bool>();
    }
    else if (k == "flip_sin_to_cos") {
      if (!v.is_null()) c.flip_sin_to_cos = v.get<bool>();
    }
    else if (k == "freq_shift") c.freq_shift = v.get<double>();
    else if (k == "down_block_types") c.down_block_types = v.get<std::vector<std::string>>();
    else if (k == "up_block_types") c.up_block_types = v.get<std::vector<std::string>>();
    else if (k == "mid_block_type") {
      if (v != "UNetMidBlock2DCrossAttn") cj.unsupported(k, v);
    } else if (k == "block_out_channels") c.block_out_channels = v.get<std::vector<int64_t>>();
    else if (k == "layers_per_block") c.layers_per_block = cj.int_or_list(v, k);
    else if (k == "downsample_padding") c.downsample_padding = v.get<int64_t>();
    else if (k == "mid_block_scale_factor") c.mid_block_scale_factor = v.get<double>();
    else if (k == "act_fn") {
      if (v != "silu" && v != "swish") cj.unsupported(k, v);
    } else if (k == "norm_num_groups") {
      if (!v.is_number_integer()) cj.unsupported(k, v);
      c.norm_num_groups = v.get<int64_t>();
    } else if (k == "norm_eps") c.norm_eps = v.get<double>();
    else if (k == "cross_attention_dim") {
      if (!v.is_number_integer()) cj.unsupported(k, v, "per-block cross_attention_dim lists are not supported");
      c.cross_attention_dim = v.get<int64_t>();
    } else if (k == "transformer_layers_per_block") {
      if (!v.is_number_integer() && !v.is_array()) cj.unsupported(k, v);
      if (v.is_array())
        for (const auto& e : v)
          if (!e.is_number_integer()) cj.unsupported(k, v, "nested per-layer lists are not supported");
      c.transformer_layers_per_block = cj.int_or_list(v, k);
    } else if (k == "reverse_transformer_layers_per_block") {
      if (!v.is_null()) cj.unsupported(k, v);
    } else if (k == "attention_head_dim") {
      if (!v.is_null()) head_dim = cj.int_or_list(v, k);
    } else if (k == "num_attention_heads") {
      if (!v.is_null()) heads = cj.int_or_list(v, k);
    } else if (k == "use_linear_projection") {
      if (!v.is_null()) c.use_linear_projection = v.get<bool>();
    }
    else if (k == "upcast_attention") {
      if (!v.is_null()) c.upcast_attention = v.get<bool>();
    }
    else if (k == "time_embedding_dim") {
      if (!v.is_null()) c.time_embedding_dim = v.get<int64_t>();
    } else if (k == "conv_in_kernel" || k == "conv_out_kernel") {
      if (!v.is_number_integer() || v.get<int64_t>() % 2 == 0) cj.unsupported(k, v);
      (k == "conv_in_kernel" ? c.conv_in_kernel : c.conv_out_kernel) = v.get<int64_t>();
    } else if (k == "addition_embed_type") {
      if (!is_null_or(v, "text_time")) cj.unsupported(k, v, "only \"text_time\" (SDXL) is supported");
      if (!v.is_null()) c.addition_embed_type = v.get<std::string>();
    } else if (k == "addition_time_embed_dim") {
      if (!v.is_null()) c.addition_time_embed_dim = v.get<int64_t>();
    } else if (k == "projection_class_embeddings_input_dim") {
      if (!v.is_null()) c.projection_class_embeddings_input_dim = v.get<int64_t>();
    } else if (k == "only_cross_attention" || k == "dual_cross_attention" || k == "class_embeddings_concat" ||
               k == "mid_block_only_cross_attention") {
      if (!is_null_or(v, false)) cj.unsupported(k, v);
    } else if (k == "attention_type") {
      if (!is_null_or(v, "default")) cj.unsupported(k, v);
    } else if (k == "time_embedding_type") {
      if (!is_null_or(v, "positional")) cj.unsupported(k, v);
    } else if (k == "resnet_time_scale_shift") {
      if (!is_null_or(v, "default")) cj.unsupported(k, v);
    } else if (k == "resnet_out_scale_factor") {
      if (!v.is_null() && v.get<double>() != 1.0) cj.unsupported(k, v);
    } else if (k == "resnet_skip_time_act") {
      if (!is_null_or(v, false)) cj.unsupported(k, v);
    } else if (k == "class_embed_type" || k == "num_class_embeds" || k == "encoder_hid_dim" ||
               k == "encoder_hid_dim_type" || k == "time_cond_proj_dim" || k == "time_embedding_act_fn" ||
               k == "timestep_post_act" || k == "cross_attention_norm") {
      if (!v.is_null()) cj.unsupported(k, v);
    } else if (!v.is_null() && v != false) {
      cj.unsupported(k, v, "unknown key");
    }
    } catch (const nlohmann::json::exception& e) {
      cj.unsupported(k, v, std::string("wrong type: ") + e.what());
    }
  }
  // In SD configs `attention_head_dim` is the number of heads (diffusers: num_attention_heads or attention_head_dim).
  c.num_attention_heads = heads ? *heads : head_dim ? *head_dim : std::vector<int64_t>{8};
  const size_t n = c.block_out_channels.size();
  if (n == 0) cj.unsupported("block_out_channels", j.value("block_out_channels", nlohmann::json()));
  if (c.down_block_types.size() != n) cj.unsupported("down_block_types", j["down_block_types"], "must match block_out_channels");
  if (c.up_block_types.size() != n) cj.unsupported("up_block_types", j["up_block_types"], "must match block_out_channels");
  for (const auto& t : c.down_block_types)
    if (t != "CrossAttnDownBlock2D" && t != "DownBlock2D") cj.unsupported("down_block_types[]", t);
  for (const auto& t : c.up_block_types)
    if (t != "CrossAttnUpBlock2D" && t != "UpBlock2D") cj.unsupported("up_block_types[]", t);
  auto per_block = [&](const std::vector<int64_t>& v, const char* key) {
    if (v.size() != 1 && v.size() != n) cj.unsupported(key, nlohmann::json(v), "needs one entry per block");
  };
  per_block(c.layers_per_block, "layers_per_block");
  per_block(c.transformer_layers_per_block, "transformer_layers_per_block");
  per_block(c.num_attention_heads, heads ? "num_attention_heads" : "attention_head_dim");
  if (c.addition_embed_type == "text_time" &&
      (c.addition_time_embed_dim <= 0 || c.projection_class_embeddings_input_dim <= 0))
    cj.unsupported("addition_embed_type", "text_time",
                "needs addition_time_embed_dim and projection_class_embeddings_input_dim");
  return c;
}

int64_t UNet2DConditionConfig::heads(size_t b) const {
  return num_attention_heads.size() == 1 ? num_attention_heads[0] : num_attention_heads.at(b);
}
int64_t UNet2DConditionConfig::layers(size_t b) const {
  return layers_per_block.size() == 1 ? layers_per_block[0] : layers_per_block.at(b);
}
int64_t UNet2DConditionConfig::transformer_layers(size_t b) const {
  return transformer_layers_per_block.size() == 1 ? transformer_layers_per_block[0] : transformer_layers_per_block.at(b);
}

UNet2DConditionModelImpl::UNet2DConditionModelImpl(const UNet2DConditionConfig& cfg) : cfg_(cfg) {
  const auto& ch = cfg.block_out_channels;
  const size_t n = ch.size();
  const int64_t temb = cfg.time_embedding_dim > 0 ? cfg.time_embedding_dim : ch[0] * 4;
  conv_in = register_module(
      "conv_in", blocks::Conv2d(blocks::Conv2dOptions{cfg.in_channels, ch[0], cfg.conv_in_kernel, 1, (cfg.conv_in_kernel - 1) / 2}));
  time_proj = register_module("time_proj", blocks::Timesteps(blocks::TimestepsOptions{ch[0], cfg.flip_sin_to_cos, cfg.freq_shift}));
  time_embedding = register_module("time_embedding", blocks::TimestepEmbedding(blocks::TimestepEmbeddingOptions{ch[0], temb}));
  if (cfg.addition_embed_type == "text_time") {
    add_time_proj = register_module(
        "add_time_proj", blocks::Timesteps(blocks::TimestepsOptions{cfg.addition_time_embed_dim, cfg.flip_sin_to_cos, cfg.freq_shift}));
    add_embedding = register_module(
        "add_embedding", blocks::TimestepEmbedding(blocks::TimestepEmbeddingOptions{cfg.projection_class_embeddings_input_dim, temb}));
  }

  auto base = [&] {
    blocks::UNetBlockOptions b;
    b.temb_channels = temb;
    b.resnet_eps = cfg.norm_eps;
    b.resnet_act_fn = "silu";
    b.resnet_groups = cfg.norm_num_groups;
    b.downsample_padding = cfg.downsample_padding;
    b.cross_attention_dim = cfg.cross_attention_dim;
    b.use_linear_projection = cfg.use_linear_projection;
    b.upcast_attention = cfg.upcast_attention;
    return b;
  };

  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  int64_t out = ch[0];
  for (size_t i = 0; i < n; ++i) {
    auto b = base();
    b.in_channels = out;
    out = ch[i];
    b.out_channels = out;
    b.num_layers = cfg.layers(i);
    b.transformer_layers_per_block = {cfg.transformer_layers(i)};
    b.num_attention_heads = cfg.heads(i);
    b.add_downsample = i + 1 < n;
    std::shared_ptr<blocks::DownBlock2DImpl> blk;
    if (cfg.down_block_types[i] == "CrossAttnDownBlock2D")
      blk = std::make_shared<blocks::CrossAttnDownBlock2DImpl>(b);
    else
      blk = std::make_shared<blocks::DownBlock2DImpl>(b);
    down_.push_back(blk);
    down_blocks->push_back(blk);
  }

  {
    auto b = base();
    b.in_channels = ch.back();
    b.out_channels = ch.back();
    b.num_layers = 1;
    b.transformer_layers_per_block = {cfg.transformer_layers(n - 1)};
    b.num_attention_heads = cfg.heads(n - 1);
    b.output_scale_factor = cfg.mid_block_scale_factor;
    mid_block = register_module("mid_block", blocks::UNetMidBlock2DCrossAttn(b));
  }

  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  out = ch[n - 1];
  for (size_t i = 0; i < n; ++i) {
    const size_t r = n - 1 - i;  // the matching down block
    auto b = base();
    b.prev_output_channel = out;
    out = ch[r];
    b.out_channels = out;
    b.in_channels = ch[r == 0 ? 0 : r - 1];
    b.num_layers = cfg.layers(r) + 1;
    b.transformer_layers_per_block = {cfg.transformer_layers(r)};
    b.num_attention_heads = cfg.heads(r);
    b.add_upsample = i + 1 < n;
    std::shared_ptr<blocks::UpBlock2DImpl> blk;
    if (cfg.up_block_types[i] == "CrossAttnUpBlock2D")
      blk = std::make_shared<blocks::CrossAttnUpBlock2DImpl>(b);
    else
      blk = std::make_shared<blocks::UpBlock2DImpl>(b);
    up_.push_back(blk);
    up_blocks->push_back(blk);
  }

  conv_norm_out = register_module(
      "conv_norm_out", torch::nn::GroupNorm(torch::nn::GroupNormOptions(cfg.norm_num_groups, ch[0]).eps(cfg.norm_eps)));
  conv_out = register_module(
      "conv_out", blocks::Conv2d(blocks::Conv2dOptions{ch[0], cfg.out_channels, cfg.conv_out_kernel, 1, (cfg.conv_out_kernel - 1) / 2}));
}

at::Tensor UNet2DConditionModelImpl::forward(const at::Tensor& sample_in, const at::Tensor& timestep,
                                             const at::Tensor& context, const at::Tensor& text_embeds,
                                             const at::Tensor& time_ids, const UNetTrace& trace) {
  auto note = [&](const char* name, const at::Tensor& t) {
    if (trace) trace(name, t);
  };
  const int64_t B = sample_in.size(0);
  const int64_t up_factor = int64_t{1} << up_.size() >> 1;  // 2^(number of upsamplers)
  const bool forward_upsample_size = sample_in.size(2) % up_factor != 0 || sample_in.size(3) % up_factor != 0;
  auto sample = cfg_.center_input_sample ? 2 * sample_in - 1.0 : sample_in;

  // Timesteps: 0-d or [1] broadcast to the batch, [B] as given.
  auto t = timestep.dim() == 0 ? timestep.reshape({1}) : timestep;
  TORCH_CHECK(t.dim() == 1 && (t.size(0) == 1 || t.size(0) == B), "UNet2DConditionModel: timestep must be 0-d, [1] or [B], got ",
              timestep.sizes());
  t = t.to(sample.device()).expand({B});
  auto t_emb = time_proj(t).to(sample.scalar_type());  // [B, C0]
  note("time_proj", t_emb);
  auto emb = time_embedding(t_emb);  // [B, temb]
  note("time_embedding", emb);
  if (add_embedding) {
    if (!text_embeds.defined() || !time_ids.defined())
      throw Error("UNet2DConditionModel: addition_embed_type \"text_time\" needs text_embeds and time_ids");
    auto time_embeds = add_time_proj(time_ids.flatten());  // [B·6, add_dim]
    note("add_time_proj", time_embeds);
    time_embeds = time_embeds.reshape({text_embeds.size(0), -1});                         // [B, 6·add_dim]
    auto add = torch::cat({text_embeds, time_embeds}, -1).to(emb.scalar_type());          // [B, P + 6·add_dim]
    auto aug = add_embedding(add);
    note("add_embedding", aug);
    emb = emb + aug;
  }

  auto h = conv_in(sample);
  note("conv_in", h);
  blocks::SkipList skips{h};
  static const char* down_names[] = {"down_blocks.0", "down_blocks.1", "down_blocks.2", "down_blocks.3",
                                     "down_blocks.4", "down_blocks.5", "down_blocks.6", "down_blocks.7"};
  static const char* up_names[] = {"up_blocks.0", "up_blocks.1", "up_blocks.2", "up_blocks.3",
                                   "up_blocks.4", "up_blocks.5", "up_blocks.6", "up_blocks.7"};
  for (size_t i = 0; i < down_.size(); ++i) {
    h = down_[i]->forward(h, emb, context, skips);
    note(down_names[i % 8], h);
  }
  h = mid_block(h, emb, context);
  note("mid_block", h);
  for (size_t i = 0; i < up_.size(); ++i) {
    std::optional<std::vector<int64_t>> size;
    const size_t n_res = up_[i]->resnets->size();
    if (i + 1 < up_.size() && forward_upsample_size && skips.size() > n_res) {
      const auto& next = skips[skips.size() - n_res - 1];  // the skip the next block starts with
      size = std::vector<int64_t>{next.size(2), next.size(3)};
    }
    h = up_[i]->forward(h, skips, emb, context, size);
    note(up_names[i % 8], h);
  }
  h = conv_norm_out(h);
  note("conv_norm_out", h);
  h = conv_out(at::silu(h));
  note("conv_out", h);
  return h;
}

UNet2DConditionModel load_unet_2d_condition(const std::filesystem::path& folder) {
  return io::load_component<UNet2DConditionModel, UNet2DConditionConfig>(folder);
}

}  // namespace clipgen
