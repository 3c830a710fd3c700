#include "models/autoencoder_kl_temporal_decoder.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/io/config_json.h"
#include "models/io/diffusers_folder.h"
#include "models/io/load_component.h"
#include "models/io/state_dict.h"

namespace clipgen {

AutoencoderKLTemporalDecoderConfig AutoencoderKLTemporalDecoderConfig::from_json(const nlohmann::json& j,
                                                                                 const std::string& source) {
  const io::ConfigJson cj(source, "AutoencoderKLTemporalDecoder");
  AutoencoderKLTemporalDecoderConfig c;
  if (!j.is_object()) throw UnsupportedError(source + ": AutoencoderKLTemporalDecoder config is not a JSON object");
  if (j.contains("_class_name") && j["_class_name"] != "AutoencoderKLTemporalDecoder")
    cj.unsupported("_class_name", j["_class_name"], "expected AutoencoderKLTemporalDecoder");
  size_t n_down = 1;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const auto& v = it.value();
    if (k.starts_with("_")) continue;
    if (k == "in_channels") c.in_channels = cj.positive_int(v, k);
    else if (k == "out_channels") c.out_channels = cj.positive_int(v, k);
    else if (k == "latent_channels") c.latent_channels = cj.positive_int(v, k);
    else if (k == "layers_per_block") c.layers_per_block = cj.positive_int(v, k);
    else if (k == "down_block_types") {
      if (!v.is_array() || v.empty()) cj.unsupported(k, v, "expected a list of block names");
      for (const auto& e : v)
        if (e != "DownEncoderBlock2D") cj.unsupported(k, v, "only DownEncoderBlock2D is supported");
      n_down = v.size();
    } else if (k == "block_out_channels") {
      if (!v.is_array() || v.empty()) cj.unsupported(k, v, "expected a list of integers");
      c.block_out_channels.clear();
      for (const auto& e : v) {
        if (!e.is_number_integer() || e.get<int64_t>() <= 0 || e.get<int64_t>() % 32 != 0)
          cj.unsupported(k, v, "entries must be positive multiples of the 32 GroupNorm groups");
        c.block_out_channels.push_back(e.get<int64_t>());
      }
    } else if (k == "sample_size") {
      if (v.is_number_integer()) c.sample_size = v.get<int64_t>();
      else if (v.is_array() && !v.empty() && v[0].is_number_integer()) c.sample_size = v[0].get<int64_t>();
      else cj.unsupported(k, v);
    } else if (k == "scaling_factor") {
      if (!v.is_number() || v.get<double>() <= 0) cj.unsupported(k, v, "expected a positive number");
      c.scaling_factor = v.get<double>();
    } else if (k == "force_upcast") {
      if (!v.is_boolean() && !v.is_number()) cj.unsupported(k, v);
      c.force_upcast = v.is_boolean() ? v.get<bool>() : v.get<double>() != 0;
    } else {
      cj.unsupported(k, v, "unknown key");
    }
  }
  if (n_down != c.block_out_channels.size())
    cj.unsupported("down_block_types", j.value("down_block_types", nlohmann::json()),
                "must have one entry per block_out_channels entry");
  // MidBlockTemporalDecoder: heads = C / head_dim with head_dim = C (one head).
  return c;
}

// ---------------------------------------------------------------------------------------------------------
TemporalDecoderImpl::TemporalDecoderImpl(int64_t in_channels, int64_t out_channels,
                                         const std::vector<int64_t>& ch, int64_t layers_per_block) {
  conv_in = register_module("conv_in", blocks::Conv2d(blocks::Conv2dOptions{in_channels, ch.back(), 3, 1, 1}));
  mid_block = register_module("mid_block",
                              blocks::MidBlockTemporalDecoder(ch.back(), ch.back(), ch.back(), layers_per_block));
  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  std::vector<int64_t> rev(ch.rbegin(), ch.rend());
  int64_t out = rev[0];
  for (size_t i = 0; i < rev.size(); ++i) {
    const int64_t prev = out;
    out = rev[i];
    up_.push_back(blocks::UpBlockTemporalDecoder(prev, out, layers_per_block + 1, i + 1 < rev.size()));
    up_blocks->push_back(up_.back());
  }
  conv_norm_out =
      register_module("conv_norm_out", torch::nn::GroupNorm(torch::nn::GroupNormOptions(32, ch[0]).eps(1e-6)));
  conv_out = register_module("conv_out", blocks::Conv2d(blocks::Conv2dOptions{ch[0], out_channels, 3, 1, 1}));
  time_conv_out = register_module("time_conv_out", blocks::TemporalConv3d(out_channels, out_channels, 3));
}

