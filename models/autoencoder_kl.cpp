#include "models/autoencoder_kl.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/io/diffusers_folder.h"
#include "models/io/state_dict.h"
#include "models/rng.h"

namespace clipgen {

namespace {
[[noreturn]] void unsupported(const std::string& source, const std::string& key, const nlohmann::json& v) {
  throw UnsupportedError(source + ": unsupported AutoencoderKL config " + key + "=" + v.dump());
}
}  // namespace

AutoencoderKLConfig AutoencoderKLConfig::from_json(const nlohmann::json& j, const std::string& source) {
  AutoencoderKLConfig c;
  auto get_i = [&](const char* k, int64_t& dst) {
    if (j.contains(k) && !j[k].is_null()) dst = j[k].get<int64_t>();
  };
  get_i("in_channels", c.in_channels);
  get_i("out_channels", c.out_channels);
  get_i("latent_channels", c.latent_channels);
  get_i("layers_per_block", c.layers_per_block);
  get_i("norm_num_groups", c.norm_num_groups);
  if (j.contains("sample_size") && !j["sample_size"].is_null()) {
    const auto& s = j["sample_size"];
    c.sample_size = s.is_array() ? s.at(0).get<int64_t>() : s.get<int64_t>();
  }
  if (j.contains("block_out_channels")) c.block_out_channels = j["block_out_channels"].get<std::vector<int64_t>>();
  if (c.block_out_channels.empty()) unsupported(source, "block_out_channels", j["block_out_channels"]);
  if (j.contains("act_fn")) c.act_fn = j["act_fn"].get<std::string>();
  try {
    blocks::check_activation(c.act_fn, "act_fn");
  } catch (const UnsupportedError&) {
    unsupported(source, "act_fn", j["act_fn"]);
  }
  if (j.contains("scaling_factor") && !j["scaling_factor"].is_null()) c.scaling_factor = j["scaling_factor"].get<double>();
  if (j.contains("shift_factor") && !j["shift_factor"].is_null()) c.shift_factor = j["shift_factor"].get<double>();
  if (j.contains("force_upcast")) c.force_upcast = j["force_upcast"].get<bool>();
  if (j.contains("use_quant_conv") && !j["use_quant_conv"].is_null()) c.use_quant_conv = j["use_quant_conv"].get<bool>();
  if (j.contains("use_post_quant_conv") && !j["use_post_quant_conv"].is_null())
    c.use_post_quant_conv = j["use_post_quant_conv"].get<bool>();
  if (j.contains("mid_block_add_attention") && !j["mid_block_add_attention"].is_null())
    c.mid_block_add_attention = j["mid_block_add_attention"].get<bool>();
  const size_t n = c.block_out_channels.size();
  auto check_types = [&](const char* key, const char* want) {
    if (!j.contains(key)) return;
    const auto& t = j[key];
    if (!t.is_array() || t.size() != n) unsupported(source, key, t);
    for (const auto& e : t)
      if (e != want) unsupported(source, std::string(key) + "[]", e);
  };
  check_types("down_block_types", "DownEncoderBlock2D");
  check_types("up_block_types", "UpDecoderBlock2D");
  for (const char* k : {"latents_mean", "latents_std"})
    if (j.contains(k) && !j[k].is_null()) unsupported(source, k, j[k]);
  return c;
}

at::Tensor DiagonalGaussian::sample(const at::Tensor& noise) const { return mean + std * noise; }

at::Tensor DiagonalGaussian::sample(at::Generator& gen) const {
  auto noise = randn(mean.sizes(), gen, mean.device(), mean.scalar_type());
  return sample(noise);
}

AutoencoderKLImpl::AutoencoderKLImpl(const AutoencoderKLConfig& cfg) : cfg_(cfg) {
  VAECoderOptions e;
  e.in_channels = cfg.in_channels;
  e.out_channels = cfg.latent_channels;
  e.block_out_channels = cfg.block_out_channels;
  e.layers_per_block = cfg.layers_per_block;
  e.norm_num_groups = cfg.norm_num_groups;
  e.act_fn = cfg.act_fn;
  e.double_z = true;
  e.mid_block_add_attention = cfg.mid_block_add_attention;
  encoder = register_module("encoder", Encoder(e));
  VAECoderOptions d = e;
  d.in_channels = cfg.latent_channels;
  d.out_channels = cfg.out_channels;
  decoder = register_module("decoder", Decoder(d));
  const int64_t l = cfg.latent_channels;
  if (cfg.use_quant_conv) quant_conv = register_module("quant_conv", blocks::Conv2d(blocks::Conv2dOptions{2 * l, 2 * l, 1, 1, 0}));
  if (cfg.use_post_quant_conv)
    post_quant_conv = register_module("post_quant_conv", blocks::Conv2d(blocks::Conv2dOptions{l, l, 1, 1, 0}));
}

DiagonalGaussian AutoencoderKLImpl::encode(const at::Tensor& image) {
  DiagonalGaussian d;
  d.moments = encoder(image);
  if (quant_conv) d.moments = quant_conv(d.moments);
  auto ml = d.moments.chunk(2, 1);  // mean, logvar: [B, latent, h, w] each
  d.mean = ml[0];
  d.logvar = ml[1].clamp(-30.0, 20.0);
  d.std = (0.5 * d.logvar).exp();
  return d;
}

at::Tensor AutoencoderKLImpl::decode(const at::Tensor& latents) {
  auto z = post_quant_conv ? post_quant_conv(latents) : latents;
  return decoder(z);
}

at::Tensor AutoencoderKLImpl::decode_sliced(const at::Tensor& latents) {
  std::vector<at::Tensor> parts;
  for (int64_t b = 0; b < latents.size(0); ++b) parts.push_back(decode(latents.slice(0, b, b + 1)));
  return torch::cat(parts, 0);
}

namespace {
// b's first `extent` rows (dim 2) or columns (dim 3) ← a's last `extent` · (1 − w) + b · w, w = y / extent.
void blend(const at::Tensor& a, at::Tensor& b, int64_t extent, int64_t dim) {
  extent = std::min({a.size(dim), b.size(dim), extent});
  if (extent <= 0) return;
  auto w = torch::arange(extent, b.options()) / static_cast<double>(extent);  // [extent]
  w = dim == 2 ? w.view({1, 1, extent, 1}) : w.view({1, 1, 1, extent});
  auto tail = a.narrow(dim, a.size(dim) - extent, extent);
  auto head = b.narrow(dim, 0, extent);
  head.copy_(tail * (1 - w) + head * w);
}
}  // namespace

at::Tensor AutoencoderKLImpl::tiled_decode(const at::Tensor& latents, const TiledDecodeOptions& opt) {
  const int64_t f = downscale_factor();
  const int64_t tile_l = opt.tile_latent_size > 0 ? opt.tile_latent_size : cfg_.sample_size / f;
  const int64_t tile_px = tile_l * f;
  const int64_t overlap = static_cast<int64_t>(tile_l * (1 - opt.overlap_factor));
  const int64_t blend_extent = static_cast<int64_t>(tile_px * opt.overlap_factor);
  const int64_t row_limit = tile_px - blend_extent;
  TORCH_CHECK(overlap > 0 && tile_l > 0, "tiled_decode: tile of ", tile_l, " latents with overlap ", opt.overlap_factor);
  std::vector<std::vector<at::Tensor>> rows;
  for (int64_t i = 0; i < latents.size(2); i += overlap) {
    std::vector<at::Tensor> row;
    for (int64_t j = 0; j < latents.size(3); j += overlap) {
      auto tile = latents.slice(2, i, i + tile_l).slice(3, j, j + tile_l);  // [B, 4, ≤tile_l, ≤tile_l]
      row.push_back(decode(tile));
    }
    rows.push_back(std::move(row));
  }
  std::vector<at::Tensor> out_rows;
  for (size_t i = 0; i < rows.size(); ++i) {
    std::vector<at::Tensor> out_row;
    for (size_t j = 0; j < rows[i].size(); ++j) {
      // In place, like diffusers: later tiles blend with already-blended neighbours.
      if (i > 0) blend(rows[i - 1][j], rows[i][j], blend_extent, 2);
      if (j > 0) blend(rows[i][j - 1], rows[i][j], blend_extent, 3);
      out_row.push_back(rows[i][j].slice(2, 0, row_limit).slice(3, 0, row_limit));
    }
    out_rows.push_back(torch::cat(out_row, 3));
  }
  return torch::cat(out_rows, 2);
}

at::Tensor AutoencoderKLImpl::forward(const at::Tensor& image, bool sample_posterior, at::Generator* gen) {
  auto post = encode(image);
  if (!sample_posterior) return decode(post.mode());
  TORCH_CHECK(gen != nullptr, "AutoencoderKL::forward: sample_posterior needs a generator");
  return decode(post.sample(*gen));
}

at::Tensor AutoencoderKLImpl::scale_latents(const at::Tensor& z) const {
  return (z - shift_factor()) * cfg_.scaling_factor;
}

at::Tensor AutoencoderKLImpl::unscale_latents(const at::Tensor& z) const {
  return z / cfg_.scaling_factor + shift_factor();
}

AutoencoderKL load_autoencoder_kl(const std::filesystem::path& folder) {
  const auto cfg_path = folder / "config.json";
  auto cfg = AutoencoderKLConfig::from_json(io::read_json(cfg_path), cfg_path.string());
  AutoencoderKL vae{nullptr};
  {
    blocks::EmptyInitGuard g;
    vae = AutoencoderKL(cfg);
  }
  io::load_weights_into(*vae, folder);
  vae->eval();
  return vae;
}

}  // namespace clipgen
