#include "models/autoencoder_kl.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/io/config_json.h"
#include "models/io/diffusers_folder.h"
#include "models/io/load_component.h"
#include "models/io/state_dict.h"
#include "models/rng.h"

namespace clipgen {

AutoencoderKLConfig AutoencoderKLConfig::from_json(const nlohmann::json& j, const std::string& source) {
  const io::ConfigJson cj(source, "AutoencoderKL");
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
  if (c.block_out_channels.empty()) cj.unsupported("block_out_channels", j["block_out_channels"]);
  if (j.contains("act_fn")) c.act_fn = j["act_fn"].get<std::string>();
  try {
    blocks::check_activation(c.act_fn, "act_fn");
  } catch (const UnsupportedError&) {
    cj.unsupported("act_fn", j["act_fn"]);
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
    if (!t.is_array() || t.size() != n) cj.unsupported(key, t);
    for (const auto& e : t)
      if (e != want) cj.unsupported(std::string(key) + "[]", e);
  };
  check_types("down_block_types", "DownEncoderBlock2D");
  check_types("up_block_types", "UpDecoderBlock2D");
  for (const char* k : {"latents_mean", "latents_std"})
    if (j.contains(k) && !j[k].is_null()) cj.unsupported(k, j[k]);
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

namespace {
// ---- exact tiled decode ----

// One GroupNorm of the decoder after its mid-block, with the layers that follow it up to the next one:
// norm1 → act → conv1; norm2 → act → conv2, + shortcut, (upsampler); conv_norm_out → SiLU → conv_out.
struct NormSite {
  enum Kind { kNorm1, kNorm2, kOut } kind;
  blocks::ResnetBlock2DImpl* resnet = nullptr;  // kNorm1 / kNorm2
  blocks::Upsample2DImpl* upsample = nullptr;   // kNorm2 of a block's last resnet: the block's upsampler
  torch::nn::GroupNormImpl* norm = nullptr;
  int64_t margin = 0;  // pixels (at this site's resolution) its input needs around a core for exact cores
};

int64_t radius(const blocks::Conv2d& c) {
  if (!c) return 0;
  const auto& o = c->options();
  TORCH_CHECK(o.stride == 1 && o.padding == o.kernel_size / 2, "decode_tiled_exact: unexpected decoder conv");
  return o.kernel_size / 2;
}

std::vector<NormSite> decoder_sites(DecoderImpl& d) {
  std::vector<NormSite> sites;
  for (const auto& m : *d.up_blocks) {
    auto* blk = m->as<blocks::UpDecoderBlock2DImpl>();
    TORCH_CHECK(blk != nullptr, "decode_tiled_exact: decoder up block is not an UpDecoderBlock2D");
    blocks::Upsample2DImpl* up = nullptr;
    if (blk->upsamplers && !blk->upsamplers->is_empty()) up = (*blk->upsamplers)[0]->as<blocks::Upsample2DImpl>();
    const size_t n = blk->resnets->size();
    for (size_t i = 0; i < n; ++i) {
      auto* r = (*blk->resnets)[i]->as<blocks::ResnetBlock2DImpl>();
      TORCH_CHECK(r != nullptr && !r->time_emb_proj, "decode_tiled_exact: unexpected decoder resnet");
      sites.push_back({NormSite::kNorm1, r, nullptr, r->norm1.get()});
      sites.push_back({NormSite::kNorm2, r, i + 1 == n ? up : nullptr, r->norm2.get()});
    }
  }
  sites.push_back({NormSite::kOut, nullptr, nullptr, d.conv_norm_out.get()});
  // Backwards from the output (which needs no context): a k×k conv adds k/2 pixels; nearest ×2
  // upsampling halves them, rounding up (cores start on even pixels).
  int64_t m = 0;
  for (auto it = sites.rbegin(); it != sites.rend(); ++it) {
    if (it->kind == NormSite::kOut) {
      m = radius(d.conv_out);
    } else if (it->kind == NormSite::kNorm2) {
      if (it->upsample) m = (m + radius(it->upsample->conv) + 1) / 2;
      m += std::max(radius(it->resnet->conv2), radius(it->resnet->conv_shortcut));
    } else {
      m += radius(it->resnet->conv1);
    }
    it->margin = m;
  }
  return sites;
}

// A tile of one batch row: its core [r0, r1) × [c0, c1) in latents, and its activations at the current
// resolution (`scale` pixels per latent), cropped to the core plus a margin; (oy, ox) is where their
// [0, 0] lies in the whole raster at that resolution.
struct Tile {
  int64_t r0, r1, c0, c1;
  at::Tensor x, h;  // x: the block stream; h: a resnet's inner activation between norm1 and norm2
  int64_t scale = 1, oy = 0, ox = 0;
  at::Tensor core(const at::Tensor& a) const {
    return a.slice(2, r0 * scale - oy, r1 * scale - oy).slice(3, c0 * scale - ox, c1 * scale - ox);
  }
};

// Crops to core ± margin, within the raster (latent size lh × lw) and within what the tile holds.
void crop(Tile& t, int64_t margin, int64_t lh, int64_t lw) {
  const int64_t s = t.scale;
  const int64_t y0 = std::max({int64_t{0}, t.r0 * s - margin, t.oy});
  const int64_t y1 = std::min({lh * s, t.r1 * s + margin, t.oy + t.x.size(2)});
  const int64_t x0 = std::max({int64_t{0}, t.c0 * s - margin, t.ox});
  const int64_t x1 = std::min({lw * s, t.c1 * s + margin, t.ox + t.x.size(3)});
  for (at::Tensor* a : {&t.x, &t.h})
    if (a->defined()) *a = a->slice(2, y0 - t.oy, y1 - t.oy).slice(3, x0 - t.ox, x1 - t.ox);
  t.oy = y0;
  t.ox = x0;
}

struct GroupStats {
  at::Tensor mean, rstd;  // [1, G], activations' dtype
};

// Whole-image GroupNorm statistics as the sum over disjoint cores, accumulated in double.
struct StatsAccumulator {
  at::Tensor sum, sumsq;
  double n = 0;
  void add(const at::Tensor& core, int64_t groups) {
    auto c = core.to(at::kDouble).reshape({core.size(0), groups, -1});
    auto s = c.sum(-1), ss = (c * c).sum(-1);
    sum = sum.defined() ? sum + s : s;
    sumsq = sumsq.defined() ? sumsq + ss : ss;
    n += static_cast<double>(c.size(2));
  }
  GroupStats finish(double eps, at::ScalarType dtype) const {
    auto mean = sum / n;
    auto var = (sumsq / n - mean * mean).clamp_min(0.0);
    return {mean.to(dtype), (var + eps).rsqrt().to(dtype)};
  }
};

// GroupNorm with given statistics; st == nullptr → the tile's own statistics (plain GroupNorm).
at::Tensor group_norm_with(const at::Tensor& x, torch::nn::GroupNormImpl& gn, const GroupStats* st) {
  if (st == nullptr) return gn.forward(x);
  const int64_t g = gn.options.num_groups();
  auto y = (x.reshape({x.size(0), g, -1}) - st->mean.unsqueeze(-1)) * st->rstd.unsqueeze(-1);
  y = y.view(x.sizes());
  if (gn.options.affine()) y = y * gn.weight.view({1, -1, 1, 1}) + gn.bias.view({1, -1, 1, 1});
  return y;
}

at::Tensor& site_input(Tile& t, const NormSite& s) { return s.kind == NormSite::kNorm2 ? t.h : t.x; }

// Applies site s (its GroupNorm and the layers up to the next GroupNorm) to the tile.
void advance(Tile& t, const NormSite& s, const GroupStats* st, DecoderImpl& d) {
  if (s.kind == NormSite::kOut) {
    t.x = d.conv_out(at::silu(group_norm_with(t.x, *s.norm, st)));
    return;
  }
  auto& r = *s.resnet;
  const auto& act = r.options().non_linearity;
  if (s.kind == NormSite::kNorm1) {
    t.h = r.conv1(blocks::activation(act, group_norm_with(t.x, *s.norm, st)));
    return;
  }
  auto h = r.conv2(blocks::activation(act, group_norm_with(t.h, *s.norm, st)));
  t.h = at::Tensor();
  auto out = (r.conv_shortcut ? r.conv_shortcut(t.x) : t.x) + h;
  if (r.options().output_scale_factor != 1.0) out = out / r.options().output_scale_factor;
  if (s.upsample) {
    out = s.upsample->forward(out);
    t.scale *= 2;
    t.oy *= 2;
    t.ox *= 2;
  }
  t.x = out;
}
}  // namespace

int64_t AutoencoderKLImpl::decoder_halo_latents() const {
  // decoder_sites only reads the modules' options.
  return decoder_sites(const_cast<DecoderImpl&>(*decoder)).front().margin;
}

at::Tensor AutoencoderKLImpl::decode_tiled_exact(const at::Tensor& latents, const ExactTiledDecodeOptions& opt) {
  TORCH_CHECK(latents.dim() == 4, "decode_tiled_exact: latents must be [B, C, h, w], got ", latents.sizes());
  TORCH_CHECK(opt.tile_latent_size > 0, "decode_tiled_exact: tile_latent_size must be positive");
  torch::NoGradGuard no_grad;
  const auto sites = decoder_sites(*decoder);
  const size_t n_sites = sites.size();
  const int64_t halo = opt.halo_latents >= 0 ? opt.halo_latents : sites.front().margin;
  const int64_t lh = latents.size(2), lw = latents.size(3), f = downscale_factor(), ts = opt.tile_latent_size;
  auto margin_after = [&](size_t k) { return k + 1 < n_sites ? sites[k + 1].margin : int64_t{0}; };
  auto stats_of = [&](const std::vector<GroupStats>& st, size_t k) {
    return opt.global_group_norm ? &st[k] : nullptr;
  };
  at::Tensor out;
  for (int64_t b = 0; b < latents.size(0); ++b) {
    auto z = latents.slice(0, b, b + 1);
    if (post_quant_conv) z = post_quant_conv(z);
    const auto mid = decoder->mid_block(decoder->conv_in(z));  // whole latent: exact attention and norms
    std::vector<Tile> tiles;
    for (int64_t r0 = 0; r0 < lh; r0 += ts)
      for (int64_t c0 = 0; c0 < lw; c0 += ts) {
        Tile t{r0, std::min(r0 + ts, lh), c0, std::min(c0 + ts, lw)};
        t.x = mid;
        crop(t, halo, lh, lw);
        tiles.push_back(std::move(t));
      }
    std::vector<GroupStats> stats(n_sites);
    auto finish = [&](StatsAccumulator& acc, size_t k) {
      stats[k] = acc.finish(sites[k].norm->options.eps(), mid.scalar_type());
    };
    auto store = [&](const Tile& t) {
      TORCH_CHECK(t.scale == f, "decode_tiled_exact: decoder upsamples ×", t.scale, ", expected ×", f);
      if (!out.defined()) out = at::empty({latents.size(0), t.x.size(1), lh * f, lw * f}, t.x.options());
      out.slice(0, b, b + 1).slice(2, t.r0 * f, t.r1 * f).slice(3, t.c0 * f, t.c1 * f).copy_(t.core(t.x));
    };
    if (!opt.recompute) {
      // Lock-step: all tiles stop at each GroupNorm until its statistics are known.
      for (size_t k = 0; k < n_sites; ++k) {
        if (opt.global_group_norm) {
          StatsAccumulator acc;
          for (auto& t : tiles) acc.add(t.core(site_input(t, sites[k])), sites[k].norm->options.num_groups());
          finish(acc, k);
        }
        for (auto& t : tiles) {
          advance(t, sites[k], stats_of(stats, k), *decoder);
          crop(t, margin_after(k), lh, lw);
        }
      }
      for (auto& t : tiles) store(t);
    } else {
      // Bounded memory: each GroupNorm's statistics come from re-running every tile up to it.
      auto run = [&](Tile t, size_t upto) {
        for (size_t j = 0; j < upto; ++j) {
          advance(t, sites[j], stats_of(stats, j), *decoder);
          crop(t, margin_after(j), lh, lw);
        }
        return t;
      };
      if (opt.global_group_norm)
        for (size_t k = 0; k < n_sites; ++k) {
          StatsAccumulator acc;
          for (const auto& t0 : tiles) {
            auto t = run(t0, k);
            acc.add(t.core(site_input(t, sites[k])), sites[k].norm->options.num_groups());
          }
          finish(acc, k);
        }
      for (const auto& t0 : tiles) store(run(t0, n_sites));
    }
  }
  return out;
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
  return io::load_component<AutoencoderKL, AutoencoderKLConfig>(folder);
}

}  // namespace clipgen