at::Tensor TemporalDecoderImpl::forward(const at::Tensor& z, int64_t num_frames) {
  TORCH_CHECK(z.dim() == 4, "TemporalDecoder: expected latents [B·F, C, h, w], got ", z.sizes());
  TORCH_CHECK(num_frames > 0 && z.size(0) % num_frames == 0, "TemporalDecoder: ", z.size(0),
              " latent frames are not a multiple of num_frames=", num_frames);
  const int64_t BF = z.size(0), B = BF / num_frames;
  auto indicator = torch::zeros({B, num_frames}, z.options());  // image_only_indicator: all video
  auto h = conv_in(z);
  h = mid_block(h, indicator);
  for (auto& u : up_) h = u(h, indicator);
  h = conv_out(at::silu(conv_norm_out(h)));  // [B·F, out, H, W]
  const int64_t C = h.size(1), H = h.size(2), W = h.size(3);
  auto v = h.view({B, num_frames, C, H, W}).permute({0, 2, 1, 3, 4});  // [B, out, F, H, W]
  v = time_conv_out(v);
  return v.permute({0, 2, 1, 3, 4}).reshape({BF, C, H, W});  // [B·F, out, H, W]
}

// ---------------------------------------------------------------------------------------------------------
AutoencoderKLTemporalDecoderImpl::AutoencoderKLTemporalDecoderImpl(const AutoencoderKLTemporalDecoderConfig& cfg)
    : cfg_(cfg) {
  VAECoderOptions e;
  e.in_channels = cfg.in_channels;
  e.out_channels = cfg.latent_channels;
  e.block_out_channels = cfg.block_out_channels;
  e.layers_per_block = cfg.layers_per_block;
  e.norm_num_groups = 32;
  e.act_fn = "silu";
  e.double_z = true;
  e.mid_block_add_attention = true;
  encoder = register_module("encoder", Encoder(e));
  decoder = register_module("decoder", TemporalDecoder(cfg.latent_channels, cfg.out_channels, cfg.block_out_channels,
                                                       cfg.layers_per_block));
  const int64_t m = 2 * cfg.latent_channels;
  quant_conv = register_module("quant_conv", blocks::Conv2d(blocks::Conv2dOptions{m, m, 1, 1, 0}));
}

DiagonalGaussian AutoencoderKLTemporalDecoderImpl::encode(const at::Tensor& image) {
  DiagonalGaussian d;
  d.moments = quant_conv(encoder(image));  // [N, 2·latent, h, w] = [mean | logvar]
  auto ml = d.moments.chunk(2, 1);
  d.mean = ml[0];
  d.logvar = ml[1].clamp(-30.0, 20.0);
  d.std = at::exp(0.5 * d.logvar);
  return d;
}

at::Tensor AutoencoderKLTemporalDecoderImpl::decode(const at::Tensor& latents, int64_t num_frames) {
  return decoder(latents, num_frames);
}

void AutoencoderKLTemporalDecoderImpl::decode_chunked(
    const at::Tensor& latents, int64_t decode_chunk,
    const std::function<void(int64_t first, const at::Tensor& frames)>& sink) {
  TORCH_CHECK(latents.dim() == 4, "decode_chunked: expected latents [N, C, h, w], got ", latents.sizes());
  TORCH_CHECK(decode_chunk > 0, "decode_chunked: decode_chunk must be positive, got ", decode_chunk);
  const int64_t N = latents.size(0);
  for (int64_t i = 0; i < N; i += decode_chunk) {
    const int64_t n = std::min(decode_chunk, N - i);
    sink(i, decoder(latents.narrow(0, i, n), n));  // each chunk is one video of n frames (as diffusers)
  }
}

at::Tensor AutoencoderKLTemporalDecoderImpl::decode_chunked(const at::Tensor& latents, int64_t num_frames,
                                                            int64_t decode_chunk) {
  TORCH_CHECK(latents.dim() == 4, "decode_chunked: expected latents [N, C, h, w], got ", latents.sizes());
  TORCH_CHECK(num_frames > 0 && latents.size(0) % num_frames == 0, "decode_chunked: ", latents.size(0),
              " latent frames are not a multiple of num_frames=", num_frames);
  const int64_t f = downscale_factor();
  at::Tensor out = torch::empty({latents.size(0), cfg_.out_channels, latents.size(2) * f, latents.size(3) * f},
                                latents.options());
  decode_chunked(latents, decode_chunk,
                 [&](int64_t first, const at::Tensor& frames) { out.narrow(0, first, frames.size(0)).copy_(frames); });
  return out;
}

at::Tensor AutoencoderKLTemporalDecoderImpl::forward(const at::Tensor& image, int64_t num_frames) {
  return decode(encode(image).mode(), num_frames);
}

AutoencoderKLTemporalDecoder load_autoencoder_kl_temporal_decoder(const std::filesystem::path& folder) {
  return io::load_component<AutoencoderKLTemporalDecoder, AutoencoderKLTemporalDecoderConfig>(folder);
}

}  // namespace clipgen
